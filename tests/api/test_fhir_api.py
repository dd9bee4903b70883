"""The FHIR R4 facade at /fhir/: every response is FHIR R4 (checked with fhir.resources.R4B),
every read is the policy's and audited with exactly what it returned, and nothing tells a
forbidden resource from a missing one."""

import json
import uuid

import pytest
from django.conf import settings
from fhir.resources.R4B import get_fhir_model_class

from accuracy import services
from audit.models import AuditEvent
from consent.models import ConsentChoice, Decision, Scope
from consent.policy import actor_for
from phr.ingest import ingest_documents
from phr.models import Organisation, OrganisationKind, Patient, RecordEntry
from tests.feeds import collection, person
from tests.personas import ClinicianFactory, PatientUserFactory

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ADA_NHS = "9434765919"
BEN_NHS = "9990000018"
FHIR_JSON = "application/fhir+json; charset=utf-8"


def _condition(cid, code, display, recorded, subject="Patient/p1", category="problem-list-item"):
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": subject},
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": category,
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "recordedDate": recorded,
    }


ADA_GP = collection(
    person("p1", ADA_NHS, "Lovelace"),
    _condition("c1", "38341003", "Hypertensive disorder", "2020-05-01"),
    _condition("c2", "195967001", "Asthma", "2023-02-10", category="encounter-diagnosis"),
    _condition("c3", "44054006", "Diabetes mellitus type 2", "2024-07-15"),
    {
        "resourceType": "MedicationStatement",
        "id": "m1",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
        "effectiveDateTime": "2024-03-01",
        "dosage": [{"text": "50mg once daily"}],
    },
    {
        "resourceType": "AllergyIntolerance",
        "id": "a1",
        "patient": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": "91936005", "display": "Penicillin allergy"}]},
        "recordedDate": "2019-01-01",
    },
    {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}]},
        "effectiveDateTime": "2024-05-05T10:00:00Z",
        "valueQuantity": {"value": 72.50, "unit": "/min"},
    },
    {
        "resourceType": "Immunization",
        "id": "i1",
        "status": "completed",
        "patient": {"reference": "Patient/p1"},
        "vaccineCode": {"text": "Influenza vaccine"},
        "occurrenceDateTime": "2023-10-01",
    },
)
ADA_MENTAL = collection(
    person("mh1", ADA_NHS, "Lovelace"),
    _condition("d1", "35489007", "Depressive disorder", "2022-01-01", subject="Patient/mh1"),
)
BEN_GP = collection(
    person("p2", BEN_NHS, "Marsh"),
    _condition("b1", "38341003", "Hypertensive disorder", "2021-01-01", subject="Patient/p2"),
    _condition("c1", "195967001", "Asthma", "2021-01-01", subject="Patient/p2"),
)


@pytest.fixture
def net(gp, mental_health_trust, dr_gp, ig_officer):
    mind = mental_health_trust
    other_gp = Organisation.objects.create(
        ods_code="B20002", name="Hillside Surgery", kind=OrganisationKind.GP_PRACTICE
    )
    trust = Organisation.objects.create(
        ods_code="RX100", name="City Hospital", kind=OrganisationKind.ACUTE_TRUST
    )
    assert ingest_documents([("gp", ADA_GP)], organisation=gp).rejected == 0
    assert ingest_documents([("mh", ADA_MENTAL)], organisation=mind).rejected == 0
    assert ingest_documents([("ben", BEN_GP)], organisation=other_gp).rejected == 0
    ada = Patient.objects.get(nhs_number=ADA_NHS)
    ben = Patient.objects.get(nhs_number=BEN_NHS)
    people = {
        "ada": PatientUserFactory(email="ada@example.com", patient=ada),
        "ben": PatientUserFactory(email="ben@example.com", patient=ben),
        "gp": dr_gp,
        "trust": ClinicianFactory(email="dr.trust@example.com", organisation=trust),
        "ig": ig_officer,
    }
    return {"gp": gp, "mind": mind, "trust": trust, "ada": ada, "ben": ben, "people": people}


def validate(resource: dict) -> None:
    """Every resource parses with fhir.resources.R4B, and so does each one in a Bundle."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for item in resource.get("entry", []) if resource["resourceType"] == "Bundle" else []:
        inner = item["resource"]
        get_fhir_model_class(inner["resourceType"]).model_validate(inner)


def fhir(client, url, status=200) -> dict:
    response = client.get(url)
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == FHIR_JSON
    body = json.loads(response.content)
    validate(body)
    return body


def as_user(client, net, who):
    client.force_login(net["people"][who])
    return client


def ids(bundle) -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])]


def latest_read():
    return AuditEvent.objects.filter(action__startswith="record.").order_by("-seq").first()


# --- metadata ----------------------------------------------------------------------------


def test_metadata_is_a_valid_capability_statement_with_the_smart_endpoints(client, db):
    body = fhir(client, "/fhir/metadata")
    assert body["fhirVersion"] == "4.0.1"
    rest = body["rest"][0]
    assert rest["mode"] == "server"
    uris = {e["url"]: e["valueUri"] for e in rest["security"]["extension"][0]["extension"]}
    assert uris["authorize"].endswith("/o/authorize/")
    assert uris["token"].endswith("/o/token/")
    types = {r["type"] for r in rest["resource"]}
    assert {"Patient", "Condition", "Observation", "Consent", "AuditEvent", "Task"} <= types
    for resource in rest["resource"]:
        # Writes are advertised only where api.fhir does them (tests/api/test_fhir_write.py).
        writes = {"Task": {"update"}, "Communication": {"create"}}.get(resource["type"], set())
        assert {i["code"] for i in resource["interaction"]} <= {"read", "vread", "search-type", *writes}


# --- Read and search ---------------------------------------------------------------------


def test_a_patient_searches_their_own_conditions_and_nothing_else(client, net):
    as_user(client, net, "ada")
    bundle = fhir(client, f"/fhir/Condition?patient={net['ada'].pk}")
    assert bundle["type"] == "searchset"
    assert sorted(ids(bundle)) == ["Condition/c1", "Condition/c2", "Condition/c3", "Condition/d1"]
    assert bundle["total"] == 4
    # With no patient given, a patient's search is of their own record.
    assert sorted(ids(fhir(client, "/fhir/Condition"))) == sorted(ids(bundle))


def test_another_patients_resources_are_absent_from_searches_and_404_on_read(client, net):
    as_user(client, net, "ada")
    bundle = fhir(client, f"/fhir/Condition?patient={net['ben'].pk}")
    assert bundle["total"] == 0
    assert "entry" not in bundle
    forbidden = client.get("/fhir/Condition/b1")
    missing = client.get("/fhir/Condition/no-such-thing")
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.content == missing.content
    assert json.loads(forbidden.content)["issue"][0]["code"] == "not-found"
    forbidden_patient = client.get(f"/fhir/Patient/{net['ben'].pk}")
    missing_patient = client.get(f"/fhir/Patient/{uuid.uuid4()}")
    assert forbidden_patient.status_code == missing_patient.status_code == 404
    assert forbidden_patient.content == missing_patient.content == missing.content


def test_a_read_serves_the_stored_json_as_it_is_and_is_audited(client, net):
    as_user(client, net, "ada")
    response = client.get("/fhir/Observation/o1")
    entry = RecordEntry.objects.get(resource_type="Observation", fhir_id="o1")
    # As stored, but for the holder's reference to the patient, which names the network
    # patient (the one that resolves here), and meta.source, which names the holder.
    holder_id = RecordEntry.objects.get(
        resource_type="Patient", owner=entry.owner, patient=entry.patient
    ).fhir_id
    assert f'"Patient/{holder_id}"' in entry.json
    served = entry.json.replace(f'"Patient/{holder_id}"', f'"Patient/{entry.patient_id}"')
    source = f"{settings.PORTAL_URL}/fhir/Organization/{entry.owner.ods_code}"
    assert response.content.decode() == f'{{"meta":{{"source":"{source}"}},{served[1:]}'
    # Decimals exactly as the holder wrote them.
    assert ('"value":72.50' in entry.json) == ('"value":72.50' in response.content.decode())
    event = latest_read()
    assert (event.action, event.outcome) == ("record.read", "permit")
    assert event.entries == [f"{entry.pk.hex}:{entry.version}"]


def test_an_id_two_owners_share_is_read_by_entry_id_and_never_guessed(client, net):
    # Ben's practice also used "c1"; Ada may only see hers, so her read is unambiguous.
    as_user(client, net, "ada")
    assert fhir(client, "/fhir/Condition/c1")["code"]["coding"][0]["code"] == "38341003"
    mine = RecordEntry.objects.get(resource_type="Condition", fhir_id="c1", patient=net["ada"])
    assert fhir(client, f"/fhir/Condition/{mine.pk}")["id"] == "c1"
    theirs = RecordEntry.objects.get(resource_type="Condition", fhir_id="c1", patient=net["ben"])
    assert client.get(f"/fhir/Condition/{theirs.pk}").status_code == 404


def test_a_clinician_who_may_see_both_records_reads_the_id_held_longest_and_the_other_by_uuid(
    client, net, settings
):
    # Never a 409: another organisation reusing an id must not block a read (see
    # tests/api/test_ids_and_versions.py). Ada's c1 was in her record first.
    settings.CONSENT_MODEL = "opt-out"
    as_user(client, net, "trust")
    assert fhir(client, "/fhir/Condition/c1")["subject"]["reference"] == f"Patient/{net['ada'].pk}"
    theirs = RecordEntry.objects.get(resource_type="Condition", fhir_id="c1", patient=net["ben"])
    assert fhir(client, f"/fhir/Condition/{theirs.pk}")["subject"]["reference"] == f"Patient/{net['ben'].pk}"


def test_the_network_patient_is_read_by_its_uuid(client, net):
    as_user(client, net, "ada")
    body = fhir(client, f"/fhir/Patient/{net['ada'].pk}")
    assert body["id"] == str(net["ada"].pk)
    assert body["identifier"][0]["value"] == ADA_NHS
    bundle = fhir(client, "/fhir/Patient")
    assert ids(bundle) == [f"Patient/{net['ada'].pk}"]
    source = RecordEntry.objects.filter(resource_type="Patient", patient=net["ada"]).order_by(
        "first_received_at", "pk"
    )[0]
    assert latest_read().entries == [f"{source.pk.hex}:{source.version}"]


def test_search_audits_exactly_the_entries_returned(client, net):
    as_user(client, net, "ada")
    bundle = fhir(client, "/fhir/Condition?_count=2")
    event = latest_read()
    assert event.action == "record.search"
    served = RecordEntry.objects.filter(
        resource_type="Condition", patient=net["ada"], fhir_id__in=[i.split("/")[1] for i in ids(bundle)]
    )
    assert sorted(event.entries) == sorted(f"{e.pk.hex}:{e.version}" for e in served)
    assert len(event.entries) == 2


def test_paging_by_count_and_offset_with_next_links(client, net):
    as_user(client, net, "ada")
    first = fhir(client, "/fhir/Condition?_count=3")
    assert first["total"] == 4
    assert len(first["entry"]) == 3
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "_offset=3" in links["next"]
    assert "_count=3" in links["next"]
    second = fhir(client, links["next"].split("testserver", 1)[1])
    assert len(second["entry"]) == 1
    assert "next" not in {link["relation"] for link in second["link"]}
    assert set(ids(first)) | set(ids(second)) == {
        "Condition/c1",
        "Condition/c2",
        "Condition/c3",
        "Condition/d1",
    }
    for link in first["link"] + second["link"]:
        assert ADA_NHS not in link["url"]
        assert "Lovelace" not in link["url"]


def test_date_filters_with_prefixes(client, net):
    as_user(client, net, "ada")
    assert sorted(ids(fhir(client, "/fhir/Condition?date=ge2023"))) == ["Condition/c2", "Condition/c3"]
    assert ids(fhir(client, "/fhir/Condition?date=ge2023&date=lt2024")) == ["Condition/c2"]
    assert ids(fhir(client, "/fhir/Condition?date=2020-05-01")) == ["Condition/c1"]
    assert ids(fhir(client, "/fhir/Condition?date=eq2020-05")) == ["Condition/c1"]
    assert sorted(ids(fhir(client, "/fhir/Condition?date=le2022-01-01"))) == ["Condition/c1", "Condition/d1"]
    assert ids(fhir(client, "/fhir/Condition?date=gt2024-07-14")) == ["Condition/c3"]


def test_code_and_category_tokens(client, net):
    as_user(client, net, "ada")
    assert ids(fhir(client, f"/fhir/Condition?code={SNOMED}|195967001")) == ["Condition/c2"]
    assert sorted(ids(fhir(client, "/fhir/Condition?code=195967001,44054006"))) == [
        "Condition/c2",
        "Condition/c3",
    ]
    assert ids(fhir(client, "/fhir/Condition?category=encounter-diagnosis")) == ["Condition/c2"]
    assert ids(fhir(client, "/fhir/Observation?category=vital-signs&code=8867-4")) == ["Observation/o1"]
    assert fhir(client, "/fhir/Condition?code=http://example.org|195967001")["total"] == 0


def test_last_updated_and_id_filters(client, net):
    as_user(client, net, "ada")
    assert len(ids(fhir(client, "/fhir/Condition?_lastUpdated=ge2000-01-01"))) == 4
    assert fhir(client, "/fhir/Condition?_lastUpdated=gt2999")["total"] == 0
    assert ids(fhir(client, "/fhir/Condition?_id=c2")) == ["Condition/c2"]


def test_a_clinician_does_not_find_the_categories_the_patient_withheld(client, net):
    ConsentChoice.objects.create(
        patient=net["ada"], scope=Scope.CATEGORY, category="mental_health", decision=Decision.DENY
    )
    as_user(client, net, "trust")
    bundle = fhir(client, f"/fhir/Condition?patient={net['ada'].pk}")
    assert sorted(ids(bundle)) == ["Condition/c1", "Condition/c2", "Condition/c3"]
    assert bundle["total"] == 3
    assert client.get("/fhir/Condition/d1").status_code == 404
    # A clinician names the patient; a search without one is refused with the reason.
    missing = fhir(client, "/fhir/Condition", status=400)
    assert missing["issue"][0]["expression"] == ["patient"]


def test_other_stored_types_are_searched_generically(client, net):
    as_user(client, net, "ada")
    assert ids(fhir(client, "/fhir/MedicationStatement")) == ["MedicationStatement/m1"]
    assert ids(fhir(client, "/fhir/Immunization?date=2023")) == ["Immunization/i1"]
    assert fhir(client, "/fhir/CarePlan")["total"] == 0


# --- Patient operations ---------------------------------------------------------------


def test_everything_is_the_whole_permitted_record_patient_first(client, net):
    as_user(client, net, "ada")
    bundle = fhir(client, f"/fhir/Patient/{net['ada'].pk}/$everything")
    found = ids(bundle)
    assert found[0] == f"Patient/{net['ada'].pk}"
    assert len(found) == 1 + 8
    assert bundle["total"] == 9
    event = latest_read()
    assert event.action == "record.export"
    assert len(event.entries) == 9
    paged = fhir(client, f"/fhir/Patient/{net['ada'].pk}/$everything?_count=4")
    assert len(paged["entry"]) == 4
    assert paged["total"] == 9
    assert any(link["relation"] == "next" for link in paged["link"])


def test_summary_is_an_ips_style_document(client, net):
    as_user(client, net, "ada")
    bundle = fhir(client, f"/fhir/Patient/{net['ada'].pk}/$summary")
    assert bundle["type"] == "document"
    composition = bundle["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    sections = {s["title"]: s for s in composition["section"]}
    assert len(sections["Problems"]["entry"]) == 4
    assert len(sections["Allergies and intolerances"]["entry"]) == 1
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    for section in composition["section"]:
        for ref in section.get("entry", []):
            assert ref["reference"] in full_urls
    assert composition["subject"]["reference"] in full_urls


# --- Disputed items -----------------------------------------------------------------------


def flag_the_dose(net):
    """Ada disputes the dose of her MedicationStatement (the item is then "disputed")."""
    entry = RecordEntry.objects.get(resource_type="MedicationStatement")
    return services.submit_correction(
        actor=actor_for(net["people"]["ada"]),
        entry_id=entry.pk,
        element="dosage[0].text",
        proposed="5mg once daily",
        reason="My GP changed it",
        contact_preference="portal",
    )


def test_a_disputed_item_carries_the_disputed_tag(client, net):
    flag_the_dose(net)
    as_user(client, net, "ada")
    tags = fhir(client, "/fhir/MedicationStatement/m1")["meta"]["tag"]
    assert {
        "system": "https://patient-record-portal.example/CodeSystem/record-flags",
        "code": "disputed",
    }.items() <= (tags[0].items())
    searched = fhir(client, "/fhir/MedicationStatement")["entry"][0]["resource"]
    assert searched["meta"]["tag"][0]["code"] == "disputed"
    assert "tag" not in fhir(client, "/fhir/Condition/c1")["meta"]  # not disputed: its holder alone
    everything = fhir(client, f"/fhir/Patient/{net['ada'].pk}/$everything")["entry"]
    tagged = {
        e["resource"]["resourceType"]
        for e in everything
        if any(t["code"] == "disputed" for t in e["resource"].get("meta", {}).get("tag", []))
    }
    assert tagged == {"MedicationStatement"}


# --- Consent, audit, provenance, corrections ----------------------------------------------


def test_consent_is_the_patients_choices(client, net):
    as_user(client, net, "ada")
    bundle = fhir(client, f"/fhir/Consent?patient={net['ada'].pk}")
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Consent"]
    assert AuditEvent.objects.filter(action="consent.read", patient=net["ada"], outcome="permit").exists()
    assert fhir(client, f"/fhir/Consent?patient={net['ben'].pk}")["total"] == 0


def test_audit_events_for_the_patient_and_for_ig(client, net):
    as_user(client, net, "trust")
    fhir(client, f"/fhir/Condition?patient={net['ada'].pk}")
    client.logout()
    as_user(client, net, "ada")
    mine = fhir(client, "/fhir/AuditEvent")
    assert mine["total"] >= 1
    assert all(e["resource"]["resourceType"] == "AuditEvent" for e in mine["entry"])
    assert fhir(client, f"/fhir/AuditEvent?patient={net['ben'].pk}")["total"] == 0
    client.logout()
    as_user(client, net, "ig")
    everything = fhir(client, "/fhir/AuditEvent?_count=5")
    assert everything["total"] > mine["total"]
    assert len(everything["entry"]) == 5
    about_ada = fhir(client, f"/fhir/AuditEvent?patient={net['ada'].pk}")
    assert about_ada["total"] >= 1
    # An IG officer sees the trail, never the record.
    assert fhir(client, f"/fhir/Condition?patient={net['ada'].pk}")["total"] == 0


def _accepted_correction(net):
    entry = RecordEntry.objects.get(resource_type="MedicationStatement")
    request = flag_the_dose(net)
    gp = actor_for(net["people"]["gp"])
    request = services.start_review(actor=gp, request_id=request.pk, revision=request.revision)
    amended = json.loads(entry.json)
    amended["dosage"] = [{"text": "5mg once daily"}]
    return services.accept(
        actor=gp,
        request_id=request.pk,
        revision=request.revision,
        resource_json=json.dumps(amended),
        based_on_version=1,
    )


def test_provenance_of_an_amendment_is_found_by_its_target_orperson(client, net):
    request = _accepted_correction(net)
    as_user(client, net, "ada")
    by_target = fhir(client, "/fhir/Provenance?target=MedicationStatement/m1")
    assert ids(by_target) == [f"Provenance/correction-{request.pk.hex}"]
    assert ids(fhir(client, "/fhir/Provenance")) == ids(by_target)
    event = latest_read()
    provenance = RecordEntry.objects.get(resource_type="Provenance")
    assert event.entries == [f"{provenance.pk.hex}:{provenance.version}"]
    client.logout()
    as_user(client, net, "ben")
    assert fhir(client, "/fhir/Provenance?target=MedicationStatement/m1")["total"] == 0


def test_the_amended_and_the_earlier_version_are_both_readable(client, net):
    _accepted_correction(net)
    as_user(client, net, "ada")
    assert fhir(client, "/fhir/MedicationStatement/m1")["dosage"][0]["text"] == "5mg once daily"
    first = fhir(client, "/fhir/MedicationStatement/m1/_history/1")
    assert first["dosage"][0]["text"] == "50mg once daily"
    assert client.get("/fhir/MedicationStatement/m1/_history/9").status_code == 404
    client.logout()
    as_user(client, net, "ben")
    assert client.get("/fhir/MedicationStatement/m1/_history/1").status_code == 404


def test_a_patient_reading_an_id_reused_in_another_record_leaves_no_trace_there(client, net):
    as_user(client, net, "ada")
    fhir(client, "/fhir/Condition/c1")
    assert not AuditEvent.objects.filter(patient=net["ben"]).exists()


def test_tasks_and_communications_of_a_correction(client, net):
    request = _accepted_correction(net)
    as_user(client, net, "ada")
    task = fhir(client, f"/fhir/Task/{request.pk}")
    assert task["id"] == str(request.pk)
    assert task["status"] == "completed"
    assert ids(fhir(client, f"/fhir/Task?patient={net['ada'].pk}")) == [f"Task/{request.pk}"]
    fhir(client, f"/fhir/Communication?part-of=Task/{request.pk}")
    client.logout()
    as_user(client, net, "gp")
    assert ids(fhir(client, "/fhir/Task?owner=A10001")) == [f"Task/{request.pk}"]
    client.logout()
    as_user(client, net, "trust")
    assert client.get(f"/fhir/Task/{request.pk}").content == client.get(f"/fhir/Task/{uuid.uuid4()}").content
    assert fhir(client, "/fhir/Task?owner=A10001")["total"] == 0


# --- Errors ---------------------------------------------------------------------------------


def test_errors_are_operation_outcomes_naming_what_was_wrong(client, net):
    as_user(client, net, "ada")
    unknown = fhir(client, "/fhir/Condition?foo=bar", status=400)
    assert unknown["issue"][0]["expression"] == ["foo"]
    assert fhir(client, "/fhir/Condition?date=yesterday", status=400)["issue"][0]["expression"] == ["date"]
    assert fhir(client, "/fhir/Condition?_count=lots", status=400)["issue"][0]["expression"] == ["_count"]
    assert fhir(client, "/fhir/Condition?patient=9434765919", status=400)["issue"][0]["expression"] == [
        "patient"
    ]
    assert fhir(client, "/fhir/Spaceship", status=404)["issue"][0]["code"] == "not-supported"
    assert fhir(client, "/fhir/Spaceship/1", status=404)["resourceType"] == "OperationOutcome"


def test_bad_inputs_never_answer_a_server_error_or_an_html_page(client, net):
    as_user(client, net, "ada")
    urls = [
        "/fhir/",
        "/fhir/nothing/here/at/all",
        "/fhir/Communication/x%0A",
        "/fhir/Condition/%0A%0D",
        "/fhir/Condition?date=ge",
        "/fhir/Condition?date=2024-13-45",
        "/fhir/Condition?_lastUpdated=xx2020",
        "/fhir/Condition?code=",
        "/fhir/Condition?code=|",
        "/fhir/Condition?_offset=-1",
        "/fhir/Condition?_count=0",
        "/fhir/Condition?_count=100000",
        "/fhir/Condition/%27%22",
        "/fhir/Patient/not-a-uuid",
        "/fhir/Patient/not-a-uuid/$everything",
        f"/fhir/Patient/{net['ada'].pk}/$everything?_count=x",
        f"/fhir/Patient/{net['ada'].pk}/$summary?x=1",
        "/fhir/Task/not-a-uuid",
        "/fhir/Task?patient=nope",
        "/fhir/Communication",
        "/fhir/Communication?part-of=Task/nope",
        "/fhir/Provenance?target=nope",
        "/fhir/Provenance?target=A/b/c",
        "/fhir/AuditEvent?patient=x",
        "/fhir/Consent?patient=x",
        "/fhir/Resource",
        "/fhir/HumanName",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code < 500, url
        assert response["Content-Type"] == FHIR_JSON, url
        validate(json.loads(response.content))
    posted = client.post("/fhir/Condition", data="{}", content_type="application/fhir+json")
    assert posted.status_code == 405
    assert posted["Content-Type"] == FHIR_JSON


def test_no_sign_in_is_a_401_with_a_bearer_challenge(client, net):
    response = client.get(f"/fhir/Condition?patient={net['ada'].pk}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(response.content)["issue"][0]["code"] == "login"
    assert client.get("/fhir/metadata").status_code == 200


# --- Bearer tokens ------------------------------------------------------------------------


def _token(net, scope, *, system=False):
    from oauth2_provider.models import Application

    from api.models import SystemClient
    from api.oauth_server import issue_access_token

    if system:
        app = Application.objects.create(
            name="GP system",
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            client_secret="system-secret-for-tests-only",
        )
        SystemClient.objects.create(application=app, organisation=net["gp"])
        user = None
    else:
        app = Application.objects.create(
            name="My Health App",
            client_type=Application.CLIENT_PUBLIC,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris="https://app.example/callback",
            client_secret="",
        )
        user = net["people"]["ada"]
    raw, _ = issue_access_token(application=app, user=user, scope=scope, minutes=5, issued_by="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_a_patients_app_reads_what_its_token_allows(client, net):
    headers = _token(net, "patient/Condition.read")
    response = client.get("/fhir/Condition", **headers)
    assert response.status_code == 200
    assert len(json.loads(response.content)["entry"]) == 4
    refused = client.get("/fhir/Observation", **headers)
    assert refused.status_code == 403
    assert json.loads(refused.content)["issue"][0]["code"] == "forbidden"
    assert client.get(f"/fhir/Condition?patient={net['ben'].pk}", **headers).json()["total"] == 0


def test_an_organisation_system_reads_as_its_organisation(client, net):
    headers = _token(net, "system/*.read", system=True)
    bundle = json.loads(client.get(f"/fhir/Condition?patient={net['ada'].pk}", **headers).content)
    validate(bundle)
    assert "Condition/c1" in ids(bundle)
    assert json.loads(client.get("/fhir/Task?owner=A10001", **headers).content)["total"] == 0


def test_an_unknown_token_is_a_401_with_the_invalid_token_challenge(client, net):
    response = client.get("/fhir/Condition", HTTP_AUTHORIZATION="Bearer not-a-real-token")
    assert response.status_code == 401
    assert "invalid_token" in response["WWW-Authenticate"]
    validate(json.loads(response.content))
