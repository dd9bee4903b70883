"""A token releases only the resource types its scopes name, through every channel, and
the consent screen says exactly that: what the app will see, and whether it keeps its
access (a refresh token only with offline_access)."""

import json
from dataclasses import replace
from urllib.parse import parse_qs, urlparse

import pytest
from oauth2_provider.models import RefreshToken

from accounts.models import User
from api import scopes as smart
from api.auth import api_actor
from audit.models import AuditEvent
from consent.policy import NotFound, actor_for, open_record
from phr.models import RecordEntry
from tests.api.test_fhir_api import _token, ids, validate
from tests.api.test_fhir_api import net as net  # the shared network, found by name
from tests.api.test_oauth import authorize_params, bearer, exchange, pkce
from tests.api.test_oauth import health_app as health_app  # the shared app, found by name

pytestmark = pytest.mark.django_db

ADA_CONDITIONS = {"Condition/c1", "Condition/c2", "Condition/c3", "Condition/d1"}


def latest_export() -> AuditEvent:
    return AuditEvent.objects.filter(action="record.export").order_by("-seq").first()


def types_in(bundle) -> set[str]:
    return {e["resource"]["resourceType"] for e in bundle.get("entry", [])}


# --- $everything and $summary -------------------------------------------------------------


def test_a_patient_only_token_gets_only_the_patient_from_everything(client, net):
    headers = _token(net, "patient/Patient.read")
    bundle = fhir_with(client, f"/fhir/Patient/{net['ada'].pk}/$everything", headers)
    assert ids(bundle) == [f"Patient/{net['ada'].pk}"]
    assert bundle["total"] == 1
    # The disclosure audited is exactly the one Patient entry.
    (disclosed,) = latest_export().entries
    source = RecordEntry.objects.get(pk=disclosed.split(":")[0])
    assert source.resource_type == "Patient"


def test_a_patient_only_token_gets_a_summary_with_every_clinical_section_withheld(client, net):
    headers = _token(net, "patient/Patient.read")
    response = client.get(f"/fhir/Patient/{net['ada'].pk}/$summary", **headers)
    assert response.status_code == 200, response.content[:500]
    bundle = json.loads(response.content)
    validate(bundle)
    assert types_in(bundle) == {"Composition", "Patient"}
    composition = bundle["entry"][0]["resource"]
    # The IPS's three required sections, each empty and saying why: withheld from this app.
    assert [s["title"] for s in composition["section"]] == [
        "Problems",
        "Allergies and intolerances",
        "Medications",
    ]
    assert {s["emptyReason"]["coding"][0]["code"] for s in composition["section"]} == {"withheld"}
    assert not any("entry" in s for s in composition["section"])
    assert "Hypertensive" not in response.content.decode()


def test_a_condition_token_sees_conditions_but_not_observations_in_everything(client, net):
    headers = _token(net, "patient/Condition.read")
    bundle = json.loads(client.get(f"/fhir/Patient/{net['ada'].pk}/$everything", **headers).content)
    validate(bundle)
    assert set(ids(bundle)) == ADA_CONDITIONS
    assert "Observation/o1" not in ids(bundle)
    # Without Patient.read the network patient (name, NHS number) is not in it either.
    assert "Patient" not in types_in(bundle)


def test_a_condition_token_gets_only_the_problems_section_and_no_demographics(client, net):
    headers = _token(net, "patient/Condition.read")
    response = client.get(f"/fhir/Patient/{net['ada'].pk}/$summary", **headers)
    assert response.status_code == 200, response.content[:500]
    bundle = json.loads(response.content)
    validate(bundle)
    composition = bundle["entry"][0]["resource"]
    sections = {s["title"]: s for s in composition["section"]}
    assert list(sections) == ["Problems", "Allergies and intolerances", "Medications"]
    assert "entry" in sections["Problems"]
    assert sections["Medications"]["emptyReason"]["coding"][0]["code"] == "withheld"
    assert types_in(bundle) == {"Composition", "Patient", "Condition"}
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert patient == {"resourceType": "Patient", "id": str(net["ada"].pk)}
    assert "9434765919" not in response.content.decode()


def test_two_types_release_both_and_nothing_else(client, net):
    headers = _token(net, "patient/Patient.read patient/Condition.read")
    bundle = fhir_with(client, f"/fhir/Patient/{net['ada'].pk}/$everything", headers)
    assert set(ids(bundle)) == {f"Patient/{net['ada'].pk}", *ADA_CONDITIONS}


def test_a_token_that_reads_nothing_of_the_record_is_refused_the_operations(client, net):
    headers = _token(net, "openid launch/patient")
    for operation in ("$everything", "$summary"):
        refused = client.get(f"/fhir/Patient/{net['ada'].pk}/{operation}", **headers)
        assert refused.status_code == 403
        assert json.loads(refused.content)["issue"][0]["code"] == "forbidden"


def test_a_system_patient_token_gets_only_the_patient_too(client, net):
    headers = _token(net, "system/Patient.read", system=True)
    bundle = fhir_with(client, f"/fhir/Patient/{net['ada'].pk}/$everything", headers)
    assert ids(bundle) == [f"Patient/{net['ada'].pk}"]
    summary = fhir_with(client, f"/fhir/Patient/{net['ada'].pk}/$summary", headers)
    assert types_in(summary) == {"Composition", "Patient"}
    assert client.get("/fhir/Condition/c1", **headers).status_code == 403


def test_a_system_condition_token_sees_conditions_but_not_observations(client, net):
    headers = _token(net, "system/Condition.read", system=True)
    bundle = fhir_with(client, f"/fhir/Patient/{net['ada'].pk}/$everything", headers)
    # The GP system reads what its organisation may see, of the one type granted.
    assert "Observation/o1" not in ids(bundle)
    assert types_in(bundle) == {"Condition"}


def fhir_with(client, url, headers) -> dict:
    response = client.get(url, **headers)
    assert response.status_code == 200, response.content[:500]
    body = json.loads(response.content)
    validate(body)
    return body


# --- Reads by id, versions and searches ----------------------------------------------------


def test_a_patient_only_token_cannot_read_a_condition_by_id_or_version(client, net):
    headers = _token(net, "patient/Patient.read")
    condition = RecordEntry.objects.get(resource_type="Condition", fhir_id="c1", patient=net["ada"])
    for url in (
        "/fhir/Condition/c1",
        f"/fhir/Condition/{condition.pk}",
        "/fhir/Condition/c1/_history/1",
        "/fhir/Condition?patient=" + str(net["ada"].pk),
    ):
        refused = client.get(url, **headers)
        assert refused.status_code == 403, url
        assert "Hypertensive" not in refused.content.decode()
    # What it may read, it reads.
    assert fhir_with(client, f"/fhir/Patient/{net['ada'].pk}", headers)["id"] == str(net["ada"].pk)


# --- The door itself --------------------------------------------------------------------


def test_the_policy_releases_only_the_actors_types_on_every_read(net):
    ada = actor_for(User.objects.get(email="ada@example.com"))
    narrowed = replace(ada, readable_types=frozenset({"Patient"}))
    access = open_record(narrowed, net["ada"].pk)
    assert {e.resource_type for e in access.read()} == {"Patient"}
    observation = RecordEntry.objects.get(resource_type="Observation", fhir_id="o1")
    with pytest.raises(NotFound):
        access.read_one(observation.pk)
    everything = open_record(ada, net["ada"].pk)
    assert everything.read_one(observation.pk) == observation


def test_a_tokens_actor_carries_the_types_its_scopes_release(net, health_app):
    from api.oauth_server import issue_access_token

    ada = User.objects.get(email="ada@example.com")
    cases = {
        "patient/Patient.read openid": frozenset({"Patient"}),
        "patient/Condition.read patient/Observation.read": frozenset({"Condition", "Observation"}),
        "patient/*.read": None,
        "patient/Communication.write": frozenset(),
    }
    for scope, expected in cases.items():
        raw, _ = issue_access_token(
            application=health_app, user=ada, scope=scope, minutes=5, issued_by="test"
        )
        assert api_actor(bearer(raw)).readable_types == expected, scope


def test_the_words_for_patient_read_say_what_it_releases():
    words = smart.describe(["patient/Patient.read"])
    assert len(words) == 1
    assert "NHS number" in words[0]
    assert "record" not in words[0]
    whole = smart.describe(["patient/*.read"])[0]
    for promise in ("whole record", "sharing choices", "who has looked", "correction requests"):
        assert promise in whole


# --- The consent screen and offline_access -------------------------------------------------


def consent_page(client, user, app, scope) -> tuple[str, dict, str]:
    client.force_login(user)
    verifier, challenge = pkce()
    params = authorize_params(app, challenge, scope=scope)
    page = client.get("/o/authorize/", params)
    assert page.status_code == 200, page.content.decode()[:500]
    return page.content.decode(), params, verifier


def allowed_token(client, user, app, scope) -> dict:
    _, params, verifier = consent_page(client, user, app, scope)
    response = client.post("/o/authorize/", {**params, "allow": "true"})
    code = parse_qs(urlparse(response["Location"]).query)["code"][0]
    client.logout()
    reply = exchange(client, app, code, verifier)
    assert reply.status_code == 200, reply.content
    return reply.json()


def refresh(client, app, refresh_token, **extra):
    return client.post(
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": app.client_id, **extra},
    )


def test_without_offline_access_there_is_no_refresh_token_and_the_screen_says_so(
    client, net, health_app, settings
):
    ada = User.objects.get(email="ada@example.com")
    page, _, _ = consent_page(client, ada, health_app, "launch/patient patient/Patient.read")
    assert "your name, date of birth" in page
    assert "whole record" not in page
    assert "keep its access" not in page
    assert "keeps this access" not in page
    assert f"after {settings.OAUTH_ACCESS_TOKEN_MINUTES} minutes" in page
    body = allowed_token(client, ada, health_app, "launch/patient patient/Patient.read")
    assert "refresh_token" not in body
    assert not RefreshToken.objects.exists()
    assert api_actor(bearer(body["access_token"])).patient_id == net["ada"].pk


def test_with_offline_access_the_refresh_token_works_and_the_screen_says_so(client, net, health_app):
    ada = User.objects.get(email="ada@example.com")
    scope = "launch/patient patient/Patient.read offline_access"
    page, _, _ = consent_page(client, ada, health_app, scope)
    assert "keep its access when you are not using it" in page
    body = allowed_token(client, ada, health_app, scope)
    assert body["refresh_token"]
    renewed = refresh(client, health_app, body["refresh_token"])
    assert renewed.status_code == 200, renewed.content
    assert renewed.json()["refresh_token"]
    assert api_actor(bearer(renewed.json()["access_token"])).patient_id == net["ada"].pk


def test_a_refresh_that_drops_offline_access_ends_the_kept_access(client, net, health_app):
    ada = User.objects.get(email="ada@example.com")
    body = allowed_token(client, ada, health_app, "launch/patient patient/Patient.read offline_access")
    renewed = refresh(client, health_app, body["refresh_token"], scope="launch/patient patient/Patient.read")
    assert renewed.status_code == 200, renewed.content
    assert "refresh_token" not in renewed.json()
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert refresh(client, health_app, body["refresh_token"]).status_code == 400
