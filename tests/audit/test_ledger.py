"""The audit ledger: events written with their own MAC and no shared lock, sealed into
hash-linked blocks; verify_audit names the event or block that was edited, deleted or
inserted, and concurrent writers and sealers keep every event in exactly one block."""

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction

import audit
from audit import ledger
from audit.ledger import event_mac, seal, seal_all, verify
from audit.models import AuditEvent, Block, Unsealed
from tests.audit.tampering import behind_the_apps_back as raw


def write(n: int, **fields) -> list[AuditEvent]:
    return [
        audit.record("test.event", actor_label=f"writer {i}", detail={"i": i}, **fields) for i in range(n)
    ]


def sealed(n: int) -> list[AuditEvent]:
    events = write(n)
    assert seal() is not None
    return events


def problem() -> str:
    report = verify()
    assert report.problem is not None, "verify found nothing wrong"
    return str(report.problem)


@pytest.mark.django_db
def test_an_honest_ledger_verifies(capsys):
    sealed(3)
    sealed(2)
    report = verify()
    assert (report.events, report.blocks, report.pending, report.problem) == (5, 2, 0, None)
    call_command("verify_audit")
    assert "5 events and 2 blocks checked" in capsys.readouterr().out


@pytest.mark.django_db
def test_each_event_carries_its_own_mac_and_takes_the_next_number():
    first, second, third = write(3)
    assert [e.seq for e in (first, second, third)] == [first.seq, first.seq + 1, first.seq + 2]
    for event in (first, second, third):
        stored = AuditEvent.objects.get(pk=event.pk)
        assert stored.prev_hash == ""  # no link to the event before: no lock to take
        assert stored.hash == event.hash == event_mac(stored)
    assert set(Unsealed.objects.values_list("seq", "mac")) == {
        (e.seq, e.hash) for e in (first, second, third)
    }


@pytest.mark.django_db
def test_a_block_seals_what_is_pending_in_order_and_links_to_the_one_before():
    events = write(4)
    first = seal()
    more = write(2)
    second = seal()

    assert seal() is None  # nothing pending
    assert (first.number, first.size, second.number, second.size) == (1, 4, 2, 2)
    assert second.prev_hash == first.hash
    assert first.member_seqs == [e.seq for e in events]
    assert (first.first_seq, first.last_seq) == (events[0].seq, events[-1].seq)
    assert second.member_seqs == [e.seq for e in more]
    assert not Unsealed.objects.exists()


@pytest.mark.django_db
def test_an_edited_sealed_event_is_named():
    events = sealed(5)
    raw("UPDATE audit_auditevent SET actor_label = %s WHERE id = %s", ["someone else", events[2].pk])

    assert f"#{events[2].seq}" in problem()
    assert "edited" in problem()
    with pytest.raises(CommandError, match=f"#{events[2].seq}"):
        call_command("verify_audit")


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["outcome = 'deny'", "detail = '{\"i\": 9}'", "purpose = 'care'"])
def test_any_edited_field_is_caught(change):
    events = sealed(3)
    raw(f"UPDATE audit_auditevent SET {change} WHERE id = %s", [events[1].pk])  # noqa: S608 - test text
    assert f"#{events[1].seq}" in problem()


@pytest.mark.django_db
def test_an_edit_before_sealing_is_caught_by_the_mac():
    (event,) = write(1)
    raw("UPDATE audit_auditevent SET action = 'auth.login' WHERE id = %s", [event.pk])
    assert "edited" in problem()


@pytest.mark.django_db
def test_a_deleted_sealed_event_is_named_by_its_block():
    events = sealed(5)
    raw("DELETE FROM audit_auditevent WHERE id = %s", [events[3].pk])
    assert problem() == f"audit block 1: an event sealed in it (#{events[3].seq}) was deleted"


def list_members(number: int, seqs: list[int]) -> None:
    """Rewrite a block's list of members behind the app's back, first and last included."""
    raw(
        "UPDATE audit_block SET members = %s, first_seq = %s, last_seq = %s WHERE number = %s",
        [" ".join(map(str, seqs)), min(seqs), max(seqs), number],
        table="audit_block",
    )


@pytest.mark.django_db
def test_an_event_deleted_with_its_membership_is_caught_by_the_block_size():
    events = sealed(5)
    list_members(1, [e.seq for e in events[1:]])
    raw("DELETE FROM audit_auditevent WHERE id = %s", [events[0].pk])
    assert "audit block 1: lists 4 events but was sealed with 5" in problem()


@pytest.mark.django_db
def test_a_reordered_list_of_members_is_caught():
    events = sealed(3)
    list_members(1, [events[1].seq, events[0].seq, events[2].seq])
    assert "audit block 1: its list of events was changed" in problem()


@pytest.mark.django_db
def test_a_forged_event_is_caught_by_its_mac():
    sealed(2)
    AuditEvent(
        seq=999, occurred_at=AuditEvent.objects.first().occurred_at, action="record.read", hash="f" * 64
    ).save()
    assert "#999" in problem()
    assert "forged" in problem()


@pytest.mark.django_db
def test_a_copied_event_added_to_a_block_is_caught(settings):
    events = sealed(3)
    copy = AuditEvent.objects.get(pk=events[0].pk)
    copy.pk, copy.seq, copy._state.adding = None, 5000, True
    copy.save()  # a valid MAC: the same content as an event the key did sign
    list_members(1, [*(e.seq for e in events), copy.seq])
    assert "a copy of another event" in problem()  # before its block is even looked at


@pytest.mark.django_db
def test_a_copied_event_left_unsealed_is_caught_at_once():
    events = sealed(2)
    copy = AuditEvent.objects.get(pk=events[1].pk)
    copy.pk, copy.seq, copy._state.adding = None, 5001, True
    copy.save()
    assert "a copy of another event" in problem()  # at once, not only once the window passes


@pytest.mark.django_db
def test_an_event_whose_pending_row_was_removed_is_reported_after_the_window(settings):
    (event,) = write(1)
    Unsealed.objects.filter(seq=event.seq).delete()
    assert seal() is None  # the sealer cannot know of it
    settings.AUDIT_SEAL_WINDOW_SECONDS = 0
    assert "not sealed within the seal window" in problem()
    with pytest.raises(CommandError, match="not sealed"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_events_written_moments_ago_are_pending_not_broken():
    sealed(2)
    write(3)
    report = verify()
    assert (report.events, report.blocks, report.pending, report.problem) == (5, 1, 3, None)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "UPDATE audit_block SET size = size + 1 WHERE number = 2",
            "audit block 2: its header does not give its hash",
        ),
        ("UPDATE audit_block SET root = %s WHERE number = 2", "audit block 2: its header"),
        ("UPDATE audit_block SET seal = %s WHERE number = 1", "audit block 1: not sealed with the key"),
        ("DELETE FROM audit_block WHERE number = 2", "audit block 2: missing"),
        ("UPDATE audit_block SET prev_hash = %s WHERE number = 3", "audit block 3: does not follow"),
    ],
)
def test_a_changed_or_removed_block_is_named(sql, expected):
    for _ in range(3):
        sealed(2)
    params = ["a" * 64] if "%s" in sql else []
    raw(sql, params, table="audit_block")
    assert problem().startswith(expected)


@pytest.mark.django_db
def test_events_swapped_between_blocks_are_caught_by_the_roots():
    first = sealed(2)
    second = sealed(2)
    list_members(1, [first[1].seq, second[0].seq])
    list_members(2, [first[0].seq, second[1].seq])
    assert "audit block 1: its events do not give its Merkle root" in problem()


@pytest.mark.django_db
def test_the_app_cannot_change_events_blocks_or_memberships():
    sealed(1)
    for row in (AuditEvent.objects.get(), Block.objects.get()):
        with pytest.raises(TypeError):
            row.save()
        with pytest.raises(TypeError):
            row.delete()
        with pytest.raises(TypeError):
            type(row).objects.update(pk=1)


@pytest.mark.django_db
def test_on_postgresql_the_database_refuses_to_change_the_ledger():
    if connection.vendor != "postgresql":
        pytest.skip("the triggers exist on PostgreSQL only")
    sealed(1)
    for table in ("audit_auditevent", "audit_block"):
        for sql in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}"):  # noqa: S608 - test text
            with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql)
    assert verify().problem is None


@pytest.mark.django_db
def test_the_mac_does_not_depend_on_the_database_round_trip():
    event = audit.record(
        "test.event", detail={"b": 2, "a": [1, "x"], "nested": {"z": None}}, entries=["ab:1"]
    )
    assert event_mac(AuditEvent.objects.get(pk=event.pk)) == event.hash


@pytest.mark.django_db
def test_sealing_lag_and_health(client, settings):
    assert ledger.sealing_state().items() >= {"sealing_lag_seconds": 0.0, "late": False}.items()
    write(1)
    settings.AUDIT_SEAL_WINDOW_SECONDS = 0
    state = client.get("/healthz").json()["audit"]
    assert state["late"] is True
    seal()
    assert (
        client.get("/healthz").json()["audit"].items() >= {"sealing_lag_seconds": 0.0, "late": False}.items()
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_and_sealers_seal_every_event_once():
    if connection.vendor != "postgresql":
        # The SQLite test database is in memory with a shared cache, whose table locks
        # fail at once instead of waiting; SQLite serialises writers anyway.
        pytest.skip("concurrent writers are tested on PostgreSQL")
    threads, per_thread, errors = 16, 15, []
    barrier = threading.Barrier(threads + 2)
    writing = threading.Event()
    writing.set()

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                audit.record("test.concurrent", actor_label=f"thread {n}", detail={"i": i})
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connections.close_all()

    def sealer() -> None:
        try:
            barrier.wait()
            while writing.is_set():
                seal_all()
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connections.close_all()

    pool = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    sealers = [threading.Thread(target=sealer) for _ in range(2)]
    for t in pool + sealers:
        t.start()
    for t in pool:
        t.join()
    writing.clear()
    for t in sealers:
        t.join()
    seal_all()

    assert errors == []
    total = threads * per_thread
    assert AuditEvent.objects.count() == sum(Block.objects.values_list("size", flat=True)) == total
    assert len(set(AuditEvent.objects.values_list("seq", flat=True))) == total
    report = verify()
    assert (report.events, report.pending, report.problem) == (total, 0, None)
    assert Block.objects.count() >= 1


@pytest.mark.django_db(transaction=True)
def test_an_event_committed_late_joins_the_next_block():
    if connection.vendor != "postgresql":
        pytest.skip("two open writers need PostgreSQL")
    written, go_on = threading.Event(), threading.Event()
    late = {}

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                late["event"] = audit.record("test.late")
                written.set()
                go_on.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    written.wait(30)
    (early,) = write(1)  # a higher number, committed first
    assert early.seq > late["event"].seq
    first = seal()
    go_on.set()
    thread.join()
    second = seal()

    assert first.member_seqs == [early.seq]
    assert second.member_seqs == [late["event"].seq]
    # Its proof is found in the later block, though the earlier one's numbers pass it.
    assert ledger.block_of(late["event"]).number == second.number
    assert ledger.proof_holds(ledger.inclusion(late["event"]))
    assert verify().problem is None


@pytest.mark.django_db(transaction=True)
def test_one_sealer_at_a_time():
    if connection.vendor != "postgresql":
        pytest.skip("the sealer's lock is PostgreSQL's advisory lock")
    write(2)
    held, release = threading.Event(), threading.Event()

    def other_sealer() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ledger.SEALER_LOCK])
                held.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_sealer)
    thread.start()
    held.wait(30)
    assert seal() is None  # the other sealer holds the lock: this one leaves it the work
    release.set()
    thread.join()
    assert seal().size == 2


@pytest.mark.django_db
def test_an_event_sealed_in_two_blocks_is_caught():
    """Even a second block made with the key (a sealer gone wrong, not an outsider)
    cannot list an event another block holds."""
    events = sealed(2)
    first = Block.objects.get()
    again = ledger.block_fields(2, first.hash, [events[1].hash], first.sealed_at)
    Block.objects.create(**again, **ledger.members_fields([events[1].seq]))
    assert problem() == f"audit event #{events[1].seq}: sealed in more than one block"


def copy_of(event: AuditEvent, **changes) -> AuditEvent:
    """The event's row written again behind the app's back, as any role that may insert
    into the trail could: its MAC is genuine, since the content is."""
    copy = AuditEvent.objects.get(pk=event.pk)
    copy.pk, copy._state.adding = None, True
    for name, value in changes.items():
        setattr(copy, name, value)
    copy.save()
    return copy


@pytest.mark.django_db
def test_a_replayed_event_under_a_new_number_is_caught_even_once_sealed():
    """Found by the outside probe: a copy with an Unsealed row of its own was sealed and
    passed, since the MAC does not cover the number the database gives."""
    events = sealed(3)
    copy = copy_of(events[1], seq=events[2].seq + 100)
    Unsealed.objects.create(seq=copy.seq, mac=copy.hash, occurred_at=copy.occurred_at)
    assert seal() is not None
    assert (
        problem()
        == f"audit event #{events[1].seq}: a copy of another event: written behind the portal's back"
    )


@pytest.mark.django_db
def test_an_event_copied_under_its_own_number_is_caught():
    events = sealed(2)
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's key on the number alone refuses it")
    copy_of(events[1], seq=events[0].seq)  # the second's content under the first's number
    assert (
        problem()
        == f"audit event #{events[0].seq}: another event has its number: written behind the portal's back"
    )
