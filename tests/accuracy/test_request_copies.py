"""A correction request's copies of clinical text (the item's name, "what it says now",
the proposed text, the reason, the messages) are clinical content: every channel (the
patient's request page, the staff workspace, /api/v1/corrections/, FHIR Task and
Communication) shows them only through the policy, audited naming the item, and withheld
with the item. Which requests an actor sees, and in which order, is one selector."""

import re
from datetime import date

import pytest
import time_machine
from django.urls import reverse

from accuracy import selectors, services
from accuracy.models import CorrectionRequest, Message
from audit.models import AuditEvent
from consent.policy import actor_for
from consent.services import withhold_from_patient
from phr.ingest import ingest_documents
from phr.models import Patient, RecordEntry
from tests.api.test_fhir_write import patient_token, system_token
from tests.personas import ClinicianFactory, PatientUserFactory

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ITEM = "Amlodipine 5mg tablets"  # the item's name, as the patient saw it
SAID = "50mg once daily"  # what the flagged part said
ASKED = "5mg once daily"  # what the patient asked it to say (their own words)
WHY = "My GP changed it to 5mg in March"
STAFF_WORDS = f"Our letter says {SAID} of {ITEM}"
PATIENT_WORDS = "Please look at the clinic letter"


def _record(pid: str, nhs: str, *resources) -> dict:
    patient = {"resourceType": "Patient", "id": pid, "identifier": [{"system": NHS, "value": nhs}]}
    entries = [patient, *({**r, "subject": {"reference": f"Patient/{pid}"}} for r in resources)]
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in entries]}


def _condition(cid: str, text: str) -> dict:
    return {"resourceType": "Condition", "id": cid, "code": {"text": text}}


@pytest.fixture
def world(gp, hospital, dr_gp):
    medicine = {
        "resourceType": "MedicationStatement",
        "id": "m1",
        "status": "active",
        "medicationCodeableConcept": {"text": ITEM},
        "dosage": [{"text": SAID}],
    }
    ada_record = _record("p1", "9434765919", medicine, _condition("c1", "Gout"), _condition("c2", "Eczema"))
    ben_record = _record("p2", "9990000018", _condition("c9", "Migraine"))
    for name, bundle in (("ada", ada_record), ("ben", ben_record)):
        assert ingest_documents([(name, bundle)], organisation=gp).rejected == 0
    ada, ben = Patient.objects.get(nhs_number="9434765919"), Patient.objects.get(nhs_number="9990000018")
    return {
        "gp": gp,
        "hospital": hospital,
        "ada": PatientUserFactory(email="ada@example.com", patient=ada),
        "ben": PatientUserFactory(email="ben@example.com", patient=ben),
        "dr_gp": dr_gp,
        "dr_hosp": ClinicianFactory(email="dr.hosp@example.com", organisation=hospital),
        "medicine": RecordEntry.objects.get(fhir_id="m1"),
        "gout": RecordEntry.objects.get(fhir_id="c1"),
        "eczema": RecordEntry.objects.get(fhir_id="c2"),
        "migraine": RecordEntry.objects.get(fhir_id="c9"),
    }


def flag(world, who="ada", entry="medicine", element="dosage[0].text"):
    return services.submit_correction(
        actor=actor_for(world[who]),
        entry_id=world[entry].pk,
        element=element,
        proposed=ASKED,
        reason=WHY,
        contact_preference="portal",
    )


def fresh(request) -> CorrectionRequest:
    return CorrectionRequest.objects.get(pk=request.pk)


@pytest.fixture
def talked(world):
    """Ada's request on the medicine, a message from the GP quoting the item and Ada's reply."""
    request = flag(world)
    services.post_message(
        actor=actor_for(world["dr_gp"]), request_id=request.pk, revision=request.revision, body=STAFF_WORDS
    )
    request = fresh(request)
    services.patient_reply(
        actor=actor_for(world["ada"]), request_id=request.pk, revision=request.revision, body=PATIENT_WORDS
    )
    return fresh(request)


def withhold(world):
    withhold_from_patient(
        actor=actor_for(world["dr_gp"]), entry=world["medicine"], reason="Serious harm if seen unprepared"
    )


def text(response) -> str:
    return response.content.decode()


def staff_message_id(request) -> str:
    message = Message.objects.get(request=request, from_patient=False)
    return f"{request.pk.hex[:24]}-m{message.pk}"


# --- Withheld with the item -----------------------------------------------------------------


def test_the_patients_request_page_stops_showing_what_it_said_once_the_item_is_withheld(
    world, talked, client
):
    client.force_login(world["ada"])
    url = reverse("record:correction", kwargs={"request_id": talked.pk})
    before = text(client.get(url))
    for copy in ("What it said", SAID, STAFF_WORDS):
        assert copy in before, copy
    withhold(world)
    response = client.get(url)
    assert response.status_code == 200
    page = text(response)
    assert "An item no longer shown to you" in page
    for copy in ("What it said", SAID, ITEM, STAFF_WORDS):
        assert copy not in page, copy
    # The patient's own words stay theirs.
    for own in (ASKED, WHY, PATIENT_WORDS):
        assert own in page, own


def test_the_json_api_gives_the_patient_placeholders_for_a_withheld_item(world, talked, client):
    withhold(world)
    client.force_login(world["ada"])
    detail = client.get(f"/api/v1/corrections/{talked.pk}/")
    assert detail.status_code == 200
    body = detail.json()
    assert body["item_display"] == body["current_text"] == selectors.WITHHELD
    assert (body["proposed"], body["reason"]) == (ASKED, WHY)
    listed = client.get("/api/v1/corrections/")
    assert [row["item_display"] for row in listed.json()["results"]] == [selectors.WITHHELD]
    for response in (detail, listed):
        assert SAID not in text(response)
        assert ITEM not in text(response)


def test_fhir_task_and_communication_no_longer_carry_the_withheld_item(world, talked, client):
    app = patient_token(world["ada"], "patient/*.read")
    task = client.get(f"/fhir/Task/{talked.pk}", **app)
    assert task.status_code == 200
    inputs = {i["type"]["text"]: i["valueString"] for i in task.json()["input"]}
    assert (inputs["proposed"], inputs["reason"]) == (ASKED, WHY)
    assert STAFF_WORDS in text(client.get(f"/fhir/Communication/{staff_message_id(talked)}", **app))
    withhold(world)
    replies = [
        client.get(f"/fhir/Task/{talked.pk}", **app),
        client.get(f"/fhir/Task?patient={talked.patient_id}", **app),
        client.get(f"/fhir/Communication?part-of=Task/{talked.pk}", **app),
        client.get(f"/fhir/Communication/{staff_message_id(talked)}", **app),
    ]
    for reply in replies:
        assert reply.status_code == 200, text(reply)
        for copy in (SAID, ITEM, STAFF_WORDS):
            assert copy not in text(reply), (reply.request["PATH_INFO"], copy)
    conversation = text(replies[2])
    assert PATIENT_WORDS in conversation
    assert selectors.WITHHELD in conversation
    # The owner's own system still reads what its staff wrote.
    system = system_token(world["gp"], "system/*.read")
    assert STAFF_WORDS in text(client.get(f"/fhir/Communication/{staff_message_id(talked)}", **system))


# --- Audited ------------------------------------------------------------------------------


def copies_read(request, **where) -> list[AuditEvent]:
    """The permitted events that disclosed this request's copies, naming its item."""
    ref = f"{request.entry_id.hex}:{request.entry_version}"
    events = AuditEvent.objects.filter(patient_id=request.patient_id, outcome="permit", **where)
    return [
        e for e in events if ref in e.entries and request.pk.hex in e.detail.get("correction_requests", [])
    ]


def test_reading_a_requests_copies_on_any_channel_writes_an_event_naming_the_item(world, talked, client):
    system = system_token(world["gp"], "system/*.read")
    app = patient_token(world["ada"], "patient/*.read")
    reads = [
        ("ada", reverse("record:correction", kwargs={"request_id": talked.pk}), {}),
        ("ada", f"/api/v1/corrections/{talked.pk}/", {}),
        ("dr_gp", "/api/v1/corrections/", {}),
        ("dr_gp", reverse("workspace:request", kwargs={"request_id": talked.pk}), {}),
        ("dr_gp", reverse("workspace:queue"), {}),
        (None, f"/fhir/Task/{talked.pk}", system),
        (None, f"/fhir/Task?owner={world['gp'].ods_code}", system),
        (None, f"/fhir/Communication?part-of=Task/{talked.pk}", app),
        (None, f"/fhir/Communication/{staff_message_id(talked)}", app),
    ]
    for who, url, headers in reads:
        client.logout()
        if who:
            client.force_login(world[who])
        before = len(copies_read(talked))
        assert client.get(url, **headers).status_code == 200, url
        assert len(copies_read(talked)) == before + 1, url
    gp_reads = copies_read(talked, organisation=world["gp"])
    assert {e.actor_id for e in gp_reads} >= {world["dr_gp"].pk}
    assert all(e.action == "record.read" for e in copies_read(talked))


# --- Another organisation -------------------------------------------------------------------


def test_staff_of_another_organisation_never_see_the_request_or_its_copies(world, talked, client):
    client.force_login(world["dr_hosp"])
    replies = [
        client.get(reverse("workspace:queue"), {"show": "all"}),
        client.get(reverse("workspace:request", kwargs={"request_id": talked.pk})),
        client.get("/api/v1/corrections/"),
        client.get(f"/api/v1/corrections/{talked.pk}/"),
    ]
    system = system_token(world["hospital"], "system/*.read")
    replies += [
        client.get(f"/fhir/Task/{talked.pk}", **system),
        client.get("/fhir/Task", **system),
        client.get(f"/fhir/Communication?part-of=Task/{talked.pk}", **system),
        client.get(f"/fhir/Communication/{staff_message_id(talked)}", **system),
    ]
    assert [r.status_code for r in replies] == [200, 404, 200, 404, 404, 200, 200, 404]
    for reply in replies:
        for copy in (SAID, ITEM, ASKED, WHY, STAFF_WORDS, PATIENT_WORDS):
            assert copy not in text(reply), (reply.request["PATH_INFO"], copy)
    assert str(talked.pk) not in text(replies[0])
    assert replies[2].json()["count"] == 0
    for search in (replies[5], replies[6]):
        assert not search.json().get("entry")
    hospital = actor_for(world["dr_hosp"])
    assert list(selectors.visible_requests(hospital)) == []
    assert not copies_read(talked, organisation=world["hospital"])


# --- One selector, one order ---------------------------------------------------------------


def test_the_queue_is_in_the_same_order_on_the_workspace_page_the_json_api_and_fhir(world, client):
    with time_machine.travel(date(2026, 3, 2), tick=False):
        late = flag(world, entry="gout", element="")
        decided = flag(world, entry="eczema", element="")
        decided = services.start_review(
            actor=actor_for(world["dr_gp"]), request_id=decided.pk, revision=decided.revision
        )
        services.deny(
            actor=actor_for(world["dr_gp"]),
            request_id=decided.pk,
            revision=decided.revision,
            code="accurate",
            text="The diagnosis was confirmed by the dermatologist.",
        )
    with time_machine.travel(date(2026, 1, 5), tick=False):
        # Two requests made at the same moment: only the selector's last key orders them.
        early = [flag(world), flag(world, who="ben", entry="migraine", element="")]
    with time_machine.travel(date(2026, 3, 3)):
        expected = [str(r.pk) for r in selectors.visible_requests(actor_for(world["dr_gp"]))]
        client.force_login(world["dr_gp"])
        page = text(client.get(reverse("workspace:queue"), {"show": "all"}))
        on_page = list(
            dict.fromkeys(re.findall(re.escape(reverse("workspace:queue")) + r"([0-9a-f-]{36})/", page))
        )
        in_api = [row["id"] for row in client.get("/api/v1/corrections/").json()["results"]]
        system = system_token(world["gp"], "system/*.read")
        bundle = client.get("/fhir/Task", **system).json()
        in_fhir = [e["resource"]["id"] for e in bundle.get("entry", [])]
    assert len(expected) == 4
    assert expected[-1] == str(decided.pk)  # open ones first
    assert set(expected[:2]) == {str(r.pk) for r in early}
    assert expected[2] == str(late.pk)
    assert on_page == in_api == in_fhir == expected
