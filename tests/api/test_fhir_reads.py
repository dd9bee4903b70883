"""FHIR reads beyond the record: the portal's own resources read by id exactly as their
searches show them, the network's reference data, Patient search by identifier kept out
of URLs, and how a search answers (_sort, _summary=count, _elements)."""

import json
import uuid

from django.conf import settings

from accuracy import services
from audit.models import AuditEvent
from consent.models import ConsentChoice, Decision, Scope
from consent.policy import actor_for
from phr.models import RecordEntry
from tests.api.test_fhir_api import (
    ADA_NHS,
    BEN_NHS,
    FHIR_JSON,
    SNOMED,
    _accepted_correction,
    _token,
    as_user,
    fhir,
    flag_the_dose,
    ids,
    validate,
)
from tests.api.test_fhir_api import net as net  # the shared network, found by name
from tests.feeds import NHS
from tests.personas import ClinicianFactory, CorrectionRequestFactory

FORM = "application/x-www-form-urlencoded"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
SUBSETTED = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"


def posted(client, url, body: dict, status=200, **headers) -> dict:
    from urllib.parse import urlencode

    response = client.post(url, data=urlencode(body), content_type=FORM, **headers)
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == FHIR_JSON
    found = json.loads(response.content)
    validate(found)
    return found


def same_404(client, forbidden: str, missing: str) -> None:
    refused, absent = client.get(forbidden), client.get(missing)
    assert refused.status_code == absent.status_code == 404
    assert refused.content == absent.content
    assert json.loads(refused.content)["issue"][0]["code"] == "not-found"


def resources(bundle) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", [])]


# --- Consent, AuditEvent, Provenance and Communication by id ------------------------------


def test_consent_is_read_by_the_patient_id_its_search_gives(client, net):
    ConsentChoice.objects.create(patient=net["ada"], scope=Scope.NETWORK, decision=Decision.PERMIT)
    as_user(client, net, "ada")
    (searched,) = resources(fhir(client, "/fhir/Consent"))
    assert searched["id"] == str(net["ada"].pk)
    before = AuditEvent.objects.filter(action="consent.read", outcome="permit").count()
    assert fhir(client, f"/fhir/Consent/{net['ada'].pk}") == searched
    assert AuditEvent.objects.filter(action="consent.read", outcome="permit").count() == before + 1


def test_a_patient_cannot_read_another_patients_consent_and_it_looks_missing(client, net):
    as_user(client, net, "ada")
    same_404(client, f"/fhir/Consent/{net['ben'].pk}", f"/fhir/Consent/{uuid.uuid4()}")
    same_404(client, f"/fhir/Consent/{net['ben'].pk}", "/fhir/Consent/not-a-uuid")
    client.logout()
    as_user(client, net, "trust")  # staff never read consent metadata, as in the search
    same_404(client, f"/fhir/Consent/{net['ada'].pk}", f"/fhir/Consent/{uuid.uuid4()}")
    client.logout()
    as_user(client, net, "ig")
    assert fhir(client, f"/fhir/Consent/{net['ada'].pk}")["resourceType"] == "Consent"


def test_an_audit_event_is_read_by_the_id_its_search_gives(client, net):
    as_user(client, net, "trust")
    fhir(client, f"/fhir/Condition?patient={net['ada'].pk}")
    client.logout()
    as_user(client, net, "ada")
    looked = resources(fhir(client, "/fhir/AuditEvent"))[0]
    assert fhir(client, f"/fhir/AuditEvent/{looked['id']}") == looked
    read = AuditEvent.objects.order_by("-seq").first()
    assert (read.action, read.outcome, read.patient_id) == ("audit.read", "permit", net["ada"].pk)
    client.logout()
    as_user(client, net, "ig")
    assert fhir(client, f"/fhir/AuditEvent/{looked['id']}") == looked
    client.logout()
    as_user(client, net, "ben")
    same_404(client, f"/fhir/AuditEvent/{looked['id']}", f"/fhir/AuditEvent/{uuid.uuid4()}")
    client.logout()
    as_user(client, net, "trust")  # the clinician who looked does not read the trail
    same_404(client, f"/fhir/AuditEvent/{looked['id']}", f"/fhir/AuditEvent/{uuid.uuid4()}")


def test_an_audit_event_is_found_by_id_through_the_hash_index(net):
    from django.db import connection

    from api.fhir.portal import with_fhir_id
    from consent.ig_queries import AuditFilters, fhir_id, search_events

    event = AuditEvent.objects.order_by("-seq").first()
    everything = search_events(AuditFilters())  # newest first: the seq index would serve that
    found = with_fhir_id(everything, uuid.UUID(fhir_id(event)).hex)
    assert list(found) == [event]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # a few rows: only a forced choice shows the index
            cursor.execute("SET LOCAL enable_seqscan = off")
    plan = found.explain()
    # The index, or on PostgreSQL each monthly partition's copy of it (<partition>_hash_idx).
    assert "audit_hash" in plan or "_hash_idx" in plan, plan


def test_a_patient_does_not_read_events_about_their_own_looks_or_others(client, net):
    as_user(client, net, "ben")
    fhir(client, "/fhir/Condition")
    client.logout()
    as_user(client, net, "ada")
    fhir(client, "/fhir/Condition")
    own_look = AuditEvent.objects.filter(action="record.search", patient=net["ada"]).order_by("-seq").first()
    bens = AuditEvent.objects.filter(action="record.search", patient=net["ben"]).order_by("-seq").first()
    from consent.ig_queries import fhir_id

    # The patient's log is of looks by others, as the search shows it.
    same_404(client, f"/fhir/AuditEvent/{fhir_id(own_look)}", f"/fhir/AuditEvent/{uuid.uuid4()}")
    same_404(client, f"/fhir/AuditEvent/{fhir_id(bens)}", f"/fhir/AuditEvent/{uuid.uuid4()}")


def test_a_provenance_is_read_by_the_id_its_search_gives(client, net):
    request = _accepted_correction(net)
    as_user(client, net, "ada")
    (searched,) = resources(fhir(client, "/fhir/Provenance?target=MedicationStatement/m1"))
    provenance = RecordEntry.objects.get(resource_type="Provenance")
    response = client.get(f"/fhir/Provenance/{searched['id']}")
    served = json.loads(response.content)
    # As stored, with meta.source naming its holder, the owner whose correction it records.
    assert served.pop("meta") == {"source": f"{settings.PORTAL_URL}/fhir/Organization/{net['gp'].ods_code}"}
    assert served == json.loads(provenance.json)
    assert json.loads(response.content) == searched
    event = AuditEvent.objects.filter(action="record.read").order_by("-seq").first()
    assert (event.patient_id, event.entries) == (net["ada"].pk, [f"{provenance.pk.hex}:{provenance.version}"])
    client.logout()
    as_user(client, net, "gp")  # the owner's clinician reaches it through the request's patient
    assert fhir(client, f"/fhir/Provenance/correction-{request.pk.hex}") == searched
    client.logout()
    as_user(client, net, "ben")
    same_404(client, f"/fhir/Provenance/{searched['id']}", "/fhir/Provenance/no-such-provenance")
    client.logout()
    as_user(client, net, "ig")
    same_404(client, f"/fhir/Provenance/{searched['id']}", "/fhir/Provenance/no-such-provenance")


def test_staff_read_by_id_a_provenance_the_portal_recorded_for_their_organisation(client, net):
    # An organisation's system may not send a Provenance (the portal's own type, see
    # tests/phr/test_portal_types_refused.py): this one is recorded as the portal does.
    from phr.ingest import ingest_documents

    allergy = RecordEntry.objects.get(resource_type="AllergyIntolerance", fhir_id="a1")
    request = CorrectionRequestFactory(entry=allergy, requested_by=net["people"]["ada"])
    provenance_id = f"correction-{request.pk.hex}"
    sent = {
        "resourceType": "Provenance",
        "id": provenance_id,
        "target": [{"reference": "AllergyIntolerance/a1/_history/1"}],
        "recorded": "2026-11-01T10:00:00+00:00",
        "agent": [{"who": {"display": "Riverside Surgery records team"}}],
    }
    assert ingest_documents([("prov", sent)], organisation=net["gp"], source="correction").rejected == 0
    as_user(client, net, "gp")
    (searched,) = resources(
        fhir(client, f"/fhir/Provenance?target=AllergyIntolerance/a1&patient={net['ada'].pk}")
    )
    assert fhir(client, f"/fhir/Provenance/{provenance_id}") == searched
    event = AuditEvent.objects.order_by("-seq").first()
    provenance = RecordEntry.objects.get(resource_type="Provenance", fhir_id=provenance_id)
    assert (event.action, event.patient_id) == ("record.read", net["ada"].pk)
    assert event.entries == [f"{provenance.pk.hex}:{provenance.version}"]
    client.logout()
    as_user(client, net, "ada")
    assert fhir(client, f"/fhir/Provenance/{provenance_id}") == searched
    client.logout()
    as_user(client, net, "ben")  # another patient: exactly as missing
    same_404(client, f"/fhir/Provenance/{provenance_id}", "/fhir/Provenance/no-such-provenance")


def test_a_provenance_naming_no_item_of_a_record_is_found_by_nobody(client, net):
    from phr.ingest import ingest_documents

    stray = {
        "resourceType": "Provenance",
        "id": "prov-stray",
        "target": [{"reference": "Condition/not-here"}, {"reference": "weird"}],
        "recorded": "2026-11-01T10:00:00+00:00",
        "agent": [{"who": {"display": "Somebody"}}],
    }
    assert ingest_documents([("prov", stray)], organisation=net["gp"], source="correction").rejected == 0
    as_user(client, net, "gp")
    same_404(client, "/fhir/Provenance/prov-stray", "/fhir/Provenance/no-such-provenance")


def test_a_message_of_a_correction_is_read_by_the_id_its_search_gives(client, net):
    request = flag_the_dose(net)
    services.post_message(
        actor=actor_for(net["people"]["gp"]),
        request_id=request.pk,
        revision=request.revision,
        body="We are checking this with your GP.",
    )
    as_user(client, net, "ada")
    messages = resources(fhir(client, f"/fhir/Communication?part-of=Task/{request.pk}"))
    assert messages
    for message in messages:
        assert fhir(client, f"/fhir/Communication/{message['id']}") == message
    client.logout()
    as_user(client, net, "ben")
    same_404(client, f"/fhir/Communication/{messages[0]['id']}", f"/fhir/Communication/{'0' * 24}-m999999")
    client.logout()
    as_user(client, net, "trust")  # another organisation's request
    same_404(client, f"/fhir/Communication/{messages[0]['id']}", "/fhir/Communication/nothing-m1")


def test_a_correction_notice_is_read_by_its_organisation_only(client, net):
    as_user(client, net, "trust")
    fhir(client, "/fhir/MedicationStatement/m1")  # the trust saw the version about to change
    _accepted_correction(net)
    (notice,) = resources(fhir(client, "/fhir/Communication?recipient=RX100"))
    assert notice["id"].startswith("notice-")
    assert fhir(client, f"/fhir/Communication/{notice['id']}") == notice
    read = AuditEvent.objects.order_by("-seq").first()
    assert (read.action, read.outcome) == ("correction.notice.read", "permit")
    client.logout()
    as_user(client, net, "gp")
    same_404(client, f"/fhir/Communication/{notice['id']}", f"/fhir/Communication/notice-{'0' * 24}-1")
    client.logout()
    as_user(client, net, "ada")
    same_404(client, f"/fhir/Communication/{notice['id']}", f"/fhir/Communication/notice-{'0' * 24}-1")


# --- Reference data: Organization and Practitioner ---------------------------------------


def test_organizations_are_read_by_ods_code_and_searched(client, net):
    as_user(client, net, "ada")
    before = AuditEvent.objects.count()
    gp = fhir(client, "/fhir/Organization/A10001")
    assert gp["name"] == "Riverside Surgery"
    assert gp["identifier"] == [{"system": ODS, "value": "A10001"}]
    assert ids(fhir(client, f"/fhir/Organization?identifier={ODS}|RX100")) == ["Organization/RX100"]
    assert ids(fhir(client, "/fhir/Organization?identifier=rx100")) == ["Organization/RX100"]
    assert fhir(client, "/fhir/Organization?identifier=http://example.org|RX100")["total"] == 0
    assert sorted(ids(fhir(client, "/fhir/Organization?name=SURGERY"))) == [
        "Organization/A10001",
        "Organization/B20002",
    ]
    assert ids(fhir(client, "/fhir/Organization?_id=RX200")) == ["Organization/RX200"]
    assert fhir(client, "/fhir/Organization")["total"] == 4
    same_404(client, "/fhir/Organization/ZZ999", "/fhir/Organization/ZZ998")
    # Reference data is not a record read: nothing is audited about anyone's record.
    assert AuditEvent.objects.count() == before


def test_practitioners_are_staff_by_name_only(client, net):
    clinician = net["people"]["gp"]
    clinician.first_name, clinician.last_name = "Grace", "Hopper"
    clinician.save()
    as_user(client, net, "trust")  # staff see the network's directory
    response = client.get(f"/fhir/Practitioner/staff-{clinician.pk}")
    assert response.status_code == 200
    assert b"@" not in response.content  # never an email address
    practitioner = json.loads(response.content)
    validate(practitioner)
    assert practitioner["name"][0]["family"] == "Hopper"
    assert practitioner["identifier"][0]["system"] == "https://portal.example/fhir/sid/staff"
    assert ids(fhir(client, "/fhir/Practitioner?name=hop")) == [f"Practitioner/staff-{clinician.pk}"]
    # Patients and IG officers are not practitioners; nor is anyone without a membership.
    loner = ClinicianFactory(email="loner@example.com", organisation=None, second_factor=False)
    for who in (net["people"]["ben"], net["people"]["ig"], loner):
        same_404(client, f"/fhir/Practitioner/staff-{who.pk}", "/fhir/Practitioner/staff-0")
    assert fhir(client, "/fhir/Practitioner")["total"] == 2
    same_404(client, "/fhir/Practitioner/nobody", "/fhir/Practitioner/staff-0")


def test_a_patient_sees_only_the_staff_handling_their_requests(client, net):
    gp = net["people"]["gp"]
    as_user(client, net, "ada")
    assert fhir(client, "/fhir/Practitioner")["total"] == 0
    same_404(client, f"/fhir/Practitioner/staff-{gp.pk}", "/fhir/Practitioner/staff-0")
    request = flag_the_dose(net)
    services.assign(actor=actor_for(gp), request_id=request.pk, revision=request.revision, colleague=gp)
    assert ids(fhir(client, "/fhir/Practitioner")) == [f"Practitioner/staff-{gp.pk}"]
    assert fhir(client, f"/fhir/Practitioner/staff-{gp.pk}")["id"] == f"staff-{gp.pk}"
    client.logout()
    as_user(client, net, "ben")  # another patient: not their request
    assert fhir(client, "/fhir/Practitioner")["total"] == 0


def test_reference_data_needs_a_read_scope_that_covers_it(client, net):
    narrow = _token(net, "patient/Condition.read")
    refused = client.get("/fhir/Organization/A10001", **narrow)
    assert refused.status_code == 403
    assert json.loads(refused.content)["issue"][0]["code"] == "forbidden"
    assert client.get("/fhir/Organization/A10001", **_token(net, "patient/*.read")).status_code == 200
    assert (
        client.get("/fhir/Organization?name=city", **_token(net, "system/*.read", system=True)).status_code
        == 200
    )
    assert client.get("/fhir/Organization/A10001").status_code == 401


def test_reference_data_is_read_with_a_scope_for_its_type_alone(client, net):
    organisation = client.get("/fhir/Organization/A10001", **_token(net, "patient/Organization.read"))
    assert organisation.status_code == 200
    assert json.loads(organisation.content)["name"] == "Riverside Surgery"
    staff = client.get("/fhir/Practitioner", **_token(net, "system/Practitioner.read", system=True))
    assert staff.status_code == 200
    assert json.loads(staff.content)["total"] == 2
    refused = client.get("/fhir/Organization/A10001", **_token(net, "patient/Observation.read"))
    assert refused.status_code == 403
    assert json.loads(refused.content)["issue"][0]["code"] == "forbidden"
    # A scope for one reference type does not cover the other.
    assert client.get("/fhir/Practitioner", **_token(net, "patient/Organization.read")).status_code == 403


# --- Patient search by identifier: never in a URL -----------------------------------------


def test_a_get_patient_search_by_identifier_or_name_is_refused_naming_the_parameter(client, net):
    as_user(client, net, "trust")
    for name, value in (
        ("identifier", f"{NHS}|{ADA_NHS}"),
        ("name", "Lovelace"),
        ("family", "Lovelace"),
        ("given", "Test"),
        ("birthdate", "1970-01-01"),
    ):
        refused = fhir(client, f"/fhir/Patient?{name}={value}", status=400)
        assert refused["issue"][0]["expression"] == [name]
        assert "POST /fhir/Patient/_search" in refused["issue"][0]["diagnostics"]
        assert value not in json.dumps(refused)


def test_a_posted_identifier_search_finds_only_a_patient_the_caller_may_see(client, net):
    as_user(client, net, "ada")
    mine = posted(client, "/fhir/Patient/_search", {"identifier": f"{NHS}|{ADA_NHS}"})
    assert ids(mine) == [f"Patient/{net['ada'].pk}"]
    assert resources(mine)[0]["identifier"][0]["value"] == ADA_NHS
    theirs = posted(client, "/fhir/Patient/_search", {"identifier": f"{NHS}|{BEN_NHS}"})
    nobody = posted(client, "/fhir/Patient/_search", {"identifier": f"{NHS}|9876543210"})
    assert theirs["total"] == nobody["total"] == 0
    assert "entry" not in theirs
    client.logout()
    as_user(client, net, "trust")  # opt-out: the network shares Ada's record with the trust
    assert ids(posted(client, "/fhir/Patient/_search", {"identifier": ADA_NHS})) == [
        f"Patient/{net['ada'].pk}"
    ]
    ConsentChoice.objects.create(patient=net["ada"], scope=Scope.NETWORK, decision=Decision.DENY)
    assert posted(client, "/fhir/Patient/_search", {"identifier": ADA_NHS})["total"] == 0


def test_a_posted_search_keeps_its_parameters_out_of_urls_and_the_audit_trail(client, net):
    as_user(client, net, "ada")
    found = posted(client, "/fhir/Patient/_search", {"identifier": f"{NHS}|{ADA_NHS}", "_count": "1"})
    assert [link["url"] for link in found["link"]] == ["http://testserver/fhir/Patient/_search"]
    event = AuditEvent.objects.filter(action="record.search").order_by("-seq").first()
    assert (event.patient_id, event.outcome) == (net["ada"].pk, "permit")
    assert ADA_NHS not in json.dumps(event.detail)
    assert "identifier" in event.detail["query"]


def test_a_posted_name_search_needs_a_birth_date(client, net):
    as_user(client, net, "trust")
    refused = posted(client, "/fhir/Patient/_search", {"family": "Lovelace"}, status=400)
    assert refused["issue"][0]["expression"] == ["family"]
    found = posted(client, "/fhir/Patient/_search", {"family": "love", "birthdate": "1970-01-01"})
    assert ids(found) == [f"Patient/{net['ada'].pk}"]


def test_a_name_search_that_names_too_many_people_is_refused(client, net):
    from datetime import date

    from phr.models import Patient

    Patient.objects.bulk_create(
        Patient(family_name="Smith", given_names="Sam", birth_date=date(1980, 1, 1)) for _ in range(101)
    )
    as_user(client, net, "trust")
    refused = posted(
        client, "/fhir/Patient/_search", {"family": "Smith", "birthdate": "1980-01-01"}, status=400
    )
    assert refused["issue"][0]["code"] == "too-costly"
    assert refused["issue"][0]["expression"] == ["family"]
    both = {"family": "Smith", "given": "Sam", "birthdate": "1980-01"}
    assert posted(client, "/fhir/Patient/_search", both, status=400)["issue"][0]["expression"] == [
        "birthdate"
    ]


def test_an_organisation_system_posts_an_identifier_search_with_its_token(client, net):
    headers = _token(net, "system/*.read", system=True)
    found = posted(client, "/fhir/Patient/_search", {"identifier": f"{NHS}|{ADA_NHS}"}, **headers)
    assert ids(found) == [f"Patient/{net['ada'].pk}"]


def test_a_session_must_pass_the_csrf_check_to_post_a_search(net):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(net["people"]["ada"])
    refused = strict.post("/fhir/Patient/_search", data=f"identifier={ADA_NHS}", content_type=FORM)
    assert refused.status_code == 403
    assert json.loads(refused.content)["issue"][0]["code"] == "forbidden"


def test_any_search_may_be_posted_with_the_same_answer(client, net):
    as_user(client, net, "ada")
    query = {"patient": str(net["ada"].pk), "code": "195967001,44054006"}
    by_post = posted(client, "/fhir/Condition/_search", query)
    by_get = fhir(client, f"/fhir/Condition?patient={net['ada'].pk}&code=195967001,44054006")
    assert sorted(ids(by_post)) == sorted(ids(by_get)) == ["Condition/c2", "Condition/c3"]
    assert ids(posted(client, "/fhir/Consent/_search", {})) == [f"Consent/{net['ada'].pk}"]
    in_url = client.post(f"/fhir/Patient/_search?identifier={ADA_NHS}", data="", content_type=FORM)
    assert in_url.status_code == 400
    assert json.loads(in_url.content)["issue"][0]["expression"] == ["identifier"]
    assert ids(posted(client, "/fhir/Condition/_search?_format=json", {"_id": "c2"})) == ["Condition/c2"]
    wrong_type = client.post("/fhir/Patient/_search", data="{}", content_type="application/json")
    assert wrong_type.status_code == 415
    assert client.get("/fhir/Patient/_search").status_code == 405
    assert posted(client, "/fhir/Spaceship/_search", {}, status=404)["issue"][0]["code"] == "not-supported"


# --- _sort, _summary=count, _elements -----------------------------------------------------


def test_sort_by_date_either_way(client, net):
    as_user(client, net, "ada")
    oldest_first = ["Condition/c1", "Condition/d1", "Condition/c2", "Condition/c3"]
    assert ids(fhir(client, "/fhir/Condition?_sort=date")) == oldest_first
    assert ids(fhir(client, "/fhir/Condition?_sort=-date")) == oldest_first[::-1]
    newest = ids(fhir(client, "/fhir/Condition?_sort=-_lastUpdated,date"))
    assert sorted(newest) == sorted(oldest_first)
    paged = fhir(client, "/fhir/Condition?_sort=date&_count=2&_offset=2")
    assert ids(paged) == oldest_first[2:]


def test_sort_is_refused_naming_it_for_anything_else(client, net):
    as_user(client, net, "ada")
    for url in ("/fhir/Condition?_sort=code", "/fhir/Condition?_sort=", "/fhir/Patient?_sort=date"):
        assert fhir(client, url, status=400)["issue"][0]["expression"] == ["_sort"], url
    assert fhir(client, "/fhir/Organization?_sort=name", status=400)["issue"][0]["expression"] == ["_sort"]


def test_summary_count_is_the_total_alone_and_still_the_policys(client, net):
    as_user(client, net, "ada")
    counted = fhir(client, "/fhir/Condition?_summary=count")
    assert counted["total"] == 4
    assert "entry" not in counted
    event = AuditEvent.objects.filter(action="record.search").order_by("-seq").first()
    assert (event.patient_id, event.outcome, event.entries) == (net["ada"].pk, "permit", [])
    assert fhir(client, f"/fhir/Condition?patient={net['ben'].pk}&_summary=count")["total"] == 0
    assert fhir(client, "/fhir/Condition?_summary=true", status=400)["issue"][0]["expression"] == ["_summary"]
    assert fhir(client, "/fhir/Organization?_summary=count")["total"] == 4
    client.logout()
    ConsentChoice.objects.create(
        patient=net["ada"], scope=Scope.CATEGORY, category="mental_health", decision=Decision.DENY
    )
    as_user(client, net, "trust")
    assert fhir(client, f"/fhir/Condition?patient={net['ada'].pk}&_summary=count")["total"] == 3


def test_summary_count_by_code_and_category_is_counted_by_the_policy_and_audited_once(client, net):
    as_user(client, net, "ada")
    last = AuditEvent.objects.values_list("seq", flat=True).last() or 0
    url = "/fhir/Condition?code=195967001,44054006&category=encounter-diagnosis&_summary=count"
    counted = fhir(client, url)
    assert counted["total"] == 1  # c2 alone is both
    assert "entry" not in counted
    (event,) = AuditEvent.objects.filter(seq__gt=last)
    assert (event.action, event.patient_id, event.outcome, event.entries) == (
        "record.search",
        net["ada"].pk,
        "permit",
        [],
    )
    assert event.detail["summary"] == "count"
    assert event.detail["api"] == "fhir"
    assert fhir(client, f"/fhir/Condition?code={SNOMED}|195967001&_summary=count")["total"] == 1
    assert (
        fhir(client, "/fhir/Condition?category=encounter-diagnosis&code=38341003&_summary=count")["total"]
        == 0
    )


def test_elements_keeps_what_is_asked_and_what_fhir_requires_and_tags_it(client, net):
    as_user(client, net, "ada")
    bundle = fhir(client, "/fhir/Observation?_elements=code")
    (observation,) = resources(bundle)
    # status is mandatory for an Observation: a server keeps it, asked for or not.
    assert set(observation) == {"resourceType", "id", "meta", "code", "status"}
    assert {"system": SUBSETTED, "code": "SUBSETTED", "display": "subsetted"} in observation["meta"]["tag"]
    both = resources(fhir(client, "/fhir/Condition?_elements=code,recordedDate&_sort=date"))
    assert [set(c) for c in both] == [{"resourceType", "id", "meta", "code", "recordedDate", "subject"}] * 4
    assert fhir(client, "/fhir/Condition?_elements=code.coding", status=400)["issue"][0]["expression"] == [
        "_elements"
    ]
    patient = resources(fhir(client, "/fhir/Patient?_elements=birthDate"))[0]
    assert set(patient) == {"resourceType", "id", "meta", "birthDate"}
    organisation = resources(fhir(client, "/fhir/Organization?_id=A10001&_elements=name"))[0]
    assert set(organisation) == {"resourceType", "id", "meta", "name"}


def test_elements_keeps_a_disputed_tag_beside_the_subsetted_one(client, net):
    flag_the_dose(net)
    as_user(client, net, "ada")
    (statement,) = resources(fhir(client, "/fhir/MedicationStatement?_elements=dosage"))
    assert [tag["code"] for tag in statement["meta"]["tag"]] == ["disputed", "SUBSETTED"]
    assert "dosage" in statement


# --- The CapabilityStatement ----------------------------------------------------------------


def test_the_capability_statement_tells_of_the_new_reads_and_search_parameters(client, db):
    body = fhir(client, "/fhir/metadata")
    by_type = {r["type"]: r for r in body["rest"][0]["resource"]}
    for kind in ("Consent", "AuditEvent", "Provenance", "Communication", "Organization", "Practitioner"):
        assert "read" in {i["code"] for i in by_type[kind]["interaction"]}, kind
    condition = {p["name"] for p in by_type["Condition"]["searchParam"]}
    assert {"_sort", "_summary", "_elements"} <= condition
    patient = {p["name"] for p in by_type["Patient"]["searchParam"]}
    assert {"identifier", "birthdate", "_summary", "_elements"} <= patient
    assert "_sort" not in patient
    assert {"identifier", "name", "_id"} <= {p["name"] for p in by_type["Organization"]["searchParam"]}
    assert "_search" in body["rest"][0]["documentation"]
