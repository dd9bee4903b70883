"""The CapabilityStatement tells the truth (issue 15, part 5): a walk of /fhir/metadata
calls every interaction, search parameter and operation it lists, as a patient's app
would, and each is served: a search parameter is never refused as unknown, a read finds
what the search found, an operation or a write answers as itself (an OperationOutcome
about its input, never "no such route")."""

import copy
import json
from urllib.parse import urlencode

import pytest

from phr.ingest import ingest_documents
from phr.models import Patient
from tests.personas import PatientUserFactory

pytestmark = pytest.mark.django_db

# Search parameters a GET may not carry: they identify a person, so they are POSTed to
# <Type>/_search (the statement's documentation says so).
POSTED_ONLY = {"Patient": {"identifier", "family", "given", "name", "birthdate"}}
SORTS = ("-date", "date", "_lastUpdated", "-_lastUpdated")


@pytest.fixture
def record(samples, gp, client):
    bundle = json.loads(next((samples / "synthea").glob("Clemente_Kreiger_*.json")).read_text())
    assert ingest_documents([("gp", copy.deepcopy(bundle))], organisation=gp).rejected == 0
    [patient] = Patient.objects.all()
    client.force_login(PatientUserFactory(patient=patient))
    return patient


def statement(client) -> dict:
    body = client.get("/fhir/metadata").json()
    assert body["resourceType"] == "CapabilityStatement"
    return body["rest"][0]


def value_for(param: dict, patient: Patient, found: str | None, gp) -> list[str]:
    """Values a client might send for a parameter of this name and type."""
    name, kind = param["name"], param["type"]
    by_name = {
        "patient": [str(patient.pk), f"Patient/{patient.pk}"],
        "_id": [found or "not-there"],
        "_summary": ["count", "false"],
        "_elements": ["id"],
        "_count": ["1"],
        "_offset": ["0"],
        "_sort": list(SORTS),
        "owner": [f"Organization/{gp.ods_code}"],
        "recipient": [gp.ods_code],
        "identifier": [gp.ods_code],
        "target": [f"Condition/{found or 'not-there'}"],
        "part-of": ["Task/not-there"],
    }
    if name in by_name:
        return by_name[name]
    return {"date": ["ge2000-01-01"], "token": ["x"], "string": ["a"], "number": ["1"]}.get(kind, ["x"])


def test_every_search_parameter_read_and_vread_the_statement_lists_is_served(client, record, gp):
    rest = statement(client)
    refused, read, searched = [], 0, 0
    for resource in rest["resource"]:
        kind = resource["type"]
        codes = {i["code"] for i in resource["interaction"]}
        found = None
        if "search-type" in codes:
            # Most types search the patient's own record with no parameter; a conversation
            # needs the request it belongs to (part-of) or the notices' recipient.
            answer = client.get(f"/fhir/{kind}")
            if answer.status_code == 200:
                entries = answer.json().get("entry", [])
                found = entries[0]["resource"]["id"] if entries else None
            # A search refused with no parameter: the others are also tried beside the
            # first that answers alone (part-of or recipient, for a conversation).
            anchor = {} if answer.status_code == 200 else None
            params = [
                p for p in resource.get("searchParam", []) if p["name"] not in POSTED_ONLY.get(kind, ())
            ]
            for param in sorted(params, key=lambda p: p["name"].startswith("_")):
                tried = {}
                for value in value_for(param, record, found, gp):
                    status = client.get(f"/fhir/{kind}", {param["name"]: value}).status_code
                    if status != 200 and anchor:  # a shaping parameter of an anchored search
                        status = client.get(f"/fhir/{kind}", {**anchor, param["name"]: value}).status_code
                    tried[value] = status
                searched += 1
                good = [value for value, status in tried.items() if status == 200]
                if not good:
                    refused.append((kind, param["name"], sorted(set(tried.values()))))
                elif anchor is None:
                    anchor = {param["name"]: good[0]}
        if found is not None and "read" in codes:
            read += 1
            if client.get(f"/fhir/{kind}/{found}").status_code != 200:
                refused.append((kind, "read", found))
            if "vread" in codes and client.get(f"/fhir/{kind}/{found}/_history/1").status_code != 200:
                refused.append((kind, "vread", found))
    assert refused == []
    assert searched > 100  # every type's parameters were tried
    assert read >= 6  # the record types this record has, and the portal's own it has


def test_the_parameters_that_must_be_posted_are_served_by_post(client, record):
    rest = statement(client)
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    posted = [p["name"] for p in patient["searchParam"] if p["name"] in POSTED_ONLY["Patient"]]
    assert sorted(posted) == sorted(POSTED_ONLY["Patient"])
    values = {"identifier": "9990000018", "family": record.family_name or "a", "given": "a", "name": "a"}
    for name in posted:
        data = {name: values.get(name, "1961-04-02")}
        if name in ("name", "family", "given"):
            data["birthdate"] = "1961-04-02"  # a name needs a birth date too, as documented
        answer = client.post(
            "/fhir/Patient/_search", urlencode(data), content_type="application/x-www-form-urlencoded"
        )
        assert answer.status_code == 200, (name, answer.content[:300])


def test_every_operation_and_write_the_statement_lists_answers_as_itself(client, record):
    rest = statement(client)
    for resource in rest["resource"]:
        kind = resource["type"]
        for operation in resource.get("operation", []):
            if kind == "Patient":
                answer = client.get(f"/fhir/Patient/{record.pk}/${operation['name']}")
                assert answer.status_code == 200, (operation["name"], answer.content[:300])
            else:
                answer = client.post(
                    f"/fhir/{kind}/${operation['name']}", "{}", content_type="application/fhir+json"
                )
                assert answer.status_code in (400, 403, 422), (kind, operation["name"], answer.status_code)
                assert answer.json()["resourceType"] == "OperationOutcome"
        codes = {i["code"] for i in resource["interaction"]}
        if "create" in codes:
            answer = client.post(f"/fhir/{kind}", "{}", content_type="application/fhir+json")
            assert answer.status_code in (400, 403, 422), (kind, "create", answer.status_code)
            assert answer.json()["resourceType"] == "OperationOutcome"
        if "update" in codes:
            answer = client.put(f"/fhir/{kind}/not-there", "{}", content_type="application/fhir+json")
            assert answer.status_code in (400, 403, 404, 412, 422, 428), (kind, "update", answer.status_code)
            assert answer.json()["resourceType"] == "OperationOutcome"
    for interaction in rest.get("interaction", []):
        assert interaction["code"] in ("transaction", "batch")
        answer = client.post("/fhir/", "{}", content_type="application/fhir+json")
        assert answer.status_code in (400, 403), (interaction["code"], answer.status_code)
        assert answer.json()["resourceType"] == "OperationOutcome"
