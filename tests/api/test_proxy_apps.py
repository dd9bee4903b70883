"""Issue 12 part 4: a proxy's SMART app asks which patient (launch/patient) and gets a
token for that one, acting as the proxy for them under the grant; it is refused the
moment the grant ends; the patient sees it and may stop it."""

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import AccessToken, Grant

from accounts.models import ProxyAccess
from api.models import ProxyApp
from audit.models import AuditEvent
from consent import proxies
from consent.policy import actor_for
from consent.proxies import Rights
from phr.models import Patient
from tests.api.test_oauth import authorize_params, exchange, health_app, pkce
from tests.personas import PatientUserFactory
from tests.sharing.test_proxies import mia, mia_user

__all__ = ["health_app", "mia", "mia_user"]  # fixtures shared with the OAuth and proxy tests

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient patient/*.read offline_access"


@pytest.fixture
def ben(db):
    """Mia's husband: an account of his own, linked to a record of his own."""
    own = Patient.objects.create(nhs_number="9434765919", family_name="Jones", given_names="Ben")
    return PatientUserFactory(email="ben@example.com", patient=own)


@pytest.fixture
def grant(mia_user, ben) -> ProxyAccess:
    return proxies.grant_by_patient(
        actor=actor_for(mia_user),
        email="ben@example.com",
        rights=Rights(),
        until=timezone.now() + timedelta(days=30),
        reason="My husband helps",
    )


@pytest.fixture
def app(health_app):
    return health_app


def connect(client, user, app, record: str | None, scope=SCOPES) -> dict:
    """The user allows the app for ``record`` ("own" or a grant id) and it gets a token."""
    client.force_login(user)
    verifier, challenge = pkce()
    params = authorize_params(app, challenge, scope=scope)
    assert client.get("/o/authorize/", params).status_code == 200
    chosen = {"record": record} if record is not None else {}
    response = client.post("/o/authorize/", {**params, "allow": "true", **chosen})
    assert response.status_code == 302, response.content.decode()[:400]
    code = parse_qs(urlparse(response["Location"]).query)["code"][0]
    client.logout()
    token = exchange(client, app, code, verifier)
    assert token.status_code == 200, token.content
    return token.json()


def conditions(client, token: str):
    return client.get("/fhir/Condition", HTTP_AUTHORIZATION=f"Bearer {token}")


def ids_in(response) -> set[str]:
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


def test_the_consent_screen_asks_whose_record_naming_both(client, ben, grant, app):
    client.force_login(ben)
    _, challenge = pkce()
    page = client.get("/o/authorize/", authorize_params(app, challenge, scope=SCOPES)).content.decode()
    assert "Whose record may it see?" in page
    assert "My own record" in page
    assert "Mia Jones" in page
    assert "They can see that you connected it" in page


def test_a_proxys_app_gets_a_token_for_the_patient_chosen_and_acts_as_the_proxy(client, ben, grant, app, mia):
    token = connect(client, ben, app, str(grant.pk))
    assert token["patient"] == str(mia.pk)
    response = conditions(client, token["access_token"])
    assert response.status_code == 200
    # The proxy's limits hold for their app: the sensitive item is never released.
    assert {"plain"} <= ids_in(response)
    assert "sex" not in ids_in(response)
    read = AuditEvent.objects.filter(actor=ben, patient=mia, action__startswith="record.").last()
    assert read.actor_label.startswith("ben@example.com, acting for the patient")
    allowed = AuditEvent.objects.get(action="oauth.grant", actor=ben)
    assert allowed.patient_id == mia.pk
    assert allowed.detail["grant"] == grant.pk


def test_the_same_app_for_ones_own_record_names_ones_own_patient(client, ben, grant, app):
    token = connect(client, ben, app, "own")
    assert token["patient"] == str(ben.patient_link.patient_id)
    assert not ProxyApp.objects.exists()


def test_without_launch_patient_a_proxy_is_offered_only_their_own_record(client, ben, grant, app):
    client.force_login(ben)
    _, challenge = pkce()
    page = client.get(
        "/o/authorize/", authorize_params(app, challenge, scope="patient/*.read")
    ).content.decode()
    assert "Whose record may it see?" not in page
    assert "Mia Jones" not in page
    params = authorize_params(app, challenge, scope="patient/*.read")
    refused = client.post("/o/authorize/", {**params, "allow": "true", "record": str(grant.pk)})
    assert refused.status_code == 400
    assert not Grant.objects.exists()


def test_someone_with_no_record_of_their_own_can_connect_only_with_launch_patient(client, mia_user, app, mia):
    carer = PatientUserFactory(email="carer@example.com", patient=None)
    grant = proxies.grant_by_patient(
        actor=actor_for(mia_user),
        email="carer@example.com",
        rights=Rights(),
        until=timezone.now() + timedelta(days=30),
        reason="My carer helps me",
    )
    client.force_login(carer)
    _, challenge = pkce()
    no_context = client.get("/o/authorize/", authorize_params(app, challenge, scope="patient/*.read"))
    assert no_context.status_code == 403
    assert "did not" in no_context.content.decode()
    page = client.get("/o/authorize/", authorize_params(app, challenge, scope=SCOPES)).content.decode()
    assert "It will see the record of <strong>Mia Jones</strong>" in page
    token = connect(client, carer, app, str(grant.pk))
    assert token["patient"] == str(mia.pk)


@pytest.mark.parametrize("tampered", ["999999", "abc", "own\x00", "1" * 30, ""])
def test_a_record_not_offered_is_refused_and_no_code_issued(client, ben, grant, app, tampered, mia_user):
    other = PatientUserFactory(email="other@example.com", patient=None)
    theirs = ProxyAccess.objects.create(
        patient=mia_user.patient_link.patient,
        proxy=other,
        relationship="chosen",
        reason="Someone else's grant",
        ends_at=timezone.now() + timedelta(days=3),
        granted_by=mia_user,
    )
    client.force_login(ben)
    _, challenge = pkce()
    params = authorize_params(app, challenge, scope=SCOPES)
    for value in (tampered, str(theirs.pk)):
        if not value:
            continue
        response = client.post("/o/authorize/", {**params, "allow": "true", "record": value})
        assert response.status_code == 400, value
    assert not Grant.objects.exists()
    assert not ProxyApp.objects.exists()


def test_a_grant_that_does_not_let_them_see_is_not_offered(client, mia_user, app):
    PatientUserFactory(email="helper@example.com", patient=None)
    grant = proxies.grant_by_patient(
        actor=actor_for(mia_user),
        email="helper@example.com",
        rights=Rights(see=False, correct=True),
        until=timezone.now() + timedelta(days=30),
        reason="Helps with letters",
    )
    helper = grant.proxy
    client.force_login(helper)
    _, challenge = pkce()
    assert client.get("/o/authorize/", authorize_params(app, challenge, scope=SCOPES)).status_code == 403


def test_the_token_and_its_refresh_are_refused_once_the_grant_ends(client, ben, grant, app, mia_user):
    token = connect(client, ben, app, str(grant.pk))
    assert conditions(client, token["access_token"]).status_code == 200
    proxies.end_grant(actor=actor_for(mia_user), grant_id=grant.pk, reason="No longer needed")
    refused = conditions(client, token["access_token"])
    assert refused.status_code == 401
    # Never a fall-back to the proxy's own record.
    assert "invalid_token" in refused["WWW-Authenticate"]
    refreshed = client.post(
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": app.client_id},
    )
    assert refreshed.status_code == 400
    client.force_login(ben)
    assert "My Health App" not in client.get(reverse("oauth:apps")).content.decode()


def test_a_lapsed_grant_refuses_the_token_too(client, ben, grant, app):
    token = connect(client, ben, app, str(grant.pk))
    ProxyAccess.objects.filter(pk=grant.pk).update(ends_at=timezone.now() - timedelta(minutes=1))
    assert conditions(client, token["access_token"]).status_code == 401


def test_choosing_another_record_stops_the_apps_access_to_the_first(client, ben, grant, app):
    first = connect(client, ben, app, str(grant.pk))
    second = connect(client, ben, app, "own")
    assert conditions(client, first["access_token"]).status_code == 401
    assert conditions(client, second["access_token"]).status_code == 200
    assert second["patient"] == str(ben.patient_link.patient_id)


def test_the_proxy_sees_whose_record_the_app_sees_on_their_apps_page(client, ben, grant, app):
    connect(client, ben, app, str(grant.pk))
    client.force_login(ben)
    page = client.get(reverse("oauth:apps")).content.decode()
    assert "Mia Jones (you act for them)" in page
    assert "Stop this app seeing their record" in page


def test_the_patient_sees_and_stops_an_app_their_proxy_connected(client, ben, grant, app, mia_user, mia):
    token = connect(client, ben, app, str(grant.pk))
    client.force_login(mia_user)
    page = client.get(reverse("oauth:apps")).content.decode()
    assert "Apps that people acting for you connected" in page
    assert "ben@example.com" in page
    assert "My Health App" in page
    row = ProxyApp.objects.get()
    # Another patient cannot stop it: the row is not on their record.
    stranger = PatientUserFactory(email="stranger@example.com")
    client.force_login(stranger)
    assert client.post(reverse("oauth:apps"), {"proxy_app": str(row.pk)}).status_code == 404
    assert client.post(reverse("oauth:apps"), {"application": "99999"}).status_code == 404
    assert conditions(client, token["access_token"]).status_code == 200
    client.force_login(mia_user)
    response = client.post(reverse("oauth:apps"), {"proxy_app": str(row.pk)}, follow=True)
    assert "connected by ben@example.com, can no longer see your record" in response.content.decode()
    assert conditions(client, token["access_token"]).status_code == 401
    assert not AccessToken.objects.filter(user=ben).exists()
    stopped = AuditEvent.objects.get(action="oauth.revoke")
    assert stopped.actor_id == mia_user.pk
    assert stopped.patient_id == mia.pk


def test_the_proxy_stops_their_app_and_is_told_whose_record_it_no_longer_sees(client, ben, grant, app):
    token = connect(client, ben, app, str(grant.pk))
    client.force_login(ben)
    response = client.post(reverse("oauth:apps"), {"application": str(app.pk)}, follow=True)
    assert "My Health App can no longer see the record of Mia Jones." in response.content.decode()
    assert conditions(client, token["access_token"]).status_code == 401
    assert not ProxyApp.objects.exists()


def test_an_app_cannot_skip_the_consent_screen_with_approval_prompt_auto(client, ben, grant, app):
    connect(client, ben, app, str(grant.pk))
    client.force_login(ben)
    _, challenge = pkce()
    params = {**authorize_params(app, challenge, scope=SCOPES), "approval_prompt": "auto"}
    page = client.get("/o/authorize/", params)
    assert page.status_code == 200
    assert "Whose record may it see?" in page.content.decode()
