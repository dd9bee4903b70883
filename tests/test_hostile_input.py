"""Hostile input gets a 4xx naming what is wrong, never a server error: a huge _offset, a
NUL character in a parameter (PostgreSQL refuses NUL in text and in JSON, so one must
never reach the database), a number too long for Python to convert, JSON nested too
deeply. FHIR answers an OperationOutcome, the JSON API JSON, the pages a plain 400."""

import json
import uuid
from contextlib import contextmanager

import pytest
from django.db import connection

from tests.api.test_fhir_write import patient_token, system_token
from tests.feeds import one_problem
from tests.personas import PatientUserFactory

HUGE_OFFSET = "999999999999999999999"
# More digits than Python converts to an int (sys.get_int_max_str_digits() is 4,300).
LONG_NUMBER = "1" + "0" * 5000


@pytest.fixture
def net(gp, dr_gp, ig_officer):
    ada = one_problem(gp)
    return {
        "gp": gp,
        "ada": ada,
        "item": ada.entries.get(resource_type="Condition"),
        "people": {
            "ada": PatientUserFactory(email="ada@example.com", patient=ada),
            "doctor": dr_gp,
            "ig": ig_officer,
        },
    }


def signed_in(client, net, who):
    client.force_login(net["people"][who])
    return client


def fhir_refusal(response, parameter: str, status: int = 400) -> dict:
    """A 4xx OperationOutcome whose issue names the parameter or element at fault."""
    assert response.status_code == status, response.content[:600]
    assert response["Content-Type"].startswith("application/fhir+json")
    body = json.loads(response.content)
    assert body["resourceType"] == "OperationOutcome"
    assert parameter in body["issue"][0].get("expression", []), body
    return body


def json_refusal(response, field: str) -> dict:
    assert response.status_code == 400, response.content[:600]
    body = response.json()
    assert body.get("field") == field, body
    return body


@contextmanager
def no_nul_reaches_the_database():
    """PostgreSQL refuses a NUL in text ('\\x00') and in JSON ('\\u0000'): neither may be
    sent with any statement, or the same request would be a server error there."""
    sent: list = []

    def keep(execute, sql, params, many, context):
        sent.append(params if many else [params])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        yield
    rows = [row.values() if isinstance(row, dict) else row for batch in sent for row in batch or []]
    values = [value for row in rows for value in row or []]
    assert not [v for v in values if isinstance(v, str) and ("\x00" in v or "\\u0000" in v)]


# --- _offset ----------------------------------------------------------------------------

PATIENT_SEARCHES = [
    "/fhir/Condition",
    "/fhir/Patient",
    "/fhir/Consent",
    "/fhir/AuditEvent",
    "/fhir/Provenance",
    "/fhir/Task",
    f"/fhir/Communication?part-of=Task/{uuid.uuid4()}",
    "/fhir/Organization",
    "/fhir/Practitioner",
    "/fhir/Patient/{ada}/$everything",
]


@pytest.mark.parametrize("url", PATIENT_SEARCHES)
def test_a_huge_offset_on_any_search_is_a_400_naming_offset(client, net, url):
    signed_in(client, net, "ada")
    url = url.format(ada=net["ada"].pk)
    joiner = "&" if "?" in url else "?"
    fhir_refusal(client.get(f"{url}{joiner}_offset={HUGE_OFFSET}"), "_offset")


def test_a_huge_offset_in_a_posted_search_is_a_400_naming_offset(client, net):
    signed_in(client, net, "ada")
    reply = client.post(
        "/fhir/Condition/_search",
        data=f"_offset={HUGE_OFFSET}",
        content_type="application/x-www-form-urlencoded",
    )
    fhir_refusal(reply, "_offset")


def test_a_huge_offset_on_a_systems_notices_is_a_400_naming_offset(client, net):
    headers = system_token(net["gp"], "system/Communication.read")
    reply = client.get(f"/fhir/Communication?recipient=A10001&_offset={HUGE_OFFSET}", **headers)
    fhir_refusal(reply, "_offset")


@pytest.mark.parametrize("url", ["/api/v1/notifications/", "/api/v1/access-log/", "/api/v1/corrections/"])
def test_a_huge_offset_on_the_json_api_is_a_400_naming_offset(client, net, url):
    signed_in(client, net, "ada")
    json_refusal(client.get(f"{url}?offset={HUGE_OFFSET}"), "offset")


# --- NUL characters ---------------------------------------------------------------------


def test_a_nul_in_a_fhir_search_parameter_is_a_400_naming_it(client, net):
    signed_in(client, net, "ada")
    with no_nul_reaches_the_database():
        body = fhir_refusal(client.get("/fhir/Condition?_id=c1%00"), "_id")
    assert "NUL" in body["issue"][0]["diagnostics"]


def test_a_nul_in_a_posted_fhir_search_is_a_400_naming_it(client, net):
    signed_in(client, net, "ada")
    with no_nul_reaches_the_database():
        reply = client.post(
            "/fhir/Condition/_search", data="_id=c1%00", content_type="application/x-www-form-urlencoded"
        )
        fhir_refusal(reply, "_id")


def test_a_nul_in_the_organisation_of_a_new_choice_is_a_400_naming_it(client, net):
    signed_in(client, net, "ada")
    choice = {
        "scope": "organisation",
        "decision": "deny",
        "organisation": "A10001\u0000",
        "contact_preference": "portal",
    }
    with no_nul_reaches_the_database():
        reply = client.post(
            "/api/v1/consent/choices/", data=json.dumps(choice), content_type="application/json"
        )
        json_refusal(reply, "organisation")


@pytest.mark.parametrize(("who", "url"), [("ig", "/api/v1/audit/events/"), ("ada", "/api/v1/access-log/")])
def test_a_nul_in_the_organisation_filter_is_a_400_naming_it(client, net, who, url):
    signed_in(client, net, who)
    with no_nul_reaches_the_database():
        json_refusal(client.get(f"{url}?organisation=A10001%00"), "organisation")


def test_a_nul_in_a_record_pages_page_number_is_a_plain_400(client, net):
    signed_in(client, net, "ada")
    with no_nul_reaches_the_database():
        reply = client.get("/record/problems/?page=1%00")
    assert reply.status_code == 400
    assert "page" in reply.content.decode()
    # The page knows who is signed in (the outside probe saw "Sign in" offered here).
    assert "Sign out" in reply.content.decode()
    assert "Sign in" not in reply.content.decode()


def test_a_nul_in_the_clinician_records_kind_is_a_plain_400(client, net):
    signed_in(client, net, "doctor")
    with no_nul_reaches_the_database():
        reply = client.get(f"/clinician/patients/{net['ada'].pk}/?kind=Condition%00")
    assert reply.status_code == 400
    assert "kind" in reply.content.decode()


# --- Numbers too long to convert, JSON nested too deeply -----------------------------------


def test_a_bundle_holding_a_number_too_long_to_convert_is_a_400(client, net):
    headers = system_token(net["gp"], "system/Bundle.write")
    bundle = (
        '{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Observation",'
        '"status":"final","code":{"text":"Count"},"valueInteger":' + LONG_NUMBER + "},"
        '"request":{"method":"POST","url":"Observation"}}]}'
    )
    reply = client.post("/fhir/", data=bundle, content_type="application/fhir+json", **headers)
    assert reply.status_code == 400, reply.content[:600]
    assert json.loads(reply.content)["resourceType"] == "OperationOutcome"
    assert "digits" in reply.content.decode()


def test_a_correction_request_holding_a_number_too_long_to_convert_is_a_400(client, net):
    headers = patient_token(net["people"]["ada"], "patient/Communication.write")
    body = (
        '{"resourceType":"Communication","status":"in-progress","about":[{"reference":"Condition/c1"}],'
        '"payload":[{"contentString":"Wrong"}],"extension":[{"url":"x","valueInteger":' + LONG_NUMBER + "}]}"
    )
    reply = client.post(
        "/fhir/Communication/$correction-request", data=body, content_type="application/fhir+json", **headers
    )
    assert reply.status_code == 400, reply.content[:600]
    assert json.loads(reply.content)["resourceType"] == "OperationOutcome"


def test_json_nested_a_hundred_thousand_deep_is_a_400_on_the_json_api(client, net):
    signed_in(client, net, "ada")
    deep = "[" * 100_000 + "]" * 100_000
    reply = client.post("/api/v1/consent/choices/", data=deep, content_type="application/json")
    assert reply.status_code == 400, reply.content[:600]
    assert "nested too deeply" in reply.json()["detail"] or "depth" in reply.json()["detail"]
