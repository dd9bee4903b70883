"""The ingest contract: what is stored, what is rejected and how, what never changes."""

import copy
import json
from collections import Counter

import orjson
import pytest

from audit.models import AuditEvent
from phr.ingest import UnusableInput, get_or_register_organisation, ingest_documents, ingest_paths
from phr.models import Category, EntryVersion, IngestBatch, Organisation, Patient, RecordEntry

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def patient(pid="p1", nhs="9990000018", family="Okafor", given="Ada"):
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": family, "given": [given]}],
        "gender": "female",
        "birthDate": "1971-03-04",
    }


def condition(cid="c1", subject="Patient/p1", code="38341003", display="Hypertensive disorder", **extra):
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": subject},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]},
        "recordedDate": "2024-05-01",
        **extra,
    }


def bundle(*resources, kind="collection", urn=False):
    entries = []
    for r in resources:
        entry = {"resource": r}
        if urn:
            entry["fullUrl"] = f"urn:uuid:{r.pop('id')}"
        entries.append(entry)
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def synthea_entries(path):
    data = json.loads(path.read_text())
    return [e["resource"] for e in data["entry"]]


# --- The shared samples -------------------------------------------------------------


def synthea_files():
    from tests.conftest import SAMPLES

    return sorted((SAMPLES / "synthea").glob("*.json")) if SAMPLES.is_dir() else []


@pytest.mark.django_db
@pytest.mark.parametrize("path", synthea_files(), ids=lambda p: p.name.split("_")[0])
def test_every_synthea_bundle_is_accepted_whole_and_stored_as_sent(samples, path, hospital):
    resources = synthea_entries(path)

    result = ingest_paths([path], organisation=hospital)

    assert result.rejected == 0, result.issues
    assert result.accepted == len(resources)
    distinct = {(r["resourceType"], r["id"]) for r in resources}
    assert result.created == len(distinct)
    assert RecordEntry.objects.filter(owner=hospital).count() == len(distinct)
    assert EntryVersion.objects.filter(entry__owner=hospital).count() == len(distinct)
    stored = Counter(RecordEntry.objects.filter(owner=hospital).values_list("resource_type", flat=True))
    assert stored == Counter(t for t, _ in distinct)
    # Every item about the patient is on that patient's record.
    person = Patient.objects.get()
    clinical = [r for r in resources if r["resourceType"] not in ("Organization", "Practitioner")]
    assert person.entries.count() == len({(r["resourceType"], r["id"]) for r in clinical})


@pytest.mark.django_db
def test_synthea_urn_references_are_stored_as_resolved_references(samples, hospital):
    path = next((samples / "synthea").glob("Clemente_Kreiger_*.json"))
    ingest_paths([path], organisation=hospital)

    encounter = RecordEntry.objects.filter(resource_type="Encounter").first()
    stored = orjson.loads(encounter.json)
    assert stored["subject"]["reference"].startswith("Patient/")
    assert "urn:uuid:" not in encounter.json
    assert encounter.subject_ref == stored["subject"]["reference"]


@pytest.mark.django_db
def test_ingesting_the_same_samples_again_changes_nothing(samples, hospital):
    paths = sorted((samples / "synthea").glob("*.json"))[:3]
    first = ingest_paths(paths, organisation=hospital)
    versions = EntryVersion.objects.count()
    entries = list(RecordEntry.objects.order_by("id").values_list("id", "version", "content_hash"))

    again = ingest_paths(paths, organisation=hospital)

    assert again.created == again.updated == 0
    assert again.unchanged == again.accepted == first.accepted
    assert EntryVersion.objects.count() == versions
    assert list(RecordEntry.objects.order_by("id").values_list("id", "version", "content_hash")) == entries


@pytest.mark.django_db
def test_one_changed_resource_makes_exactly_one_new_version_and_keeps_the_old(samples, hospital):
    path = next((samples / "synthea").glob("Clemente_Kreiger_*.json"))
    data = json.loads(path.read_text())
    ingest_documents([("first", copy.deepcopy(data))], organisation=hospital)
    target = next(e for e in data["entry"] if e["resource"]["resourceType"] == "Observation")
    old_value = target["resource"]["valueQuantity"]["value"]
    target["resource"]["valueQuantity"]["value"] = old_value + 1

    result = ingest_documents([("second", data)], organisation=hospital)

    assert (result.created, result.updated) == (0, 1)
    assert result.unchanged == result.accepted - 1
    entry = RecordEntry.objects.get(
        resource_type="Observation", fhir_id=target["fullUrl"].removeprefix("urn:uuid:")
    )
    assert entry.version == 2
    first, second = entry.versions.order_by("number")
    assert orjson.loads(first.json)["valueQuantity"]["value"] == old_value
    assert orjson.loads(second.json)["valueQuantity"]["value"] == old_value + 1
    assert entry.json == second.json
    assert first.batch_id != second.batch_id


@pytest.mark.django_db
def test_uk_core_examples_ingest_and_anything_rejected_names_its_element(samples, hospital):
    result = ingest_paths([samples / "ukcore"], organisation=hospital)

    files = list((samples / "ukcore").glob("*.json"))
    received = sum(
        len(d.get("entry", [])) if d.get("resourceType") == "Bundle" else 1
        for d in (json.loads(f.read_text()) for f in files)
    )
    assert result.accepted + result.rejected == received
    assert all(issue.get("expression") for issue in result.issues if issue["severity"] == "error")
    # The examples of the portal's own types (AuditEvent, Consent, Provenance) are refused
    # from an organisation, each by name; everything else is accepted.
    refused = {t for t, row in result.by_type.items() if row.get("rejected")}
    assert refused == {"AuditEvent", "Consent", "Provenance"}, result.issues
    assert result.rejected == 3, result.issues
    assert all("the portal keeps its own" in issue["diagnostics"] for issue in result.issues)
    richard = Patient.objects.get(nhs_number="9912003888")
    assert richard.family_name.lower() == "smith"
    assert RecordEntry.objects.filter(resource_type="AllergyIntolerance", entered_in_error=True).exists()
    # Reference data is kept without a patient; a reference to something absent is kept as sent.
    assert RecordEntry.objects.filter(resource_type="Organization", patient=None).exists()


# --- Rejections -----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_invalid_resource_is_rejected_naming_its_element_and_the_rest_are_stored(gp):
    bad = condition("c2")
    bad["code"]["coding"][0]["system"] = 42
    doc = bundle(patient(), condition("c1"), bad, kind="batch")

    result = ingest_documents([("feed.json", doc)], organisation=gp)

    assert (result.accepted, result.rejected) == (2, 1)
    (issue,) = result.issues
    assert issue["expression"] == ["Bundle.entry[2].resource.code.coding[0].system"]
    assert issue["severity"] == "error"
    assert "must be a string" in issue["diagnostics"]
    assert set(RecordEntry.objects.values_list("fhir_id", flat=True)) == {"p1", "c1"}


@pytest.mark.django_db
def test_atomic_stores_nothing_when_anything_is_rejected(gp):
    bad = condition("c2", recordedDate="not a date")
    result = ingest_documents([("feed.json", bundle(patient(), bad))], organisation=gp, atomic=True)

    assert result.accepted == 0
    assert result.rejected == 2
    assert result.issues[0]["expression"] == ["Bundle.entry[1].resource.recordedDate"]
    assert not RecordEntry.objects.exists()
    assert not Patient.objects.exists()


@pytest.mark.django_db
def test_an_unknown_resource_type_and_an_unknown_element_are_rejected_by_name(gp):
    doc = bundle({"resourceType": "Spaceship", "id": "x"}, {**condition(), "colour": "red"})
    result = ingest_documents([("feed.json", doc)], organisation=gp)

    assert result.rejected == 2
    expressions = [i["expression"][0] for i in result.issues]
    assert expressions == ["Bundle.entry[0].resource.resourceType", "Bundle.entry[1].resource.colour"]
    assert "not a FHIR R4 resource type" in result.issues[0]["diagnostics"]


@pytest.mark.django_db
def test_r5_only_content_is_rejected_because_the_record_is_r4(gp):
    # Encounter.class is a Coding in R4 and a list of CodeableConcepts in R5.
    r5 = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "completed",
        "class": [{"coding": [{"code": "AMB"}]}],
    }
    result = ingest_documents([("r5.json", r5)], organisation=gp)
    assert result.rejected == 1
    assert any(i["expression"][0].startswith("Encounter") for i in result.issues)


@pytest.mark.django_db
def test_a_delete_in_a_transaction_is_refused_and_nothing_is_removed(gp):
    ingest_documents([("a", bundle(patient()))], organisation=gp)
    doc = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": "Patient/p1"}}],
    }
    result = ingest_documents([("b", doc)], organisation=gp)
    assert result.rejected == 1
    assert result.issues[0]["expression"] == ["Bundle.entry[0].resource"]
    assert RecordEntry.objects.filter(fhir_id="p1").exists()


# --- Identity, ownership and patients -------------------------------------------------


@pytest.mark.django_db
def test_a_resource_without_id_takes_its_identity_from_the_entry_full_url(gp):
    doc = bundle(patient(pid="7f0c7a3e-0000-4000-8000-000000000001"), urn=True)
    ingest_documents([("t", doc)], organisation=gp)
    entry = RecordEntry.objects.get()
    assert entry.fhir_id == "7f0c7a3e-0000-4000-8000-000000000001"
    assert orjson.loads(entry.json)["id"] == entry.fhir_id


@pytest.mark.django_db
def test_a_resource_with_no_id_at_all_is_identified_by_content_so_resending_changes_nothing(gp):
    anonymous = patient()
    del anonymous["id"]
    ingest_documents([("a", copy.deepcopy(anonymous))], organisation=gp)
    again = ingest_documents([("a", copy.deepcopy(anonymous))], organisation=gp)
    assert again.unchanged == 1
    assert RecordEntry.objects.count() == 1


@pytest.mark.django_db
def test_the_owner_is_the_sender_never_the_data(gp, hospital):
    claimed = {**condition(), "asserter": {"reference": "Organization/RX100"}, "meta": {"source": "RX100"}}
    ingest_documents([("a", bundle(patient(), claimed))], organisation=gp)
    ingest_documents([("b", bundle(patient(), condition()))], organisation=hospital)

    owners = set(RecordEntry.objects.filter(fhir_id="c1").values_list("owner__ods_code", flat=True))
    assert owners == {"A10001", "RX100"}
    assert RecordEntry.objects.filter(fhir_id="c1").count() == 2


@pytest.mark.django_db
def test_patients_are_matched_across_organisations_by_nhs_number(gp, hospital):
    ingest_documents([("a", bundle(patient(pid="gp-7"), condition(subject="Patient/gp-7")))], organisation=gp)
    ingest_documents(
        [("b", bundle(patient(pid="MRN55", family="OKAFOR"), condition("c9", subject="Patient/MRN55")))],
        organisation=hospital,
    )
    assert Patient.objects.count() == 1
    person = Patient.objects.get()
    assert person.nhs_number == "9990000018"
    assert set(person.entries.values_list("owner__ods_code", "resource_type")) == {
        ("A10001", "Patient"),
        ("A10001", "Condition"),
        ("RX100", "Patient"),
        ("RX100", "Condition"),
    }


@pytest.mark.django_db
def test_an_invalid_nhs_number_never_matches_anyone(gp, hospital):
    ingest_documents([("a", patient(pid="x1"))], organisation=gp)
    ingest_documents([("b", patient(pid="x2", nhs="9990000019"))], organisation=hospital)
    assert Patient.objects.count() == 2
    assert Patient.objects.filter(nhs_number=None).count() == 1


@pytest.mark.django_db
def test_patients_without_nhs_number_match_by_the_configured_identifier_system(gp, hospital, settings):
    settings.PATIENT_IDENTIFIER_SYSTEMS = ["https://example.org/city-person-id"]

    def person(pid):
        return {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [{"system": "https://example.org/city-person-id", "value": "CP-1"}],
        }

    ingest_documents([("a", person("one"))], organisation=gp)
    ingest_documents([("b", person("two"))], organisation=hospital)
    assert Patient.objects.count() == 1


@pytest.mark.django_db
def test_ndjson_files_resolve_references_whatever_the_order(gp, tmp_path):
    (tmp_path / "1-Condition.ndjson").write_text(
        "\n".join(json.dumps(condition(f"c{i}", subject="Patient/bulk-1")) for i in range(3)) + "\n"
    )
    (tmp_path / "2-Patient.ndjson").write_text(json.dumps(patient(pid="bulk-1")) + "\n")

    result = ingest_paths([tmp_path], organisation=gp)

    assert result.accepted == 4
    person = Patient.objects.get()
    assert person.entries.filter(resource_type="Condition").count() == 3


@pytest.mark.django_db
def test_items_that_arrive_before_their_patient_join_the_record_when_it_comes(gp):
    ingest_documents([("early", condition(subject="Patient/late"))], organisation=gp)
    assert RecordEntry.objects.get().patient is None

    ingest_documents([("later", patient(pid="late"))], organisation=gp)

    assert RecordEntry.objects.get(resource_type="Condition").patient == Patient.objects.get()


# --- Counting -------------------------------------------------------------------------


@pytest.mark.django_db
def test_counts_include_repeats_and_add_up(gp):
    org = {"resourceType": "Organization", "id": "o1", "name": "Riverside Surgery"}
    changed = {**condition(), "note": [{"text": "reviewed"}]}
    docs = [("a", bundle(patient(), org, condition())), ("b", bundle(org, changed))]

    result = ingest_documents(docs, organisation=gp)

    assert result.accepted + result.rejected == 5
    assert (result.created, result.updated, result.unchanged) == (3, 1, 1)
    assert result.created + result.updated + result.unchanged == result.accepted
    assert RecordEntry.objects.get(fhir_id="c1").version == 2


@pytest.mark.django_db
def test_a_new_last_updated_stamp_alone_is_not_a_change(gp):
    first = {**patient(), "meta": {"lastUpdated": "2024-01-01T00:00:00Z"}}
    second = {**patient(), "meta": {"lastUpdated": "2025-01-01T00:00:00Z"}}
    ingest_documents([("a", first)], organisation=gp)
    result = ingest_documents([("b", second)], organisation=gp)
    assert result.unchanged == 1


# --- Columns --------------------------------------------------------------------------


@pytest.mark.django_db
def test_columns_for_pages_and_searches_are_filled(gp):
    withdrawn = condition(
        "c2",
        verificationStatus={
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "entered-in-error",
                }
            ]
        },
    )
    ingest_documents(
        [
            (
                "a",
                bundle(
                    patient(),
                    condition(
                        clinicalStatus={
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "code": "active",
                                }
                            ]
                        }
                    ),
                    withdrawn,
                ),
            )
        ],
        organisation=gp,
    )

    entry = RecordEntry.objects.get(fhir_id="c1")
    assert entry.display == "Hypertensive disorder"
    assert entry.clinical_status == "active"
    assert entry.clinical_date.date().isoformat() == "2024-05-01"
    assert entry.category == Category.GENERAL
    assert not entry.entered_in_error
    assert RecordEntry.objects.get(fhir_id="c2").entered_in_error
    assert len(entry.content_hash) == 64


@pytest.mark.django_db
def test_sensitivity_comes_from_labels_codes_and_the_owner(gp, mental_health_trust):
    labelled = condition(
        "s1",
        meta={"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "SEX"}]},
    )
    coded = condition("s2", code="35489007", display="Depressive disorder")
    ingest_documents([("a", bundle(patient(), labelled, coded, condition("s3")))], organisation=gp)
    ingest_documents([("b", bundle(patient(), condition("s4")))], organisation=mental_health_trust)

    category = dict(RecordEntry.objects.filter(resource_type="Condition").values_list("fhir_id", "category"))
    assert category == {
        "s1": Category.SEXUAL_HEALTH,
        "s2": Category.MENTAL_HEALTH,
        "s3": Category.GENERAL,
        "s4": Category.MENTAL_HEALTH,
    }


# --- History is never rewritten ---------------------------------------------------------


@pytest.mark.django_db
def test_versions_cannot_be_changed_or_deleted_by_the_app(gp):
    ingest_documents([("a", patient())], organisation=gp)
    version = EntryVersion.objects.get()
    version.json = "{}"
    with pytest.raises(TypeError):
        version.save()
    with pytest.raises(TypeError):
        version.delete()
    with pytest.raises(TypeError):
        EntryVersion.objects.update(json="{}")
    with pytest.raises(TypeError):
        EntryVersion.objects.all().delete()


@pytest.mark.django_db
def test_on_postgresql_the_database_itself_refuses_to_rewrite_a_version(gp):
    from django.db import DatabaseError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the trigger exists on PostgreSQL only")
    ingest_documents([("a", patient())], organisation=gp)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE phr_entryversion SET json = '{}'")


# --- Batches, organisations, audit ------------------------------------------------------


@pytest.mark.django_db
def test_every_ingest_writes_an_audit_event_and_a_finished_batch(gp):
    result = ingest_documents([("a", bundle(patient(), condition()))], organisation=gp)
    batch = IngestBatch.objects.get()
    assert str(batch.id) == result.batch_id
    assert (batch.status, batch.accepted, batch.total) == ("done", 2, 2)
    event = AuditEvent.objects.get(action="ingest.batch")
    assert event.organisation == gp
    assert event.detail["accepted"] == 2
    # Counts and ids only: no clinical content in the audit detail.
    assert "Hypertensive" not in json.dumps(event.detail)


@pytest.mark.django_db
def test_org_name_registers_a_new_organisation_and_cannot_rename_one(gp):
    new = get_or_register_organisation("y0z9q", "Harbour Walk-in Centre")
    assert (new.ods_code, new.name) == ("Y0Z9Q", "Harbour Walk-in Centre")
    same = get_or_register_organisation("A10001", "Someone Else")
    assert same == gp
    assert Organisation.objects.get(pk=gp.pk).name == "Riverside Surgery"
    with pytest.raises(UnusableInput, match="not a member"):
        get_or_register_organisation("ZZZ99")
    with pytest.raises(UnusableInput, match="not an ODS code"):
        get_or_register_organisation("../etc", "x")


@pytest.mark.django_db
def test_unusable_input_stores_nothing_and_closes_the_batch(gp, tmp_path):
    (tmp_path / "good.json").write_text(json.dumps(patient()))
    (tmp_path / "bad.json").write_text('{"resourceType": "Patient", "id": ')
    with pytest.raises(UnusableInput, match=r"bad\.json: not valid JSON"):
        ingest_paths([tmp_path], organisation=gp)
    assert not RecordEntry.objects.exists()
    assert IngestBatch.objects.get().status == "failed"
    assert AuditEvent.objects.get().outcome == "deny"


@pytest.mark.django_db
def test_ids_longer_than_fhir_allows_are_rejected_by_name(gp):
    result = ingest_documents([("a", patient(pid="a" * 65))], organisation=gp)
    assert result.rejected == 1
    assert result.issues[0]["expression"] == ["Patient.id"]


@pytest.mark.django_db
def test_malformed_structures_are_rejected_or_refused_never_crash(gp):
    """A seeded mutation run over a real bundle: every outcome is a result or UnusableInput."""
    import random

    rng = random.Random(20261121)
    oddities = [None, 5, "x", [], {}, [None], {"a": 1}, True, 1.5, "urn:uuid:zzz", "a" * 100]
    base = bundle(
        patient(), condition(), condition("c2"), {"resourceType": "Organization", "id": "o", "name": "n"}
    )

    def mutate(node):
        if isinstance(node, dict) and node:
            key = rng.choice(list(node))
            if rng.random() < 0.35:
                node[key] = rng.choice(oddities)
            else:
                mutate(node[key])
        elif isinstance(node, list) and node:
            i = rng.randrange(len(node))
            if rng.random() < 0.35:
                node[i] = rng.choice(oddities)
            else:
                mutate(node[i])

    outcomes = Counter()
    for _ in range(150):
        doc = copy.deepcopy(base)
        for _ in range(2):
            mutate(doc)
        try:
            result = ingest_documents([("m", doc)], organisation=gp)
        except UnusableInput:
            outcomes["unusable"] += 1
            continue
        assert all(i.get("diagnostics") for i in result.issues)
        outcomes["rejected" if result.rejected else "accepted"] += 1
    assert outcomes["rejected"] > 0


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("F32.1", Category.MENTAL_HEALTH),
        ("A56.0", Category.SEXUAL_HEALTH),
        ("B20", Category.SEXUAL_HEALTH),
        ("J45", Category.GENERAL),
        ("F64.0", Category.GENDER_IDENTITY),  # before the rest of chapter F
        ("F640", Category.GENDER_IDENTITY),
        ("Z31.2", Category.ASSISTED_CONCEPTION),
        ("Z311", Category.ASSISTED_CONCEPTION),
        ("Z31.4", Category.GENERAL),  # procreative investigation, not assisted conception
    ],
)
def test_icd10_chapters_mark_mental_and_sexual_health(code, expected):
    from phr.columns import category

    resource = {
        "resourceType": "Condition",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]},
    }
    assert category(resource, "gp_practice") == expected


@pytest.mark.parametrize(
    ("coding", "security", "expected"),
    [
        ({"system": "http://snomed.info/sct", "code": "93461009"}, None, Category.GENDER_IDENTITY),
        ({"system": "http://snomed.info/sct", "code": "58533008"}, None, Category.ASSISTED_CONCEPTION),
        ({"system": "http://snomed.info/sct", "code": "304023008"}, None, Category.ASSISTED_CONCEPTION),
        (
            {"system": "http://snomed.info/sct", "code": "38341003"},
            "assisted_conception",
            Category.ASSISTED_CONCEPTION,
        ),
        (
            {"system": "http://snomed.info/sct", "code": "38341003"},
            "gender_identity",
            Category.GENDER_IDENTITY,
        ),
    ],
)
def test_assisted_conception_and_gender_identity_are_classified_from_codes_and_labels(
    coding, security, expected
):
    from phr.columns import category

    resource = {"resourceType": "Condition", "code": {"coding": [coding]}}
    if security:
        resource["meta"] = {"security": [{"code": security}]}
    assert category(resource, "gp_practice") == expected


@pytest.mark.django_db
def test_decimals_keep_their_precision_exactly_as_received(gp, tmp_path):
    observation = (
        '{"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "Potassium"},'
        ' "valueQuantity": {"value": 4.10, "unit": "mmol/L"},'
        ' "referenceRange": [{"low": {"value": 3.50}, "high": {"value": 5.3}}]}'
    )
    (tmp_path / "o.json").write_text(observation)

    ingest_paths([tmp_path / "o.json"], organisation=gp)

    stored = RecordEntry.objects.get().json
    assert '"value":4.10' in stored
    assert '"value":3.50' in stored
    assert '"value":5.3' in stored
    again = ingest_paths([tmp_path / "o.json"], organisation=gp)
    assert again.unchanged == 1


@pytest.mark.django_db
def test_a_changed_precision_is_a_change(gp, tmp_path):
    doc = (
        '{"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},'
        ' "valueQuantity": {"value": %s}}'
    )
    (tmp_path / "a.json").write_text(doc % "4.1")
    (tmp_path / "b.json").write_text(doc % "4.10")
    ingest_paths([tmp_path / "a.json"], organisation=gp)
    result = ingest_paths([tmp_path / "b.json"], organisation=gp)
    assert result.updated == 1
