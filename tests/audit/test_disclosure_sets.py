"""Disclosure sets: a set of entries disclosed together is stored once, named by its
digest in every event that discloses it, and covered by the chain's verification."""

import pytest
from django.db import DatabaseError, connection, transaction

import audit
from audit.ledger import verify
from audit.models import AuditEvent, DisclosureSet
from tests.audit.old_chain import write_chained
from tests.audit.tampering import behind_the_apps_back

REFS = ["a" * 32 + ":1", "b" * 32 + ":2", "c" * 32 + ":1"]


@pytest.mark.django_db
def test_the_same_disclosure_is_stored_once_and_named_by_every_event():
    first = audit.record("record.read", entries=REFS)
    again = audit.record("record.read", entries=list(reversed(REFS)))  # order does not matter
    other = audit.record("record.read", entries=REFS[:2])

    assert DisclosureSet.objects.count() == 2
    assert first.disclosure_id == again.disclosure_id != other.disclosure_id
    stored = AuditEvent.objects.get(pk=again.pk)
    assert sorted(stored.entries) == sorted(REFS)
    assert stored.inline_entries == []
    assert DisclosureSet.objects.get(pk=first.disclosure_id).count == 3
    assert (verify().events, verify().problem) == (3, None)


@pytest.mark.django_db
def test_an_event_without_entries_names_no_set():
    event = audit.record("auth.login")
    assert event.disclosure_id is None
    assert AuditEvent.objects.get(pk=event.pk).entries == []
    assert DisclosureSet.objects.count() == 0


@pytest.mark.django_db
def test_a_changed_set_is_named_at_the_first_event_that_discloses_it():
    audit.record("auth.login")
    event = audit.record("record.read", entries=REFS)
    audit.record("record.read", entries=REFS)
    behind_the_apps_back(
        "UPDATE audit_disclosureset SET refs = %s WHERE digest = %s",
        [" ".join(REFS[:2]), event.disclosure_id],
        table="audit_disclosureset",
    )

    report = verify()
    checked, problem = report.events, report.problem

    assert (checked, problem.seq) == (1, event.seq)
    assert "entries it names" in problem.problem


@pytest.mark.django_db
def test_a_swapped_digest_breaks_the_event_hash():
    """Pointing an event at another set changes what its keyed hash covers."""
    event = audit.record("record.read", entries=REFS)
    other = audit.record("record.read", entries=REFS[:1])
    behind_the_apps_back(
        "UPDATE audit_auditevent SET disclosure_id = %s WHERE id = %s", [other.disclosure_id, event.pk]
    )

    report = verify()
    checked, problem = report.events, report.problem

    assert (checked, problem.seq) == (0, event.seq)
    assert "edited" in problem.problem


@pytest.mark.django_db
def test_events_written_before_sets_existed_still_verify():
    """Events from before disclosure sets list their entries inline; their hashes stand."""
    (legacy,) = write_chained(1, inline_entries=REFS[:2])
    audit.record("record.read", entries=REFS)
    audit.record("record.read", entries=REFS)

    assert AuditEvent.objects.get(pk=legacy.pk).entries == REFS[:2]
    assert (verify().events, verify().problem) == (3, None)


@pytest.mark.django_db
def test_sets_are_append_only():
    event = audit.record("record.read", entries=REFS)
    stored = DisclosureSet.objects.get(pk=event.disclosure_id)
    with pytest.raises(TypeError):
        stored.save()
    with pytest.raises(TypeError):
        stored.delete()
    with pytest.raises(TypeError):
        DisclosureSet.objects.update(count=1)
    if connection.vendor == "postgresql":
        for sql in ("UPDATE audit_disclosureset SET count = 1", "DELETE FROM audit_disclosureset"):
            with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql)
    assert (verify().events, verify().problem) == (1, None)


@pytest.mark.django_db
def test_a_removed_set_is_named():
    audit.record("auth.login")
    event = audit.record("record.read", entries=REFS)
    behind_the_apps_back(
        "DELETE FROM audit_disclosureset WHERE digest = %s",
        [event.disclosure_id],
        table="audit_disclosureset",
    )

    report = verify()
    checked, problem = report.events, report.problem

    assert (checked, problem.seq) == (1, event.seq)


@pytest.mark.django_db
def test_the_hash_index_is_built_without_blocking_audit_writes_on_postgresql():
    """Every read writes an event: on PostgreSQL the index is built CONCURRENTLY."""
    from io import StringIO

    from django.core.management import call_command

    if connection.vendor != "postgresql":
        pytest.skip("CONCURRENTLY is PostgreSQL's")
    out = StringIO()
    call_command("sqlmigrate", "audit", "0006", stdout=out)
    assert 'CREATE INDEX CONCURRENTLY "audit_hash"' in out.getvalue()
