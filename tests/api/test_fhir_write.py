"""FHIR writes: an organisation system's transaction and batch Bundles (owned by its
organisation, whatever the data says), a patient's $correction-request, the owner's
system taking the correction steps on its Task with If-Match, and the downstream notices
the organisations that saw the old version fetch. Every response is FHIR R4 (checked
with fhir.resources.R4B), every error an OperationOutcome, never a server error."""

import copy
import json
import uuid
from datetime import timedelta

import pytest
from fhir.resources.R4B import get_fhir_model_class
from oauth2_provider.models import Application

from accuracy.models import CorrectionRequest, DownstreamNotice
from api.fhir.corrections import ELEMENT_EXTENSION
from api.models import SystemClient
from api.oauth_server import issue_access_token
from phr.models import EntryVersion, RecordEntry
from tests.api.test_fhir_api import FHIR_JSON
from tests.api.test_fhir_api import net as net  # the shared network, found by name
from tests.personas import ClinicianFactory

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
BUSINESS = "http://hl7.org/fhir/uv/patient-corrections/CodeSystem/PatientCorrectionBusinessStatus"


def system_token(org, scope: str) -> dict:
    app = Application.objects.create(
        name=f"{org.name} system",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="system-secret-for-tests-only",
    )
    SystemClient.objects.create(application=app, organisation=org)
    raw, _ = issue_access_token(application=app, user=None, scope=scope, minutes=5, issued_by="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def patient_token(user, scope: str) -> dict:
    app = Application.objects.create(
        name="My Health App",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://app.example/callback",
        client_secret="",
    )
    raw, _ = issue_access_token(application=app, user=user, scope=scope, minutes=5, issued_by="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def world(request, db):
    """The data set of the read tests: Ada's and Ben's records, the GP, the trust."""
    return request.getfixturevalue("net")


def validate(resource: dict) -> None:
    """The resource parses with fhir.resources.R4B, and so does each one in a Bundle
    (entry.resource, and entry.response.outcome in a batch-response)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for item in resource.get("entry", []) if resource["resourceType"] == "Bundle" else []:
        for inner in (item.get("resource"), (item.get("response") or {}).get("outcome")):
            if inner is not None:
                get_fhir_model_class(inner["resourceType"]).model_validate(inner)


def answer(reply, status: int) -> dict:
    assert reply.status_code == status, reply.content[:800]
    assert reply["Content-Type"] == FHIR_JSON
    body = json.loads(reply.content)
    validate(body)
    return body


def post(client, url, body, headers, content_type="application/fhir+json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type=content_type, **headers)


def put(client, url, body, headers, if_match=None):
    extra = dict(headers)
    if if_match is not None:
        extra["HTTP_IF_MATCH"] = if_match
    return client.put(url, data=json.dumps(body), content_type="application/fhir+json", **extra)


def synthea_like(kind: str, nhs: str = "9876543210") -> dict:
    """A Synthea-style Bundle: urn:uuid fullUrls and references, POST requests, and data
    that claims another organisation manages the patient."""
    patient, condition, observation = (str(uuid.uuid4()) for _ in range(3))
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {
                "fullUrl": f"urn:uuid:{patient}",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
                    "name": [{"family": "Okafor", "given": ["Chidi"]}],
                    "birthDate": "1980-02-02",
                    "managingOrganization": {"identifier": {"system": ODS, "value": "A10001"}},
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": f"urn:uuid:{condition}",
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": f"urn:uuid:{patient}"},
                    "code": {"text": "Asthma"},
                    "recordedDate": "2024-01-01",
                },
                "request": {"method": "POST", "url": "Condition"},
            },
            {
                "fullUrl": f"urn:uuid:{observation}",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "subject": {"reference": f"urn:uuid:{patient}"},
                    "code": {"text": "Peak flow"},
                    "valueQuantity": {"value": 410.50, "unit": "L/min"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }


def statuses(body) -> list[str]:
    return [e["response"]["status"] for e in body["entry"]]


# --- POST /fhir/: transaction and batch ------------------------------------------------


def test_a_system_posts_a_transaction_and_its_organisation_owns_what_it_sent(client, world):
    headers = system_token(world["trust"], "system/Bundle.write")
    sent = synthea_like("transaction")
    text = json.dumps(sent).replace('"value": 410.5,', '"value": 410.50,')
    body = answer(post(client, "/fhir/", text, headers), 200)
    assert body["type"] == "transaction-response"
    assert statuses(body) == ["201 Created"] * 3
    locations = [e["response"]["location"] for e in body["entry"]]
    assert locations[1] == f"Condition/{sent['entry'][1]['fullUrl'][9:]}/_history/1"
    entries = RecordEntry.objects.filter(fhir_id__in=[e["fullUrl"][9:] for e in sent["entry"]])
    assert entries.count() == 3
    assert {e.owner_id for e in entries} == {world["trust"].pk}  # not the GP the data names
    observation = entries.get(resource_type="Observation")
    assert '"value":410.50' in observation.json  # the decimal exactly as sent
    assert observation.patient_id == entries.get(resource_type="Patient").patient_id
    # The same again changes nothing; a changed item is a new version.
    again = answer(post(client, "/fhir/", sent, headers), 200)
    assert statuses(again) == ["200 OK"] * 3
    sent["entry"][1]["resource"]["code"] = {"text": "Asthma, mild"}
    changed = answer(post(client, "/fhir/", sent, headers), 200)
    assert statuses(changed) == ["200 OK"] * 3
    assert changed["entry"][1]["response"]["location"].endswith("/_history/2")
    assert changed["entry"][1]["response"]["etag"] == 'W/"2"'


def test_a_transaction_with_one_invalid_resource_stores_nothing(client, world):
    headers = system_token(world["trust"], "system/Bundle.write")
    sent = synthea_like("transaction")
    sent["entry"][1]["resource"]["recordedDate"] = "not a date"
    before = RecordEntry.objects.count()
    body = answer(post(client, "/fhir/", sent, headers), 400)
    assert body["resourceType"] == "OperationOutcome"
    errors = [i for i in body["issue"] if i["severity"] == "error"]
    assert errors[0]["expression"] == ["Bundle.entry[1].resource.recordedDate"]
    assert RecordEntry.objects.count() == before


def test_a_batch_stores_the_rest_and_names_the_bad_element(client, world):
    headers = system_token(world["trust"], "system/Bundle.write")
    sent = synthea_like("batch")
    sent["entry"][1]["resource"]["recordedDate"] = "not a date"
    sent["entry"].append({"request": {"method": "DELETE", "url": "Condition/x"}})
    body = answer(post(client, "/fhir/", sent, headers), 200)
    assert body["type"] == "batch-response"
    assert statuses(body) == ["201 Created", "400 Bad Request", "201 Created", "400 Bad Request"]
    bad = body["entry"][1]["response"]["outcome"]
    assert bad["issue"][0]["expression"] == ["Bundle.entry[1].resource.recordedDate"]
    assert body["entry"][3]["response"]["outcome"]["issue"][0]["expression"][0].startswith("Bundle.entry[3]")
    owned = RecordEntry.objects.filter(owner=world["trust"])
    assert sorted(owned.values_list("resource_type", flat=True)) == ["Observation", "Patient"]


def test_only_an_organisation_system_with_bundle_write_may_post(client, world):
    sent = synthea_like("batch")
    reading = system_token(world["trust"], "system/*.read")
    assert answer(post(client, "/fhir/", sent, reading), 403)["issue"][0]["code"] == "forbidden"
    app = patient_token(world["people"]["ada"], "patient/*.read patient/Communication.write")
    assert answer(post(client, "/fhir/", sent, app), 403)["issue"][0]["code"] == "forbidden"
    assert answer(post(client, "/fhir/", sent, {}), 401)["issue"][0]["code"] == "login"
    unknown = post(client, "/fhir/", sent, {"HTTP_AUTHORIZATION": "Bearer nope"})
    assert answer(unknown, 401)
    assert "invalid_token" in unknown["WWW-Authenticate"]
    for who in ("trust", "ig"):
        client.force_login(world["people"][who])
        assert answer(post(client, "/fhir/", sent, {}), 403)["resourceType"] == "OperationOutcome"
        client.logout()
    assert not RecordEntry.objects.filter(owner=world["trust"]).exists()


def test_bad_bodies_are_operation_outcomes(client, world, settings):
    headers = system_token(world["trust"], "system/Bundle.write")
    collection = synthea_like("collection")
    assert answer(post(client, "/fhir/", collection, headers), 400)["issue"][0]["expression"] == [
        "Bundle.type"
    ]
    assert answer(post(client, "/fhir/", "{not json", headers), 400)["issue"][0]["code"] == "structure"
    assert answer(post(client, "/fhir/", "[]", headers), 400)["issue"][0]["expression"] == ["resourceType"]
    assert answer(post(client, "/fhir/", synthea_like("batch"), headers, "text/plain"), 415)
    settings.INGEST_MAX_FILE_BYTES = 1024
    assert (
        answer(post(client, "/fhir/", synthea_like("batch"), headers), 413)["issue"][0]["code"]
        == "too-costly"
    )
    assert answer(client.get("/fhir/", **headers), 405)
    empty = answer(post(client, "/fhir/", {"resourceType": "Bundle", "type": "batch"}, headers), 200)
    assert "entry" not in empty


# --- $correction-request --------------------------------------------------------------


def correction(about="MedicationStatement/m1", element="dosage[0].text", **changes) -> dict:
    communication = {
        "resourceType": "Communication",
        "status": "in-progress",
        "about": [{"reference": about}],
        "payload": [{"contentString": "The dose is wrong"}, {"contentString": "5mg once daily"}],
        "reasonCode": [{"text": "My GP changed it last month"}],
    }
    if element is not None:
        communication["extension"] = [{"url": ELEMENT_EXTENSION, "valueString": element}]
    communication.update(changes)
    return communication


@pytest.fixture
def app(world):
    return patient_token(world["people"]["ada"], "patient/*.read patient/Communication.write")


def submit(client, app, **kwargs) -> dict:
    reply = post(client, "/fhir/Communication/$correction-request", correction(**kwargs), app)
    task = answer(reply, 201)
    assert reply["Location"].endswith(f"/fhir/Task/{task['id']}")
    assert reply["ETag"] == 'W/"1"'
    return task


def test_a_patients_app_asks_for_a_correction_and_the_owners_system_sees_it(client, world, app):
    task = submit(client, app)
    assert task["status"] == "ready"
    assert task["focus"]["reference"] == "MedicationStatement/m1/_history/1"
    request = CorrectionRequest.objects.get(pk=task["id"])
    assert (request.element, request.proposed, request.reason) == (
        "dosage[0].text",
        "5mg once daily",
        "My GP changed it last month",
    )
    assert request.owner == world["gp"]
    gp_system = system_token(world["gp"], "system/*.read system/Task.write")
    queue = answer(client.get("/fhir/Task?owner=A10001", **gp_system), 200)
    assert [e["resource"]["id"] for e in queue["entry"]] == [task["id"]]
    read = client.get(f"/fhir/Task/{task['id']}", **gp_system)
    assert answer(read, 200)["id"] == task["id"]
    assert read["ETag"] == 'W/"1"'
    trust_system = system_token(world["trust"], "system/*.read system/Task.write")
    assert answer(client.get(f"/fhir/Task/{task['id']}", **trust_system), 404)
    assert answer(client.get("/fhir/Task?owner=A10001", **trust_system), 200)["total"] == 0
    step = {
        "resourceType": "Task",
        "status": "in-progress",
        "intent": "order",
        "businessStatus": {"coding": [{"system": BUSINESS, "code": "in-review"}]},
    }
    assert answer(put(client, f"/fhir/Task/{task['id']}", step, trust_system, 'W/"1"'), 404)


def test_correction_request_errors_name_the_element(client, world, app):
    url = "/fhir/Communication/$correction-request"
    wrong_part = answer(post(client, url, correction(element="colour"), app), 400)
    assert wrong_part["issue"][0]["expression"][0].startswith("Communication.extension")
    short = correction()
    short["payload"][1]["contentString"] = "x"
    assert answer(post(client, url, short, app), 400)["issue"][0]["expression"] == [
        "Communication.payload[1].contentString"
    ]
    assert answer(post(client, url, correction(payload=[]), app), 400)
    no_status = correction()
    del no_status["status"]
    invalid = answer(post(client, url, no_status, app), 400)
    assert invalid["issue"][0]["expression"] == ["Communication.status"]
    assert answer(post(client, url, correction(about="Condition/b1"), app), 404)  # Ben's, not hers
    assert answer(post(client, url, correction(about=str(uuid.uuid4())), app), 404)
    assert answer(post(client, url, correction(about="no/such/thing/here/x"), app), 400)
    whole = submit(client, app, about="Condition/c2", element=None)
    assert CorrectionRequest.objects.get(pk=whole["id"]).element == ""
    again = answer(post(client, url, correction(about="Condition/c2", element=None), app), 409)
    assert again["issue"][0]["code"] == "duplicate"
    assert f"Task/{whole['id']}" in again["issue"][0]["diagnostics"]
    by_entry = RecordEntry.objects.get(resource_type="Condition", fhir_id="c3")
    submit(client, app, about=str(by_entry.pk), element="code")
    reading_only = patient_token(world["people"]["ada"], "patient/*.read")
    assert answer(post(client, url, correction(about="Condition/c1"), reading_only), 403)
    gp_system = system_token(world["gp"], "system/*.read system/Task.write system/Bundle.write")
    assert answer(post(client, url, correction(about="Condition/c1"), gp_system), 403)


# --- The owner's system takes the steps -------------------------------------------------


def task_update(task: dict, code: str, **changes) -> dict:
    body = copy.deepcopy(task)
    body["businessStatus"] = {"coding": [{"system": BUSINESS, "code": code}]}
    body.update(changes)
    return body


def test_the_owners_system_reviews_and_denies_with_if_match(client, world, app):
    task = submit(client, app)
    url = f"/fhir/Task/{task['id']}"
    system = system_token(world["gp"], "system/*.read system/Task.write")
    review = task_update(task, "in-review")
    assert answer(put(client, url, review, system), 428)["issue"][0]["expression"] == ["If-Match"]
    assert answer(put(client, url, review, system, "nonsense"), 400)
    denied = task_update(task, "denied", statusReason={"text": "The dose was right then"})
    assert answer(put(client, url, denied, system, 'W/"1"'), 409)["issue"][0]["code"] == "conflict"
    reply = put(client, url, review, system, 'W/"1"')
    reviewed = answer(reply, 200)
    assert reviewed["businessStatus"]["coding"][0]["code"] == "in-review"
    assert reply["ETag"] == 'W/"2"'
    assert answer(put(client, url, review, system, 'W/"1"'), 412)["issue"][0]["code"] == "conflict"
    bad_code = task_update(
        task, "denied", statusReason={"coding": [{"code": "because"}], "text": "The dose was right then"}
    )
    assert answer(put(client, url, bad_code, system, 'W/"2"'), 400)["issue"][0]["expression"] == [
        "Task.statusReason.coding[0].code"
    ]
    unknown = task_update(task, "on-hold")
    assert answer(put(client, url, unknown, system, 'W/"2"'), 422)["issue"][0]["expression"] == [
        "Task.businessStatus"
    ]
    waiting = task_update(task, "waiting-for-information", note=[{"text": "Which dose did the clinic give?"}])
    asked = answer(put(client, url, waiting, system, 'W/"2"'), 200)
    assert asked["businessStatus"]["coding"][0]["code"] == "waiting-for-information"
    message = CorrectionRequest.objects.get(pk=task["id"]).messages.get()
    assert (message.author, message.body) == (None, "Which dose did the clinic give?")
    assert message.author_label.startswith("system:")
    assert answer(put(client, url, review, system, 'W/"3"'), 200)  # the review resumes
    deny = task_update(
        task,
        "denied",
        statusReason={
            "coding": [{"code": "clinical_opinion"}],
            "text": "The dose was right when it was written",
        },
    )
    decided = answer(put(client, url, deny, system, 'W/"4"'), 200)
    assert (decided["status"], decided["businessStatus"]["coding"][0]["code"]) == ("completed", "denied")
    assert answer(put(client, url, review, system, 'W/"5"'), 409)  # decided: no more review
    reading_only = system_token(world["gp"], "system/*.read")
    assert answer(put(client, url, review, reading_only, 'W/"5"'), 403)
    assert answer(put(client, url, review, app, 'W/"5"'), 403)
    assert answer(client.delete(url, **system), 405)


def test_accepting_with_a_contained_amended_item_makes_a_new_version_and_notices(
    client, world, app, settings
):
    settings.CONSENT_MODEL = "opt-out"
    trust_system = system_token(world["trust"], "system/*.read")
    assert answer(client.get("/fhir/MedicationStatement/m1", **trust_system), 200)  # the trust saw v1
    task = submit(client, app)
    url = f"/fhir/Task/{task['id']}"
    system = system_token(world["gp"], "system/*.read system/Task.write")
    answer(put(client, url, task_update(task, "in-review"), system, 'W/"1"'), 200)
    current = answer(client.get("/fhir/MedicationStatement/m1", **system), 200)
    amended = {**current, "id": "amended", "dosage": [{"text": "5mg once daily"}]}
    no_output = task_update(task, "amendment-completed", contained=[amended])
    assert answer(put(client, url, no_output, system, 'W/"2"'), 400)["issue"][0]["expression"] == [
        "Task.output"
    ]
    wrong_kind = task_update(
        task,
        "amendment-completed",
        contained=[{"resourceType": "Condition", "id": "amended", "subject": {"reference": "Patient/p1"}}],
        output=[{"type": {"text": "amended"}, "valueReference": {"reference": "#amended"}}],
    )
    assert answer(put(client, url, wrong_kind, system, 'W/"2"'), 400)["issue"][0]["expression"] == [
        "Task.contained[0]"
    ]
    accept = task_update(
        task,
        "amendment-completed",
        contained=[amended],
        output=[{"type": {"text": "amended"}, "valueReference": {"reference": "#amended"}}],
    )
    done = answer(put(client, url, accept, system, 'W/"2"'), 200)
    assert done["businessStatus"]["coding"][0]["code"] == "amendment-completed"
    assert done["output"][0]["valueReference"]["reference"] == "MedicationStatement/m1/_history/2"
    entry = RecordEntry.objects.get(resource_type="MedicationStatement", fhir_id="m1")
    assert entry.version == 2
    assert EntryVersion.objects.filter(entry=entry).count() == 2
    mine = answer(client.get("/fhir/MedicationStatement/m1", **app), 200)
    assert mine["dosage"][0]["text"] == "5mg once daily"
    assert mine["id"] == "m1"
    # The trust, which read version 1, fetches its notice; nobody else sees it.
    notice = DownstreamNotice.objects.get(organisation=world["trust"])
    trust_notices = system_token(world["trust"], "system/Communication.read")
    found = answer(client.get("/fhir/Communication?recipient=RX100", **trust_notices), 200)
    assert found["total"] == 1
    assert json.dumps(found["entry"][0]["resource"], sort_keys=True) == notice.communication
    assert answer(client.get("/fhir/Communication", **trust_notices), 200)["total"] == 1
    assert (
        answer(client.get(f"/fhir/Communication?recipient={ODS}|RX100", **trust_notices), 200)["total"] == 1
    )
    assert answer(client.get("/fhir/Communication?recipient=A10001", **trust_notices), 200)["total"] == 0
    # The notices answer as the portal's other searches do: a count, in part, in date order.
    counted = answer(client.get("/fhir/Communication?recipient=RX100&_summary=count", **trust_notices), 200)
    assert (counted["total"], "entry" in counted) == (1, False)
    part = answer(client.get("/fhir/Communication?recipient=RX100&_elements=status", **trust_notices), 200)
    (notice,) = [e["resource"] for e in part["entry"]]
    assert set(notice) <= {"resourceType", "id", "meta", "status", "payload"}
    assert notice["status"] == "completed"
    newest = answer(client.get("/fhir/Communication?recipient=RX100&_sort=-date", **trust_notices), 200)
    assert newest["total"] == 1
    refused = answer(client.get("/fhir/Communication?recipient=RX100&_sort=subject", **trust_notices), 400)
    assert refused["issue"][0]["expression"] == ["_sort"]
    gp_notices = system_token(world["gp"], "system/Communication.read")
    assert answer(client.get("/fhir/Communication?recipient=RX100", **gp_notices), 200)["total"] == 0
    assert answer(client.get("/fhir/Communication", **gp_notices), 200)["total"] == 0
    assert answer(client.get("/fhir/Communication?recipient=RX100", **app), 200)["total"] == 0
    assert answer(client.get("/fhir/Communication?recipient=RX100&foo=1", **trust_notices), 400)
    # The conversation search is unchanged.
    assert answer(client.get(f"/fhir/Communication?part-of=Task/{task['id']}", **app), 200)


def test_odd_writes_never_answer_a_server_error(client, world, app):
    task = submit(client, app)
    url = f"/fhir/Task/{task['id']}"
    system = system_token(world["gp"], "system/*.read system/Task.write system/Bundle.write")
    bodies = [
        "{}",
        "[]",
        "null",
        '"text"',
        '{"resourceType": "Task"}',
        json.dumps({**task, "id": "someone-else"}),
        json.dumps(
            task_update(task, "in-review", businessStatus={"coding": [{"system": "x", "code": "in-review"}]})
        ),
        json.dumps(
            task_update(task, "amendment-completed", output=[{"type": {"text": "a"}, "valueString": "#x"}])
        ),
        json.dumps(task_update(task, "amendment-completed", focus={"reference": "MedicationStatement/m1"})),
        json.dumps(
            task_update(
                task,
                "amendment-completed",
                output=[{"type": {"text": "a"}, "valueReference": {"reference": "#gone"}}],
            )
        ),
    ]
    for body in bodies:
        for target, headers in (
            (url, {"HTTP_IF_MATCH": 'W/"1"', **system}),
            (f"/fhir/Task/{uuid.uuid4()}", system),
        ):
            reply = client.put(target, data=body, content_type="application/fhir+json", **headers)
            assert 400 <= reply.status_code < 500, (body, reply.content[:300])
            validate(json.loads(reply.content))
        for target, headers in (("/fhir/", system), ("/fhir/Communication/$correction-request", app)):
            reply = client.post(target, data=body, content_type="application/fhir+json", **headers)
            assert 400 <= reply.status_code < 500, (body, reply.content[:300])
            validate(json.loads(reply.content))
    odd_bundles = [
        {"resourceType": "Bundle", "type": "batch", "entry": "x"},
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [1, None, {"resource": []}, {"resource": {"id": 3}}],
        },
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"resourceType": "Nope"}}]},
    ]
    for bundle in odd_bundles:
        reply = post(client, "/fhir/", bundle, system)
        assert reply.status_code in (200, 400), reply.content[:300]
        validate(json.loads(reply.content))


def test_the_capability_statement_tells_what_can_be_written(client, db):
    body = answer(client.get("/fhir/metadata"), 200)
    rest = body["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch"}
    kinds = {r["type"]: r for r in rest["resource"]}
    assert "update" in {i["code"] for i in kinds["Task"]["interaction"]}
    assert kinds["Task"]["versioning"] == "versioned-update"
    assert kinds["Communication"]["operation"][0]["name"] == "correction-request"
    assert "recipient" in {p["name"] for p in kinds["Communication"]["searchParam"]}


def test_a_session_write_needs_the_csrf_token(world):
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world["people"]["ada"])
    url = "/fhir/Communication/$correction-request"
    refused = browser.post(url, data=json.dumps(correction()), content_type="application/fhir+json")
    assert answer(refused, 403)["issue"][0]["code"] == "forbidden"
    assert not CorrectionRequest.objects.exists()
    secret = _get_new_csrf_string()
    browser.cookies["csrftoken"] = secret
    made = browser.post(
        url, data=json.dumps(correction()), content_type="application/fhir+json", HTTP_X_CSRFTOKEN=secret
    )
    assert answer(made, 201)["status"] == "ready"


# --- The whole correction workflow over FHIR ---------------------------------------------

ASSIGNEE_URL = "https://portal.example/fhir/StructureDefinition/task-assignee"


def message(task_id: str, text: str, **changes) -> dict:
    communication = {
        "resourceType": "Communication",
        "status": "completed",
        "partOf": [{"reference": f"Task/{task_id}"}],
        "payload": [{"contentString": text}],
    }
    communication.update(changes)
    return communication


def assignee(user) -> dict:
    return {"url": ASSIGNEE_URL, "valueReference": {"reference": f"Practitioner/staff-{user.pk}"}}


def read_task(client, task_id: str, headers) -> tuple[dict, str]:
    reply = client.get(f"/fhir/Task/{task_id}", **headers)
    return answer(reply, 200), reply["ETag"]


def colleague(world, org_key: str = "gp", email: str = "dr.colleague@example.com"):
    return ClinicianFactory(email=email, organisation=world[org_key], second_factor=False)


def test_the_task_names_its_revision_in_meta_version_id_as_the_etag_does(client, world, app):
    task = submit(client, app)
    assert task["meta"]["versionId"] == "1"
    system = system_token(world["gp"], "system/*.read system/Task.write")
    reply = put(client, f"/fhir/Task/{task['id']}", task_update(task, "in-review"), system, 'W/"1"')
    reviewed = answer(reply, 200)
    assert reviewed["meta"]["versionId"] == "2"
    assert reply["ETag"] == 'W/"2"'
    read, etag = read_task(client, task["id"], system)
    assert (read["meta"]["versionId"], etag) == ("2", 'W/"2"')
    searched = answer(client.get("/fhir/Task?owner=A10001", **system), 200)
    assert searched["entry"][0]["resource"]["meta"]["versionId"] == "2"


def test_a_correction_runs_from_request_to_amendment_entirely_over_fhir(client, world):
    from accounts.models import Notification
    from accuracy.models import Message, TimelineEvent

    ada = world["people"]["ada"]
    patient_app = patient_token(ada, "patient/*.read patient/Communication.write patient/Task.write")
    system = system_token(
        world["gp"], "system/*.read system/Task.write system/Communication.write system/Bundle.write"
    )
    # The patient's app asks; the owner's system starts the review and asks a question.
    task = submit(client, patient_app)
    url = f"/fhir/Task/{task['id']}"
    task, etag = read_task(client, task["id"], system)
    task = answer(put(client, url, task_update(task, "in-review"), system, etag), 200)
    question = task_update(task, "waiting-for-information", note=[{"text": "Which clinic changed the dose?"}])
    task = answer(put(client, url, question, system, 'W/"2"'), 200)
    assert task["businessStatus"]["coding"][0]["code"] == "waiting-for-information"
    # The patient's app reads the question and answers it: the review resumes.
    thread = answer(client.get(f"/fhir/Communication?part-of=Task/{task['id']}", **patient_app), 200)
    assert thread["entry"][0]["resource"]["payload"][0]["contentString"] == "Which clinic changed the dose?"
    reply = post(
        client, "/fhir/Communication", message(task["id"], "The diabetes clinic, in May"), patient_app
    )
    sent = answer(reply, 201)
    assert sent["partOf"] == [{"reference": f"Task/{task['id']}"}]
    assert sent["sender"] == {"reference": f"Patient/{world['ada'].pk}"}
    assert sent["payload"][0]["contentString"] == "The diabetes clinic, in May"
    assert reply["Location"] == f"http://testserver/fhir/Communication/{sent['id']}"
    task, etag = read_task(client, task["id"], system)
    assert (task["businessStatus"]["coding"][0]["code"], etag) == ("in-review", 'W/"4"')
    answer_row = Message.objects.get(from_patient=True)
    assert (answer_row.author, answer_row.body) == (ada, "The diabetes clinic, in May")
    # The owner's system writes to the patient: a message, the state unchanged.
    note = answer(
        post(client, "/fhir/Communication", message(task["id"], "Thank you, checking now"), system), 201
    )
    assert note["sender"]["identifier"]["value"] == "A10001"
    assert note["recipient"] == [{"reference": f"Patient/{world['ada'].pk}"}]
    assert Notification.objects.filter(user=ada, body__endswith="\n\nThank you, checking now").exists()
    task, etag = read_task(client, task["id"], system)
    assert (task["businessStatus"]["coding"][0]["code"], etag) == ("in-review", 'W/"5"')
    # The system extends the deadline, with the reason the patient is told.
    request = CorrectionRequest.objects.get(pk=task["id"])
    later = request.first_due_on + timedelta(days=20)
    extended = copy.deepcopy(task)
    extended["restriction"] = {"period": {"end": later.isoformat()}}
    extended["statusReason"] = {"text": "We are waiting for the clinic's letter"}
    task = answer(put(client, url, extended, system, etag), 200)
    assert task["restriction"]["period"]["end"] == later.isoformat()
    assert task["meta"]["versionId"] == "6"
    request.refresh_from_db()
    assert (request.due_on, request.extension_reason) == (later, "We are waiting for the clinic's letter")
    assert Notification.objects.filter(user=ada, title__contains="more time").exists()
    # It assigns the request to a colleague; the Task shows who has it, the owner unchanged.
    dr_lee = colleague(world)
    assigned = copy.deepcopy(task)
    assigned["extension"] = [assignee(dr_lee)]
    task = answer(put(client, url, assigned, system, 'W/"6"'), 200)
    assert task["extension"] == [assignee(dr_lee)]
    assert task["owner"]["identifier"]["value"] == "A10001"
    assert Notification.objects.filter(user=dr_lee, title__contains="assigned to you").exists()
    assert CorrectionRequest.objects.get(pk=task["id"]).assigned_to == dr_lee
    # The same Task again changes nothing; then the system amends the item.
    again = answer(put(client, url, task, system, 'W/"7"'), 200)
    assert again["meta"]["versionId"] == "7"
    current = answer(client.get("/fhir/MedicationStatement/m1", **system), 200)
    accept = task_update(
        task,
        "amendment-completed",
        contained=[{**current, "id": "amended", "dosage": [{"text": "5mg once daily"}]}],
        output=[{"type": {"text": "amended"}, "valueReference": {"reference": "#amended"}}],
    )
    done = answer(put(client, url, accept, system, 'W/"7"'), 200)
    assert (done["status"], done["businessStatus"]["coding"][0]["code"]) == (
        "completed",
        "amendment-completed",
    )
    mine = answer(client.get("/fhir/MedicationStatement/m1", **patient_app), 200)
    assert mine["dosage"][0]["text"] == "5mg once daily"
    kinds = list(TimelineEvent.objects.filter(request_id=task["id"]).values_list("kind", flat=True))
    assert kinds == [
        "submitted",
        "start_review",
        "ask_information",
        "patient_reply",
        "message",
        "extend",
        "assign",
        "accept",
    ]
    # Decided: the patient may no longer write on it, the deadline no longer moves.
    closed = post(client, "/fhir/Communication", message(task["id"], "One more thing"), patient_app)
    assert answer(closed, 409)["issue"][0]["expression"] == ["Communication.partOf[0]"]
    later_still = copy.deepcopy(done)
    later_still["restriction"] = {"period": {"end": (later + timedelta(days=1)).isoformat()}}
    later_still["statusReason"] = {"text": "Another reason to wait"}
    assert answer(put(client, url, later_still, system, 'W/"8"'), 409)["issue"][0]["expression"] == [
        "Task.restriction.period.end"
    ]


def test_one_put_may_assign_extend_and_take_a_step_and_a_refusal_keeps_none_of_them(client, world, app):
    task = submit(client, app)
    url = f"/fhir/Task/{task['id']}"
    system = system_token(world["gp"], "system/*.read system/Task.write")
    dr_lee = colleague(world)
    request = CorrectionRequest.objects.get(pk=task["id"])
    body = task_update(
        task, "denied", statusReason={"text": "Waiting for the letter"}, extension=[assignee(dr_lee)]
    )
    body["restriction"] = {"period": {"end": (request.first_due_on + timedelta(days=5)).isoformat()}}
    # Denying a queued request is refused: nor is it assigned, nor the deadline moved.
    assert answer(put(client, url, body, system, 'W/"1"'), 409)["issue"][0]["expression"] == [
        "Task.businessStatus"
    ]
    request.refresh_from_db()
    assert (request.revision, request.assigned_to, request.due_on) == (1, None, request.first_due_on)
    body["businessStatus"]["coding"][0]["code"] = "in-review"
    done = answer(put(client, url, body, system, 'W/"1"'), 200)
    assert done["meta"]["versionId"] == "4"
    assert done["extension"] == [assignee(dr_lee)]
    assert done["restriction"]["period"]["end"] == (request.first_due_on + timedelta(days=5)).isoformat()
    assert done["businessStatus"]["coding"][0]["code"] == "in-review"


def test_deadline_and_assignee_refusals_name_the_element(client, world, app):
    task = submit(client, app)
    url = f"/fhir/Task/{task['id']}"
    system = system_token(world["gp"], "system/*.read system/Task.write")
    request = CorrectionRequest.objects.get(pk=task["id"])

    def with_deadline(end, reason="The clinic's letter is late") -> dict:
        body = copy.deepcopy(task)
        body["restriction"] = {"period": {"end": end}}
        body["statusReason"] = {"text": reason}
        return body

    deadline = ["Task.restriction.period.end"]
    for bad in ("tomorrow", "2026-02-30", "2026-04"):
        assert answer(put(client, url, with_deadline(bad), system, 'W/"1"'), 400)["issue"][0][
            "expression"
        ] == (deadline), bad
    earlier = (request.first_due_on - timedelta(days=1)).isoformat()
    refused = answer(put(client, url, with_deadline(earlier), system, 'W/"1"'), 422)
    assert refused["issue"][0]["expression"] == deadline
    assert refused["issue"][0]["code"] == "business-rule"
    too_far = (request.first_due_on + timedelta(days=400)).isoformat()
    assert answer(put(client, url, with_deadline(too_far), system, 'W/"1"'), 422)["issue"][0][
        "expression"
    ] == (deadline)
    later = (request.first_due_on + timedelta(days=3)).isoformat()
    assert answer(put(client, url, with_deadline(later, "x"), system, 'W/"1"'), 422)["issue"][0][
        "expression"
    ] == ["Task.statusReason.text"]
    # A dateTime is read as its day; the same day as now asks for nothing.
    same = answer(
        put(client, url, with_deadline(f"{request.due_on.isoformat()}T17:00:00Z"), system, 'W/"1"'), 200
    )
    assert same["meta"]["versionId"] == "1"
    assert (
        answer(put(client, url, with_deadline(f"{later}T09:00:00+01:00"), system, 'W/"1"'), 200)[
            "restriction"
        ]["period"]["end"]
        == later
    )
    twice = answer(put(client, url, with_deadline(request.first_due_on.isoformat()), system, 'W/"2"'), 422)
    assert "only once" in twice["issue"][0]["diagnostics"]
    assert twice["issue"][0]["expression"] == ["Task.restriction.period.end"]
    assert CorrectionRequest.objects.get(pk=task["id"]).due_on.isoformat() == later

    where = [f"Task.extension('{ASSIGNEE_URL}').valueReference"]
    outsider = colleague(world, "trust", "dr.elsewhere@example.com")
    for who in (outsider, world["people"]["ada"], world["people"]["ig"]):
        refused = answer(put(client, url, {**task, "extension": [assignee(who)]}, system, 'W/"2"'), 422)
        assert refused["issue"][0]["expression"] == where
        assert refused["issue"][0]["diagnostics"] == "Choose a colleague at your organisation"
    nobody = {"url": ASSIGNEE_URL, "valueReference": {"reference": "Practitioner/staff-999999"}}
    missing = answer(put(client, url, {**task, "extension": [nobody]}, system, 'W/"2"'), 422)
    assert missing["issue"][0] == refused["issue"][0]  # a stranger and nobody look alike
    odd = {"url": ASSIGNEE_URL, "valueReference": {"reference": "Organization/A10001"}}
    assert (
        answer(put(client, url, {**task, "extension": [odd]}, system, 'W/"2"'), 422)["issue"][0]["expression"]
        == where
    )
    assert CorrectionRequest.objects.get(pk=task["id"]).assigned_to is None
    # Another organisation's system finds no such Task, as for one that does not exist.
    trust = system_token(world["trust"], "system/*.read system/Task.write")
    dr_lee = colleague(world)
    elsewhere = put(client, url, {**task, "extension": [assignee(dr_lee)]}, trust, 'W/"2"')
    nowhere = put(
        client, f"/fhir/Task/{uuid.uuid4()}", {**task, "extension": [assignee(dr_lee)]}, trust, 'W/"2"'
    )
    assert answer(elsewhere, 404) == answer(nowhere, 404)


def test_a_patients_app_withdraws_a_request_and_may_do_nothing_else_by_put(client, world):
    from accuracy.models import TimelineEvent

    ada = world["people"]["ada"]
    patient_app = patient_token(ada, "patient/*.read patient/Communication.write patient/Task.write")
    task = submit(client, patient_app)
    url = f"/fhir/Task/{task['id']}"
    mine, etag = read_task(client, task["id"], patient_app)
    cancel = {k: v for k, v in mine.items() if k != "businessStatus"}
    cancel["status"] = "cancelled"
    cancel["statusReason"] = {"text": "My GP has sorted it out"}
    assert answer(put(client, url, cancel, patient_app), 428)["issue"][0]["expression"] == ["If-Match"]
    assert answer(put(client, url, cancel, patient_app, 'W/"7"'), 412)["issue"][0]["expression"] == [
        "If-Match"
    ]
    # Anything but withdrawing is refused, naming what the app tried to change.
    review = task_update(mine, "in-review")
    assert answer(put(client, url, review, patient_app, etag), 422)["issue"][0]["expression"] == [
        "Task.status"
    ]
    decide = task_update(cancel, "amendment-completed")
    assert answer(put(client, url, decide, patient_app, etag), 422)["issue"][0]["expression"] == [
        "Task.businessStatus"
    ]
    # Without patient/Task.write, or about someone else's request: refused.
    no_write = patient_token(ada, "patient/*.read patient/Communication.write")
    assert answer(put(client, url, cancel, no_write, etag), 403)["issue"][0]["code"] == "forbidden"
    ben_app = patient_token(world["people"]["ben"], "patient/*.read patient/Task.write")
    assert answer(put(client, url, cancel, ben_app, etag), 404) == answer(
        put(client, f"/fhir/Task/{uuid.uuid4()}", cancel, ben_app, etag), 404
    )
    assert CorrectionRequest.objects.get(pk=task["id"]).status == "ready"
    # Withdrawn, with the note; the as-read businessStatus may come along unchanged.
    reply = put(client, url, {**cancel, "businessStatus": mine["businessStatus"]}, patient_app, etag)
    withdrawn = answer(reply, 200)
    assert (withdrawn["status"], withdrawn["businessStatus"]["coding"][0]["code"]) == (
        "cancelled",
        "requester-cancelled",
    )
    assert reply["ETag"] == 'W/"2"'
    event = TimelineEvent.objects.filter(request_id=task["id"]).latest("id")
    assert (event.kind, event.note) == ("withdraw", "My GP has sorted it out")
    # Again: nothing more to do. A decided request cannot be withdrawn.
    assert answer(put(client, url, withdrawn, patient_app, 'W/"2"'), 200)["meta"]["versionId"] == "2"
    other = submit(client, patient_app, about="Condition/c2", element=None)
    system = system_token(world["gp"], "system/*.read system/Task.write")
    answer(put(client, f"/fhir/Task/{other['id']}", task_update(other, "in-review"), system, 'W/"1"'), 200)
    denied = task_update(
        other, "denied", statusReason={"coding": [{"code": "accurate"}], "text": "It was right as written"}
    )
    decided = answer(put(client, f"/fhir/Task/{other['id']}", denied, system, 'W/"2"'), 200)
    late = {**decided, "status": "cancelled", "businessStatus": decided["businessStatus"]}
    assert (
        answer(put(client, f"/fhir/Task/{other['id']}", late, patient_app, 'W/"3"'), 409)["issue"][0]["code"]
        == "conflict"
    )


def test_an_organisations_system_may_not_cancel_a_request(client, world, app):
    task = submit(client, app)
    system = system_token(world["gp"], "system/*.read system/Task.write")
    cancel = {**task, "status": "cancelled"}
    refused = answer(put(client, f"/fhir/Task/{task['id']}", cancel, system, 'W/"1"'), 422)
    assert refused["issue"][0]["expression"] == ["Task.status"]
    withdraw = task_update(task, "requester-cancelled")
    assert answer(put(client, f"/fhir/Task/{task['id']}", withdraw, system, 'W/"1"'), 422)["issue"][0][
        "expression"
    ] == ["Task.businessStatus"]
    assert CorrectionRequest.objects.get(pk=task["id"]).status == "ready"


def test_messages_need_the_write_scope_a_task_of_ones_own_and_words(client, world, app):
    task = submit(client, app)
    url = "/fhir/Communication"
    gp_system = system_token(world["gp"], "system/*.read system/Communication.write")
    # Scopes: a reading token, a Task.write token, a patient app without the write scope.
    for headers in (
        system_token(world["gp"], "system/*.read system/Task.write"),
        patient_token(world["people"]["ada"], "patient/*.read patient/Task.write"),
    ):
        assert (
            answer(post(client, url, message(task["id"], "Hello there"), headers), 403)["issue"][0]["code"]
            == "forbidden"
        )
    # A patient's app granted a system scope carries nothing of it.
    mixed = patient_token(world["people"]["ada"], "patient/*.read system/Communication.write")
    assert answer(post(client, url, message(task["id"], "Hello there"), mixed), 403)
    assert answer(post(client, url, message(task["id"], "Hello there"), {}), 401)
    client.force_login(world["people"]["gp"])  # staff write in the workspace, not here
    assert answer(post(client, url, message(task["id"], "Hello there"), {}), 403)
    client.logout()
    # Another organisation's Task, another patient's, and none at all: 404 alike.
    trust = system_token(world["trust"], "system/*.read system/Communication.write")
    ben_app = patient_token(world["people"]["ben"], "patient/*.read patient/Communication.write")
    missing = answer(post(client, url, message(str(uuid.uuid4()), "Hello there"), gp_system), 404)
    assert answer(post(client, url, message(task["id"], "Hello there"), trust), 404) == missing
    assert answer(post(client, url, message(task["id"], "Hello there"), ben_app), 404) == missing
    assert answer(post(client, url, message("not-a-uuid", "Hello there"), gp_system), 404) == missing
    # What is missing or unusable is named.
    part_of = ["Communication.partOf[0]"]
    assert (
        answer(post(client, url, message(task["id"], "Hi", partOf=[]), gp_system), 400)["issue"][0][
            "expression"
        ]
        == part_of
    )
    wrong = message(task["id"], "Hello there", partOf=[{"reference": f"Condition/{task['id']}"}])
    assert answer(post(client, url, wrong, gp_system), 400)["issue"][0]["expression"] == part_of
    payload = ["Communication.payload[0].contentString"]
    for body in (
        message(task["id"], "x"),
        message(task["id"], "   "),
        message(task["id"], "Hello", payload=[{"contentAttachment": {"title": "letter"}}]),
        {k: v for k, v in message(task["id"], "Hello").items() if k != "payload"},
    ):
        assert answer(post(client, url, body, gp_system), 400)["issue"][0]["expression"] == payload, body
    no_status = {k: v for k, v in message(task["id"], "Hello").items() if k != "status"}
    assert answer(post(client, url, no_status, gp_system), 400)["issue"][0]["expression"] == [
        "Communication.status"
    ]
    assert not CorrectionRequest.objects.get(pk=task["id"]).messages.exists()
    # The history form of the reference is accepted; a patient's message on a queued
    # request is a message, not an answer: the state stays.
    versioned = message(task["id"], "Any news?", partOf=[{"reference": f"Task/{task['id']}/_history/1"}])
    assert answer(post(client, url, versioned, app), 201)["sender"]["reference"].startswith("Patient/")
    request = CorrectionRequest.objects.get(pk=task["id"])
    assert (request.business_status, request.revision) == ("queued", 2)
    assert answer(client.get(url, **gp_system), 200)["total"] == 0  # notices are another thing
    assert answer(client.put(url, data="{}", content_type="application/fhir+json", **gp_system), 405)


def test_systems_cannot_get_patient_write_scopes_nor_patients_apps_system_ones(client, world):
    import base64

    from api.scopes import SmartScopes

    app = Application.objects.create(
        name="GP system",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="system-secret-for-tests-only",
    )
    SystemClient.objects.create(application=app, organisation=world["gp"])
    basic = base64.b64encode(f"{app.client_id}:system-secret-for-tests-only".encode()).decode()
    for scope, status in (
        ("system/Communication.write system/Task.write", 200),
        ("patient/Task.write", 400),
        ("system/*.read patient/Communication.write", 400),
    ):
        reply = client.post(
            "/o/token/",
            {"grant_type": "client_credentials", "scope": scope},
            HTTP_AUTHORIZATION=f"Basic {basic}",
        )
        assert reply.status_code == status, (scope, reply.content)
    health_app = Application.objects.create(
        name="My Health App",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://app.example/callback",
    )
    backend = SmartScopes()
    patient_side = backend.get_available_scopes(health_app)
    system_side = backend.get_available_scopes(app)
    assert {"patient/Task.write", "patient/Communication.write"} <= set(patient_side)
    assert "system/Communication.write" in system_side
    assert not any(s.startswith("system/") for s in patient_side)
    assert not any(s.startswith("patient/") for s in system_side)
    words = backend.get_all_scopes()
    assert words["patient/Task.write"] == "withdraw your correction requests"
    assert "correction" in words["system/Communication.write"]


def test_new_writes_never_answer_a_server_error(client, world, app):
    task = submit(client, app)
    patient_app = patient_token(
        world["people"]["ada"], "patient/*.read patient/Task.write patient/Communication.write"
    )
    system = system_token(world["gp"], "system/*.read system/Task.write system/Communication.write")
    bodies = [
        "{}",
        "[]",
        "null",
        '{"resourceType": "Communication", "status": "completed", "partOf": "Task/x"}',
        json.dumps(message(task["id"], "Hello", partOf=[{"reference": 3}])),
        json.dumps(message(task["id"], "Hello", partOf=[{"display": "no reference"}])),
        json.dumps(message(task["id"], "Hello", payload=[{"contentString": 7}])),
        json.dumps({**task, "status": "cancelled", "extension": [{"url": ASSIGNEE_URL, "valueString": "x"}]}),
        json.dumps({**task, "extension": [{"url": ASSIGNEE_URL, "valueReference": {"display": "Dr Lee"}}]}),
        json.dumps({**task, "restriction": {"period": {"end": 20260101}}}),
        json.dumps({**task, "restriction": {"period": {"end": "2026-01-01T25:99"}}}),
        json.dumps({**task, "restriction": "soon"}),
        json.dumps(
            {**task, "status": "cancelled", "businessStatus": {"coding": [{"system": "x", "code": "y"}]}}
        ),
    ]
    for body in bodies:
        for headers in (system, patient_app):
            reply = client.post(
                "/fhir/Communication", data=body, content_type="application/fhir+json", **headers
            )
            assert 400 <= reply.status_code < 500, (body, reply.content[:300])
            validate(json.loads(reply.content))
            reply = client.put(
                f"/fhir/Task/{task['id']}",
                data=body,
                content_type="application/fhir+json",
                HTTP_IF_MATCH='W/"1"',
                **headers,
            )
            assert reply.status_code < 500, (body, reply.content[:300])
            validate(json.loads(reply.content))


def test_after_a_refusal_the_patients_app_logs_a_disagreement_as_the_guide_says(client, world, app):
    from accuracy.models import Statement

    task = submit(client, app)
    url = f"/fhir/Task/{task['id']}"
    system = system_token(world["gp"], "system/*.read system/Task.write system/Communication.write")
    types = "http://hl7.org/fhir/uv/patient-corrections/CodeSystem/PatientCorrectionCommunicationTypes"
    category = [{"coding": [{"system": types, "code": "medRecCxDenialDisagree"}]}]
    statement = message(task["id"], "The dose was never 10mg: the clinic letter says 5mg", category=category)
    # Not refused yet: there is nothing to disagree with.
    early = answer(post(client, "/fhir/Communication", statement, app), 409)
    assert early["issue"][0]["expression"] == ["Communication.category[0]"]
    answer(put(client, url, task_update(task, "in-review"), system, 'W/"1"'), 200)
    denied = task_update(
        task, "denied", statusReason={"coding": [{"code": "accurate"}], "text": "The dose recorded was right"}
    )
    answer(put(client, url, denied, system, 'W/"2"'), 200)
    # The system cannot respond before there is a disagreement; too few words are named;
    # then the patient's app logs it.
    assert answer(post(client, "/fhir/Communication", statement, system), 409)["issue"][0]["expression"] == [
        "Communication.category[0]"
    ]
    short = message(task["id"], "no", category=category)
    assert answer(post(client, "/fhir/Communication", short, app), 400)["issue"][0]["expression"] == [
        "Communication.payload[0].contentString"
    ]
    reply = post(client, "/fhir/Communication", statement, app)
    logged = answer(reply, 201)
    assert logged["category"][0]["coding"][0] == {"system": types, "code": "medRecCxDenialDisagree"}
    assert logged["sender"]["reference"] == f"Patient/{world['ada'].pk}"
    assert logged["payload"][0]["contentString"] == "The dose was never 10mg: the clinic letter says 5mg"
    assert reply["Location"].endswith(f"/fhir/Communication/{logged['id']}")
    assert Statement.objects.get(request_id=task["id"]).kind == "disagreement"
    after, etag = read_task(client, task["id"], system)
    assert (after["businessStatus"]["coding"][0]["code"], etag) == ("disagreement-logged", 'W/"4"')
    assert answer(post(client, "/fhir/Communication", statement, app), 409)["issue"][0]["code"] == "conflict"

    # The owner's system responds to it: a Communication of the same process, from the owner.
    response_text = message(task["id"], "We checked the clinic letter with the consultant", category=category)
    responded = answer(post(client, "/fhir/Communication", response_text, system), 201)
    assert responded["sender"]["identifier"]["value"] == world["gp"].ods_code
    assert responded["recipient"] == [{"reference": f"Patient/{world['ada'].pk}"}]
    rebuttal = Statement.objects.get(request_id=task["id"], kind="rebuttal")
    assert (rebuttal.author, rebuttal.author_label.startswith("system:")) == (None, True)
    assert (
        answer(post(client, "/fhir/Communication", response_text, system), 409)["issue"][0]["code"]
        == "conflict"
    )


def test_the_patients_portal_session_withdraws_with_the_csrf_token(world, app):
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    task = submit(browser, app)
    browser.force_login(world["people"]["ada"])
    cancel = {**task, "status": "cancelled"}
    url = f"/fhir/Task/{task['id']}"
    refused = browser.put(
        url, data=json.dumps(cancel), content_type="application/fhir+json", HTTP_IF_MATCH='W/"1"'
    )
    assert answer(refused, 403)["issue"][0]["code"] == "forbidden"
    secret = _get_new_csrf_string()
    browser.cookies["csrftoken"] = secret
    done = browser.put(
        url,
        data=json.dumps(cancel),
        content_type="application/fhir+json",
        HTTP_IF_MATCH='W/"1"',
        HTTP_X_CSRFTOKEN=secret,
    )
    assert answer(done, 200)["businessStatus"]["coding"][0]["code"] == "requester-cancelled"
