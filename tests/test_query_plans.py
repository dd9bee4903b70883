"""The reads that must stay fast as the network grows have an index to use (issue 14): with
sequential scans priced out (enable_seqscan off, as the planner would choose on a large
table), none of them scans the audit trail or the record entries from end to end. On
PostgreSQL only: SQLite is the embedded, single-practice mode."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit import partitions
from audit.ledger import PENDING
from audit.models import AuditEvent, BlockMember
from consent import access_log
from consent.ig_queries import AuditFilters, search_events
from phr.models import Organisation, Patient, RecordEntry

pytestmark = pytest.mark.django_db

BIG_TABLES = ("audit_auditevent", "phr_recordentry", "audit_blockmember")


def big(table: str | None) -> bool:
    """One of the big tables, or one of its partitions (the trail's are by month)."""
    return table is not None and any(table == name or table.startswith(f"{name}_") for name in BIG_TABLES)


def tables_read(node: dict) -> set[str]:
    found = {node["Relation Name"]} if "Relation Name" in node else set()
    for child in node.get("Plans", []):
        found |= tables_read(child)
    return found


def plan(queryset_or_sql, params=()) -> dict:
    if isinstance(queryset_or_sql, str):
        sql = queryset_or_sql
    else:
        sql, params = queryset_or_sql.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        found = cursor.fetchone()[0]
    return (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]


def _has_index_cond(node: dict) -> bool:
    return any("Index Cond" in child or _has_index_cond(child) for child in node.get("Plans", []))


def whole_table_reads(node: dict) -> list[str]:
    """Reads of a big table that no index condition narrows: a sequential scan, or an
    index walked from end to end with a filter (what enable_seqscan off falls back to)."""
    found = []
    table = node.get("Relation Name")
    if big(table):
        kind = node["Node Type"]
        # A bitmap heap scan is narrowed by the index scans beneath it (under a BitmapAnd
        # or BitmapOr, perhaps): any of them with an index condition.
        narrowed = "Index Cond" in node or (kind == "Bitmap Heap Scan" and _has_index_cond(node))
        if not narrowed:
            found.append(f"{kind} on {table}")
    for child in node.get("Plans", []):
        found.extend(whole_table_reads(child))
    return found


def assert_indexed(tree: dict) -> None:
    scanned = whole_table_reads(tree)
    assert not scanned, f"a whole-table read: {scanned}\n{json.dumps(tree, indent=1)[:3000]}"


@pytest.fixture
def some(db):
    if connection.vendor != "postgresql":
        pytest.skip("query plans are checked on PostgreSQL")
    organisation = Organisation.objects.create(ods_code="QP001", name="Plans Trust")
    patient = Patient.objects.create(nhs_number="9000000009", family_name="Plan", given_names="Query")
    return organisation, patient


def test_the_record_of_one_patient(some):
    _, patient = some
    assert_indexed(plan(RecordEntry.objects.filter(patient=patient).order_by("resource_type")))


def test_the_ig_search_by_patient_and_by_organisation_over_a_month(some):
    organisation, patient = some
    month_ago = (timezone.now() - timedelta(days=30)).date()
    # Whole results, not a first page: under a LIMIT the planner may walk the sequence
    # index from the newest and stop early, a fair choice that this test would misread.
    assert_indexed(plan(search_events(AuditFilters(patient=patient))))
    assert_indexed(plan(search_events(AuditFilters(organisation=organisation, date_from=month_ago))))


def test_a_search_over_a_month_reads_only_that_months_partitions(some):
    organisation, _ = some
    if not partitions.is_partitioned():
        pytest.fail("the audit trail is not partitioned on PostgreSQL")
    today = timezone.now().date()
    tree = plan(search_events(AuditFilters(organisation=organisation, date_from=today, date_to=today)))
    read = {table for table in tables_read(tree) if table.startswith("audit_auditevent")}
    # This month's partition; at most one more when the local day starts in the month
    # before (UTC) - of the five or more there are (this month, three ahead, DEFAULT).
    with connection.cursor() as cursor:
        assert len(partitions.existing(cursor)) >= 5
    assert partitions.partition_name(partitions.month_start(today)) in read
    assert len(read) <= 2, read


def test_the_patients_access_log(some):
    _, patient = some

    class Viewer:
        pk = 0

    assert_indexed(plan(access_log.looks(patient, viewer=Viewer(), filters=access_log.LogFilters())))


def test_the_sealer_and_an_events_block(some):
    assert_indexed(plan(PENDING, [100]))
    leaves = AuditEvent.objects.filter(pk__in=[1, 2, 3]).order_by("seq").values_list("pk", "hash")
    assert_indexed(plan(leaves))
    assert_indexed(plan(BlockMember.objects.filter(event_id=1)))  # an event's block, for its proof
    assert_indexed(plan(AuditEvent.objects.filter(pk=1).values_list("occurred_at")))  # the sealing lag
