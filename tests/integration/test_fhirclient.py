"""The SMART client `fhirclient` (from PyPI, written by nobody here) reads the demo
patient's record through /fhir/ on a live server, with a bearer token from issue_token.

Every raw response the client receives is also validated with fhir.resources.R4B;
another patient's record answers 404 and is absent from searches; a revoked or expired
token answers 401.
"""

import io
import json
from datetime import timedelta

import pytest
import requests
from django.core.management import call_command
from django.db import connections
from django.test import override_settings
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from fhirclient import client
from fhirclient.models.condition import Condition
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient as FHIRPatient
from fhirclient.server import FHIRNotFoundException, FHIRUnauthorizedException
from oauth2_provider.models import get_access_token_model

from accounts.models import User
from api.oauth_server import cli_application, stop_app
from consent.policy import Action, actor_for, open_record
from phr.models import RecordEntry

PAGE = 7  # small pages, so that the client follows `next` links


@pytest.fixture
def demo(integration_services, live_server, monkeypatch):
    """The Northbridge demo network, loaded through the ingest like any organisation's data."""
    # The live server's thread for a kept-alive HTTP connection would otherwise hold its
    # database session past the test and the test database's teardown.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    with override_settings(DEBUG=True, DEMO_PASSWORD="demo-for-tests-only"):
        call_command("seed_demo", stdout=io.StringIO())
    me = User.objects.get(email="patient@example.com")
    other = User.objects.get(email="patient2@example.com")
    return me, other


def issue_token(email: str, scope: str = "patient/*.read launch/patient") -> dict:
    out = io.StringIO()
    call_command("issue_token", email, "--scope", scope, "--json", stdout=out)
    return json.loads(out.getvalue())


def validate(resource: dict) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    if resource["resourceType"] == "Bundle":
        for item in resource.get("entry", []):
            inner = item["resource"]
            get_fhir_model_class(inner["resourceType"]).model_validate(inner)


class Recorder:
    """A requests response hook: keeps every response the client's session receives."""

    def __init__(self):
        self.responses: list[requests.Response] = []

    def __call__(self, response, *args, **kwargs):
        self.responses.append(response)

    def validate_all(self) -> int:
        for response in self.responses:
            assert response.headers["Content-Type"].startswith("application/fhir+json"), response.url
            validate(response.json())
        return len(self.responses)


def smart_client(base: str, token: str | None, patient_id: str | None = None):
    settings = {"app_id": "integration-test", "api_base": base}
    if patient_id:
        settings["patient_id"] = patient_id
    smart = client.FHIRClient(settings=settings)
    recorder = Recorder()
    smart.server.session.hooks["response"].append(recorder)
    # Reads /fhir/metadata: the SMART extension there makes the client an OAuth 2 client,
    # not yet ready, as it holds no token.
    assert smart.prepare() is False
    assert smart.server.auth.auth_type == "oauth2"
    assert smart.server.auth.authorize_uri(smart.server).startswith(
        base.removesuffix("/fhir") + "/o/authorize/"
    )
    if token:
        # What the client keeps after its own token exchange (FHIROAuth2Auth.access_token).
        smart.server.auth.access_token = token
        assert smart.ready
    return smart, recorder


def permitted(user: User, resource_type: str) -> set[str]:
    """The ids the policy lets this patient see of one type (read outside any request)."""
    access = open_record(actor_for(user), user.patient_link.patient_id, action=Action.SEARCH_RECORD)
    return set(
        access.locate(
            lambda entries: entries.filter(resource_type=resource_type).values_list("fhir_id", flat=True)
        )
    )


def search_all(model, struct: dict, server) -> tuple[list, int]:
    """Every resource a search finds, page by page through `next` links, and the pages."""
    resources, pages = [], 0
    for bundle in model.where(struct=struct).perform_iter(server):
        pages += 1
        assert bundle.type == "searchset"
        resources += [entry.resource for entry in bundle.entry or []]
    return resources, pages


def test_fhirclient_reads_and_searches_the_demo_record_with_a_token_from_issue_token(live_server, demo):
    me, other = demo
    body = issue_token(me.email)
    pid = body["patient"]
    assert pid == str(me.patient_link.patient_id)
    base = live_server.url + "/fhir"
    smart, recorder = smart_client(base, body["access_token"], patient_id=pid)

    # The SMART launch context: the client reads the patient it was given.
    patient = smart.patient
    assert isinstance(patient, FHIRPatient)
    assert patient.id == pid
    assert patient.name
    assert patient.name[0].family
    assert FHIRPatient.read(pid, smart.server).id == pid

    for model in (Condition, Observation):
        kind = model.resource_type
        expected = permitted(me, kind)
        assert expected, f"the demo patient has no {kind}"
        found, pages = search_all(model, {"patient": pid, "_count": str(PAGE)}, smart.server)
        assert all(isinstance(r, model) for r in found)
        ids = [r.id for r in found]
        assert len(ids) == len(set(ids)) == len(expected), kind
        assert set(ids) == expected
        assert pages == -(-len(expected) // PAGE)
        # A patient's search with no patient given is of their own record.
        assert {r.id for r in model.where(struct={}).perform_resources_iter(smart.server)} == expected
        # The other patient's entries are nowhere in it, and asking for them finds nothing.
        theirs = permitted(other, kind)
        assert theirs
        assert not (theirs & set(ids))
        search = model.where(struct={"patient": str(other.patient_link.patient_id)})
        first = next(search.perform_iter(smart.server))
        assert first.total == 0
        assert not first.entry

    # The other patient's Patient answers 404, as a missing one would.
    with pytest.raises(FHIRNotFoundException) as refused:
        FHIRPatient.read(str(other.patient_link.patient_id), smart.server)
    assert refused.value.response.json()["issue"][0]["code"] == "not-found"
    # And so does one of their conditions by id.
    theirs = sorted(permitted(other, "Condition"))[0]
    with pytest.raises(FHIRNotFoundException):
        Condition.read(theirs, smart.server)

    # $everything, read raw through the client's signed session.
    everything = smart.server.request_json(f"Patient/{pid}/$everything")
    assert everything["total"] == len(everything["entry"]) > 0
    served = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in everything["entry"]}
    assert ("Patient", pid) in served
    theirs = RecordEntry.objects.filter(patient=other.patient_link.patient)
    assert not served & set(theirs.values_list("resource_type", "fhir_id"))

    # Every response the client received, successes and OperationOutcomes, is FHIR R4.
    assert recorder.validate_all() >= 8


def test_a_revoked_or_expired_token_is_refused_with_401(live_server, demo):
    me, _ = demo
    base = live_server.url + "/fhir"
    pid = str(me.patient_link.patient_id)

    token = issue_token(me.email)["access_token"]
    smart, recorder = smart_client(base, token)
    assert FHIRPatient.read(pid, smart.server).id == pid
    # The patient stops the app from their portal ("apps that can see my record").
    assert stop_app(user=me, application=cli_application())
    with pytest.raises(FHIRUnauthorizedException) as refused:
        FHIRPatient.read(pid, smart.server)
    assert "invalid_token" in refused.value.response.headers["WWW-Authenticate"]

    token = issue_token(me.email)["access_token"]
    smart, expired = smart_client(base, token)
    assert next(Condition.where(struct={"_count": "1"}).perform_resources_iter(smart.server))
    get_access_token_model().objects.filter(user=me).update(expires=timezone.now() - timedelta(seconds=1))
    with pytest.raises(FHIRUnauthorizedException):
        next(Condition.where(struct={"patient": pid}).perform_iter(smart.server))

    # No token at all: the client is not ready, and the server says 401 too.
    anonymous, nobody = smart_client(base, None)
    assert not anonymous.ready
    with pytest.raises(FHIRUnauthorizedException):
        FHIRPatient.read(pid, anonymous.server)

    for seen in (recorder, expired, nobody):
        seen.validate_all()
