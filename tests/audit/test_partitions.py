"""The audit trail is partitioned by month on PostgreSQL (issue 14, audit.partitions):
events land in their month's partition, an event from a month with none lands in the
DEFAULT partition and is still read and verified, months are added ahead idempotently,
and the migration moves a trail in and out with every event and block still verifying."""

import datetime as dt
import importlib
import logging

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

import audit
from audit import partitions
from audit.ledger import seal_all, verify
from audit.models import AuditEvent
from tests.audit.tampering import behind_the_apps_back as raw

pytestmark = pytest.mark.django_db

migration = importlib.import_module("audit.migrations.0010_partitioned_by_month")


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite keeps one plain table")


def partition_of(event: AuditEvent) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM audit_auditevent WHERE id = %s", [event.pk])
        return cursor.fetchone()[0]


def test_the_trail_is_partitioned_by_its_time():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.partstrat, a.attname FROM pg_partitioned_table p"
            " JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
            " WHERE p.partrelid = 'audit_auditevent'::regclass"
        )
        assert cursor.fetchone() == ("r", "occurred_at")


def test_an_event_lands_in_its_months_partition():
    event = audit.record("test.partition")
    assert partition_of(event) == partitions.partition_name(partitions.month_start(timezone.now()))


def test_an_event_from_a_month_without_a_partition_is_kept_read_and_verified():
    far = dt.datetime(2031, 5, 17, 9, 30, tzinfo=dt.UTC)
    with time_machine.travel(far, tick=True):
        event = audit.record("test.far.future")
        assert partition_of(event) == partitions.DEFAULT
        seal_all()
        assert AuditEvent.objects.get(pk=event.pk).action == "test.far.future"
        assert verify().problem is None
        # That month can no longer be added (its event sits in DEFAULT): logged, skipped.
        assert partitions.ensure_months(since=dt.date(2031, 5, 1), ahead=0) == []


def test_an_event_in_a_partition_is_still_append_only():
    event = audit.record("test.partition")
    with pytest.raises(Exception, match="append-only"), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", [event.pk])


def test_edits_in_a_partition_are_caught_once_sealed():
    event = audit.record("test.partition")
    seal_all()
    raw("UPDATE audit_auditevent SET reason = 'edited' WHERE id = %s", [event.pk])
    assert verify().problem is not None


def test_months_are_added_ahead_once(caplog):
    with time_machine.travel(dt.datetime(2027, 11, 20, tzinfo=dt.UTC), tick=True):
        caplog.set_level(logging.INFO, logger="audit.partitions")
        added = partitions.ensure_months()
        assert added[-1] == "audit_auditevent_2028_02"  # three months past November 2027
        assert "audit_auditevent_2027_11" in partitions.existing(connection.cursor()) | set(added)
        assert partitions.ensure_months() == []
        assert partitions.months_ready() == 3


def test_health_says_how_many_months_ahead_are_ready(client):
    partitions.ensure_months()
    assert client.get("/healthz").json()["audit"]["months_partitioned_ahead"] >= partitions.MONTHS_AHEAD


def test_the_migration_moves_the_trail_out_and_back_with_every_event_verifying():
    events = [audit.record("test.migrated", detail={"n": n}) for n in range(5)]
    seal_all()
    later = audit.record("test.migrated.unsealed")
    with connection.schema_editor() as editor:
        migration.backwards(None, editor)
    assert not partitions.is_partitioned()
    assert verify().problem is None
    with connection.schema_editor() as editor:
        migration.forwards(None, editor)
    assert partitions.is_partitioned()
    assert list(
        AuditEvent.objects.filter(action__startswith="test.migrated").values_list("pk", flat=True)
    ) == [e.pk for e in [*events, later]]
    # The identity goes on from where it was, and the trail still verifies.
    assert audit.record("test.after").pk > later.pk
    seal_all()
    assert verify().problem is None


@pytest.mark.parametrize("month", ["2027-04-01 BC", "1969-12-01", "infinity"])
def test_the_month_function_refuses_a_month_the_trail_cannot_hold(month):
    """Found by the outside probe: a date BC made a table with a real month's name."""
    from django.db import DatabaseError, transaction

    with connection.cursor() as cursor:
        before = partitions.existing(cursor)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT audit_add_month(%s::date)", [month])
    with connection.cursor() as cursor:
        assert partitions.existing(cursor) == before
