"""A correction request's conversation over FHIR: every Communication a POST answers can
be read back at its Location (a message, a statement of disagreement, the owner's
response), the part-of search lists them all in the order they were written, and a
patient's Task never shows which member of staff handles it. Every response is FHIR R4
(checked with fhir.resources.R4B)."""

import copy
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.utils import timezone

from tests.api.test_fhir_api import net as net  # the shared network, found by name
from tests.api.test_fhir_write import (
    ASSIGNEE_URL,
    answer,
    assignee,
    colleague,
    message,
    patient_token,
    post,
    put,
    read_task,
    submit,
    system_token,
    task_update,
)

TYPES = "http://hl7.org/fhir/uv/patient-corrections/CodeSystem/PatientCorrectionCommunicationTypes"
DISAGREE = [{"coding": [{"system": TYPES, "code": "medRecCxDenialDisagree"}]}]


@pytest.fixture
def world(request, db):
    return request.getfixturevalue("net")


@pytest.fixture
def ada_app(world):
    return patient_token(
        world["people"]["ada"], "patient/*.read patient/Communication.write patient/Task.write"
    )


@pytest.fixture
def gp_system(world):
    return system_token(world["gp"], "system/*.read system/Task.write system/Communication.write")


def read_back(client, reply, headers) -> dict:
    """GET the Location a POST answered: the same Communication."""
    written = answer(reply, 201)
    path = urlsplit(reply["Location"]).path
    assert path == f"/fhir/Communication/{written['id']}"
    read = answer(client.get(path, **headers), 200)
    assert read == written
    return read


def deny(client, task, system) -> dict:
    url = f"/fhir/Task/{task['id']}"
    _, etag = read_task(client, task["id"], system)
    reviewed = answer(put(client, url, task_update(task, "in-review"), system, etag), 200)
    refusal = task_update(
        reviewed,
        "denied",
        statusReason={"coding": [{"code": "accurate"}], "text": "The dose recorded was right"},
    )
    return answer(put(client, url, refusal, system, f'W/"{reviewed["meta"]["versionId"]}"'), 200)


def test_what_a_post_answers_reads_back_at_its_location(client, world, ada_app, gp_system):
    task = submit(client, ada_app)
    url = "/fhir/Communication"
    mine = read_back(client, post(client, url, message(task["id"], "Any news?"), ada_app), ada_app)
    assert "-m" in mine["id"]
    assert answer(client.get(f"{url}/{mine['id']}", **gp_system), 200) == mine
    theirs = read_back(
        client, post(client, url, message(task["id"], "We are looking at it"), gp_system), gp_system
    )
    assert answer(client.get(f"{url}/{theirs['id']}", **ada_app), 200) == theirs
    deny(client, task, gp_system)
    statement = message(task["id"], "The dose was never 10mg: the letter says 5mg", category=DISAGREE)
    logged = read_back(client, post(client, url, statement, ada_app), ada_app)
    assert logged["id"].rpartition("-s")[0] == task["id"].replace("-", "")[:24]
    assert logged["category"][0]["coding"][0]["code"] == "medRecCxDenialDisagree"
    assert answer(client.get(f"{url}/{logged['id']}", **gp_system), 200) == logged
    response = message(task["id"], "We checked the letter with the consultant", category=DISAGREE)
    responded = read_back(client, post(client, url, response, gp_system), gp_system)
    assert responded["sender"]["identifier"]["value"] == world["gp"].ods_code
    assert answer(client.get(f"{url}/{responded['id']}", **ada_app), 200) == responded


def test_another_organisation_or_patient_reads_a_statement_as_missing(client, world, ada_app, gp_system):
    task = submit(client, ada_app)
    deny(client, task, gp_system)
    statement = message(task["id"], "The dose was never 10mg: the letter says 5mg", category=DISAGREE)
    logged = answer(post(client, "/fhir/Communication", statement, ada_app), 201)
    note = answer(post(client, "/fhir/Communication", message(task["id"], "Noted, thanks"), gp_system), 201)
    missing = answer(client.get(f"/fhir/Communication/{task['id'][:8]}-s999999", **gp_system), 404)
    trust = system_token(world["trust"], "system/*.read")
    ben = patient_token(world["people"]["ben"], "patient/*.read")
    for resource in (logged, note):
        for headers in (trust, ben):
            assert answer(client.get(f"/fhir/Communication/{resource['id']}", **headers), 404) == missing
    prefix, _, number = logged["id"].rpartition("-s")
    other = uuid.uuid4().hex[:24]
    for wrong in (
        f"{other}-s{number}",  # another request's prefix
        f"{prefix}-m{number}" if not note["id"].endswith(f"-m{number}") else f"{prefix}-m0",
        f"{prefix}-s{int(number) + 1}",
        f"{prefix}-x{number}",
        f"{prefix}-s",
        f"{prefix.upper()}-s{number}",
        f"{prefix}-s{'9' * 19}",
    ):
        assert answer(client.get(f"/fhir/Communication/{wrong}", **ada_app), 404) == missing, wrong
    assert answer(client.get(f"/fhir/Communication/{logged['id']}"), 401)


def test_the_conversation_lists_statements_with_messages_in_time_order(client, world, ada_app, gp_system):
    url = "/fhir/Communication"
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        task = submit(client, ada_app)
        post(client, url, message(task["id"], "Any news?"), ada_app)
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        deny(client, task, gp_system)
    with time_machine.travel(start + timedelta(minutes=2), tick=False):
        statement = message(task["id"], "The dose was never 10mg: the letter says 5mg", category=DISAGREE)
        answer(post(client, url, statement, ada_app), 201)
    with time_machine.travel(start + timedelta(minutes=3), tick=False):
        answer(post(client, url, message(task["id"], "We will check the letter"), gp_system), 201)
    with time_machine.travel(start + timedelta(minutes=4), tick=False):
        response = message(task["id"], "We checked the letter with the consultant", category=DISAGREE)
        answer(post(client, url, response, gp_system), 201)
    expected = [
        "Any news?",
        "The dose was never 10mg: the letter says 5mg",
        "We will check the letter",
        "We checked the letter with the consultant",
    ]
    for headers in (ada_app, gp_system):
        thread = answer(client.get(f"{url}?part-of=Task/{task['id']}", **headers), 200)
        assert thread["total"] == 4
        shown = [e["resource"]["payload"][0]["contentString"] for e in thread["entry"]]
        assert shown == expected
        kinds = ["category" in e["resource"] for e in thread["entry"]]
        assert kinds == [False, True, False, True]
        for entry in thread["entry"]:
            assert entry["fullUrl"].endswith(f"/fhir/Communication/{entry['resource']['id']}")
            assert answer(client.get(f"{url}/{entry['resource']['id']}", **headers), 200) == entry["resource"]
    second_page = answer(client.get(f"{url}?part-of=Task/{task['id']}&_count=2&_offset=2", **ada_app), 200)
    assert [e["resource"]["payload"][0]["contentString"] for e in second_page["entry"]] == expected[2:]
    trust = system_token(world["trust"], "system/*.read")
    assert answer(client.get(f"{url}?part-of=Task/{task['id']}", **trust), 200)["total"] == 0


def test_a_patient_never_sees_who_handles_the_request(client, world, ada_app, gp_system):
    task = submit(client, ada_app)
    assert "extension" not in task
    dr_lee = colleague(world)
    url = f"/fhir/Task/{task['id']}"
    assigned = copy.deepcopy(task)
    assigned["extension"] = [assignee(dr_lee)]
    owners = answer(put(client, url, assigned, gp_system, 'W/"1"'), 200)
    assert owners["extension"] == [assignee(dr_lee)]
    # The owner's system sees the assignee, by read and by search.
    read, etag = read_task(client, task["id"], gp_system)
    assert read["extension"] == [assignee(dr_lee)]
    queue = answer(client.get("/fhir/Task?owner=A10001", **gp_system), 200)
    assert queue["entry"][0]["resource"]["extension"] == [assignee(dr_lee)]
    # The patient's app does not: not by read, by search, nor in the answer to a withdrawal.
    read, patient_etag = read_task(client, task["id"], ada_app)
    assert patient_etag == etag
    assert "extension" not in read
    assert ASSIGNEE_URL not in str(read)
    mine = answer(client.get(f"/fhir/Task?patient={world['ada'].pk}", **ada_app), 200)
    assert [e["resource"]["id"] for e in mine["entry"]] == [task["id"]]
    assert ASSIGNEE_URL not in str(mine)
    withdrawn = answer(put(client, url, {**read, "status": "cancelled"}, ada_app, etag), 200)
    assert withdrawn["status"] == "cancelled"
    assert ASSIGNEE_URL not in str(withdrawn)
    # Nor the portal session.
    client.force_login(world["people"]["ada"])
    assert ASSIGNEE_URL not in str(answer(client.get(url), 200))
    assert ASSIGNEE_URL not in str(answer(client.get("/fhir/Task"), 200))
    client.logout()
    # The owner's system still does, after the withdrawal.
    assert read_task(client, task["id"], gp_system)[0]["extension"] == [assignee(dr_lee)]


def test_the_capability_statement_tells_how_tasks_and_communications_are_written(client, db):
    body = answer(client.get("/fhir/metadata"), 200)
    kinds = {r["type"]: r for r in body["rest"][0]["resource"]}
    task = kinds["Task"]["documentation"]
    for words in (
        ASSIGNEE_URL,
        "Practitioner/staff-<id>",
        "restriction.period.end",
        "statusReason.text",
        "meta.versionId",
        "patient/Task.write",
        "cancelled",
    ):
        assert words in task, words
    communication = kinds["Communication"]
    assert {i["code"] for i in communication["interaction"]} == {"read", "create", "search-type"}
    for words in (
        "partOf Task/<id>",
        "payload[0].contentString",
        "system/Communication.write",
        "patient/Communication.write",
        "medRecCxDenialDisagree",
    ):
        assert words in communication["documentation"], words
