"""The audit trail is append-only and tamper-evident: verify_audit names the first event
that was edited, deleted or inserted, and concurrent writers keep one valid chain."""

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction

import audit
from audit.chain import verify
from audit.models import AuditEvent, ChainHead
from tests.audit.tampering import behind_the_apps_back as raw


def write(n: int, **fields) -> list[AuditEvent]:
    return [
        audit.record("test.event", actor_label=f"writer {i}", detail={"i": i}, **fields) for i in range(n)
    ]


@pytest.mark.django_db
def test_an_honest_chain_verifies():
    write(5)
    assert verify() == (5, None)
    call_command("verify_audit")


@pytest.mark.django_db
def test_each_event_links_to_the_one_before():
    first, second, third = write(3)
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]


@pytest.mark.django_db
def test_an_edited_event_is_named():
    write(5)
    raw("UPDATE audit_auditevent SET actor_label = %s WHERE seq = 3", ["someone else"])

    checked, problem = verify()

    assert (checked, problem.seq) == (2, 3)
    assert "edited" in problem.problem
    with pytest.raises(CommandError, match="#3"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_an_edited_detail_or_outcome_is_caught_too():
    write(3)
    raw("UPDATE audit_auditevent SET outcome = 'deny' WHERE seq = 2")
    assert verify()[1].seq == 2


@pytest.mark.django_db
def test_a_deleted_event_is_named():
    write(5)
    raw("DELETE FROM audit_auditevent WHERE seq = 4")

    checked, problem = verify()

    assert (checked, problem.seq) == (3, 4)
    assert "deleted" in problem.problem


@pytest.mark.django_db
def test_a_deleted_last_event_is_caught_by_the_head():
    write(3)
    raw("DELETE FROM audit_auditevent WHERE seq = 3")
    assert verify()[1].seq == 3


@pytest.mark.django_db
def test_an_inserted_event_is_named():
    events = write(4)
    # Make room at #3 and slip a forged event in, re-linking by hand without the key.
    raw("UPDATE audit_auditevent SET seq = seq + 100 WHERE seq >= 3")
    forged = AuditEvent(
        seq=3,
        occurred_at=events[2].occurred_at,
        action="record.read",
        actor_label="intruder",
        prev_hash=events[1].hash,
        hash="f" * 64,
    )
    forged.save()
    raw("UPDATE audit_auditevent SET seq = seq - 99 WHERE seq >= 103")

    checked, problem = verify()

    assert (checked, problem.seq) == (2, 3)
    assert "forged" in problem.problem or "inserted" in problem.problem


@pytest.mark.django_db
def test_the_app_cannot_update_or_delete_events():
    (event,) = write(1)
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.update(action="x")
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()


@pytest.mark.django_db
def test_on_postgresql_the_database_refuses_update_and_delete():
    if connection.vendor != "postgresql":
        pytest.skip("the trigger exists on PostgreSQL only")
    write(1)
    for sql in ("UPDATE audit_auditevent SET action = 'x'", "DELETE FROM audit_auditevent"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert verify() == (1, None)


@pytest.mark.django_db(transaction=True)
def test_twenty_four_concurrent_writers_keep_one_valid_chain():
    if connection.vendor != "postgresql":
        # The SQLite test database is in memory with a shared cache, whose table locks
        # fail at once instead of waiting; SQLite serialises writers anyway.
        pytest.skip("concurrent writers are tested on PostgreSQL")
    threads, per_thread, errors = 24, 10, []
    barrier = threading.Barrier(threads)

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                audit.record("test.concurrent", actor_label=f"thread {n}", detail={"i": i})
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connections.close_all()

    pool = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()

    assert errors == []
    assert AuditEvent.objects.count() == threads * per_thread
    assert verify() == (threads * per_thread, None)
    assert ChainHead.objects.get().last_seq == threads * per_thread


@pytest.mark.django_db
def test_the_hash_does_not_depend_on_the_database_round_trip():
    event = audit.record(
        "test.event", detail={"b": 2, "a": [1, "x"], "nested": {"z": None}}, entries=["ab:1"]
    )
    again = AuditEvent.objects.get(pk=event.pk)
    from audit.chain import event_hash

    assert event_hash(again.prev_hash, again) == event.hash
