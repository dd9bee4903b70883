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
from audit.ledger import TAKE_UNSEALED
from audit.models import AuditEvent, Block, Unsealed
from consent import access_log
from consent.ig_queries import AuditFilters, search_events
from phr.models import Organisation, Patient, RecordEntry

pytestmark = pytest.mark.django_db

BIG_TABLES = ("audit_auditevent", "phr_recordentry", "audit_block")


def big(table: str | None) -> bool:
    """One of the big tables, or one of its partitions (the trail's are by month)."""
    return table is not None and any(table == name or table.startswith(f"{name}_") for name in BIG_TABLES)


def tables_read(node: dict) -> set[str]:
    found = {node["Relation Name"]} if "Relation Name" in node else set()
    for child in node.get("Plans", []):
        found |= tables_read(child)
    return found


def plan(queryset_or_sql, params=(), *, seqscan: bool = False) -> dict:
    """The plan as JSON; with sequential scans priced out unless ``seqscan`` (on a grown
    database the planner's own choice is the one to check: pricing out every small
    table's scan as well can push it into a worse plan for a big one)."""
    if isinstance(queryset_or_sql, str):
        sql = queryset_or_sql
    else:
        sql, params = queryset_or_sql.query.sql_with_params()
    with connection.cursor() as cursor:
        if not seqscan:
            cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params or None)  # None: a "%" in SQL is no placeholder
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
    assert_indexed(plan(TAKE_UNSEALED, [100]))
    assert_indexed(plan(Unsealed.objects.order_by("seq").values_list("occurred_at")[:1]))  # the sealing lag
    # An event's block, for its proof: where to start, then a range of block numbers.
    assert_indexed(plan(Block.objects.filter(sealed_at__gte=timezone.now()).order_by("sealed_at")[:1]))
    assert_indexed(
        plan(Block.objects.filter(number__gte=1, number__lt=500, first_seq__lte=5, last_seq__gte=5))
    )
    leaves = AuditEvent.objects.filter(seq__in=[1, 2, 3]).values_list("seq", "hash")  # its leaves
    assert_indexed(plan(leaves))


# --- Every statement of the everyday requests ---------------------------------------------
# The reads bench/scale.py measures, as the pages and the API run them: each SELECT a
# request makes is explained, and none may read a big table from end to end.


@pytest.fixture
def everyday(some, gp, hospital):
    from accuracy.models import CorrectionRequest
    from api.oauth_server import cli_application, issue_access_token
    from phr.ingest import ingest_documents
    from tests.personas import ClinicianFactory, IGOfficerFactory, PatientUserFactory

    nhs = "9990000026"
    subject = {"reference": "Patient/plan-patient"}
    resources = [
        {
            "resourceType": "Patient",
            "id": "plan-patient",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
            "name": [{"family": "Plan", "given": ["Everyday"]}],
        },
        {
            "resourceType": "Observation",
            "id": "plan-hr",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": subject,
            "effectiveDateTime": "2026-01-02T10:00:00Z",
        },
        {
            "resourceType": "Condition",
            "id": "plan-cond",
            "code": {
                "coding": [
                    {"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}
                ]
            },
            "subject": subject,
        },
    ]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    for holder in (gp, hospital):
        assert not ingest_documents([("plans", bundle)], organisation=holder, source="test").rejected
    patient = Patient.objects.get(nhs_number=nhs)
    user = PatientUserFactory(patient=patient)
    token, _ = issue_access_token(
        application=cli_application(), user=user, scope="patient/*.read", minutes=5, issued_by="test"
    )
    clinician = ClinicianFactory(organisation=hospital)
    entry = RecordEntry.objects.get(owner=hospital, resource_type="Condition")
    today = timezone.localdate()
    CorrectionRequest.objects.create(
        patient=patient, owner=hospital, entry=entry, entry_version=entry.version, requested_by=user,
        element_label="The whole item", proposed="Not so", reason="Wrong", contact_preference="portal",
        jurisdiction="uk", received_on=today, first_due_on=today + timedelta(days=30),
        due_on=today + timedelta(days=30),
    )  # fmt: skip
    return {
        "patient": patient,
        "nhs": nhs,
        "user": user,
        "bearer": {"HTTP_AUTHORIZATION": f"Bearer {token}"},
        "clinician": clinician,
        "ig": IGOfficerFactory(),
        "hospital": hospital,
    }


def find_and_read(client, net):
    found = client.post("/clinician/", {"nhs_number": net["nhs"]})
    assert found.status_code == 302
    return client.get(found["Location"])


EVERYDAY = {
    "record page": ("user", lambda c, net: c.get("/record/")),
    "$everything": (
        None,
        lambda c, net: c.get(f"/fhir/Patient/{net['patient'].pk}/$everything", **net["bearer"]),
    ),
    "search by code": (
        None,
        lambda c, net: c.get("/fhir/Observation", {"code": "http://loinc.org|8867-4"}, **net["bearer"]),
    ),
    "clinician find and read": ("clinician", find_and_read),
    "correction queue": ("clinician", lambda c, net: c.get("/clinician/corrections/")),
    "IG by patient": ("ig", lambda c, net: c.get("/ig/", {"patient": net["patient"].pk.hex})),
    "IG by organisation over a month": (
        "ig",
        lambda c, net: c.get(
            "/ig/",
            {
                "organisation": net["hospital"].ods_code,
                "date_from": (timezone.localdate() - timedelta(days=30)).isoformat(),
                "date_to": timezone.localdate().isoformat(),
            },
        ),
    ),
    "access log": ("user", lambda c, net: c.get("/sharing/access-log/")),
}


# On a test database of a few rows the planner fairly walks any index from end to end (it
# costs nothing there), and ANALYZE of a few rows finds each key "most common": plans of
# such tables prove nothing. So before the requests are explained, the network grows on
# the server to thousands of patients, each with a copy of the fixture patient's items,
# and a year of audit events in the monthly partitions; then ANALYZE, as autovacuum would.
def grow(patient: Patient, *, patients: int = 4000, events: int = 200_000) -> set[str]:
    """Grow the network; return the big tables' relations with no live row, whose plans,
    over no rows, prove nothing either way."""
    partitions.ensure_months(since=(timezone.now() - timedelta(days=366)).date())
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ANALYZE waits for no deferred check
        cursor.execute(
            "INSERT INTO phr_patient (id, nhs_number, family_name, given_names, gender, deceased, postcode,"
            " created_at) SELECT gen_random_uuid(), 'G' || g, '', '', '', false, '', now()"
            " FROM generate_series(1, %s) AS g",
            [patients],
        )
        cursor.execute(
            "INSERT INTO phr_recordentry (id, owner_id, resource_type, fhir_id, patient_id, subject_ref,"
            " category,"
            " third_party, clinical_status, entered_in_error, display, clinical_date, json, content_hash,"
            " version,"
            " first_received_at, last_updated_at) SELECT gen_random_uuid(), e.owner_id, e.resource_type,"
            " e.fhir_id || '-' || p.nhs_number, p.id, e.subject_ref, e.category, false, e.clinical_status,"
            " false,"
            " e.display, e.clinical_date, e.json, e.content_hash, 1, now(), now() - random() * interval"
            " '300 days'"
            " FROM phr_recordentry e CROSS JOIN phr_patient p WHERE e.patient_id = %s AND p.nhs_number LIKE"
            " 'G%%'",
            [patient.pk],
        )
        cursor.execute(
            "INSERT INTO phr_entryversion (entry_id, number, json, content_hash, source, recorded_at,"
            " patient_id,"
            " subject_ref) SELECT id, 1, json, content_hash, 'ingest', now(), patient_id, subject_ref"
            " FROM phr_recordentry WHERE fhir_id LIKE '%%-G%%'"
        )
        cursor.execute(
            "INSERT INTO audit_auditevent (seq, occurred_at, action, organisation_id, patient_id,"
            " actor_label, entries,"
            " outcome, purpose, reason, detail, prev_hash, hash) SELECT nextval('audit_event_seq'),"
            " now() - ((g::bigint * 157) %% 31536000) * interval '1 second', 'record.read', o.id, p.id,"
            " 'Clinician', '', 'permit',"
            " 'direct_care', '', '{}', '', md5(g::text) || md5(g::text)"
            " FROM generate_series(1, %s) AS g"
            " JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM phr_patient) p ON p.n = g %% %s"
            " JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM phr_organisation) o"
            " ON o.n = g %% (SELECT count(*) FROM phr_organisation)",
            [events, patients],
        )
        cursor.execute("ANALYZE")
        cursor.execute(
            # No live row once analysed: a month ahead, or a partition whose rows a test rolled back.
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE ANY(%s) AND reltuples <= 0",
            [[f"{table}%" for table in BIG_TABLES]],
        )
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.parametrize("name", EVERYDAY)
def test_every_statement_of_an_everyday_request_reads_big_tables_by_index(name, everyday, client):
    from django.test.utils import CaptureQueriesContext

    who, call = EVERYDAY[name]
    if who is not None:
        client.force_login(everyday[who])
    with CaptureQueriesContext(connection) as captured:
        response = call(client, everyday)
    assert response.status_code == 200, response.content[:300]
    selects = [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert selects
    empty = grow(everyday["patient"])
    for sql in selects:
        tree = plan(sql, seqscan=True)
        scanned = [read for read in whole_table_reads(tree) if read.split(" on ")[-1] not in empty]
        months = {t for t in tables_read(tree) if t.startswith("audit_auditevent_") and t not in empty}
        if len(months) <= 2:
            # Pruned to a month (or two, as a local day starts in UTC's month before): the
            # planner may fairly read that month whole when the search is broad (one
            # organisation of three); the partitions bound it.
            scanned = [read for read in scanned if read.split(" on ")[-1] not in months]
        assert not scanned, f"{name}: {scanned} in\n{sql[:1500]}\n{json.dumps(tree, indent=1)[:4000]}"
