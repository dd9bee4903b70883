"""A patient connects an app: the app sends them to the portal, they sign in, read on the
consent screen what the app could see, allow it, and the app gets its code; then they
see the app among "Apps that can see my record" and stop it. Every page passes
axe-core's WCAG 2.2 AA and best-practice rules."""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from oauth2_provider.models import AccessToken, Application
from playwright.sync_api import expect

from accounts.models import PatientLink, Role, User
from phr.models import Patient

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-and-unguessable-phrase"
REDIRECT = "https://app.example/callback"


@pytest.fixture
def sam(db):
    record = Patient.objects.create(nhs_number="9434765919", family_name="Jones", given_names="Sam")
    user = User.objects.create_user("sam@example.com", PASSWORD, role=Role.PATIENT)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    PatientLink.objects.create(user=user, patient=record, method="demo")
    return user


def test_a_patient_allows_an_app_and_later_stops_it(
    live_server, browser_page, sam, axe_violations, screenshot
):
    app = Application.objects.create(
        name="My Health App",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=REDIRECT,
        client_secret="",
    )
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": REDIRECT,
            "scope": "launch/patient patient/*.read offline_access",
            "state": "s1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    page = browser_page
    arrived = []

    def the_app(route):
        arrived.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>App</title>")

    page.route("https://app.example/**", the_app)
    page.goto(f"{live_server.url}/o/authorize/?{query}")
    page.wait_for_url("**/accounts/login/**")
    page.get_by_label("Email").fill(sam.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/o/authorize/**")

    expect(page.get_by_role("heading", level=1)).to_have_text("Allow My Health App to see your record?")
    expect(page.locator("#may-see")).to_contain_text("see your whole record")
    screenshot("oauth-consent")
    assert axe_violations() == []

    page.get_by_role("button", name="Allow", exact=True).click()
    page.wait_for_url("https://app.example/**")
    code = parse_qs(urlparse(arrived[-1]).query)["code"][0]
    token = Client().post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": app.client_id,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.content

    page.goto(f"{live_server.url}/apps/")
    expect(page.locator("#connected-apps")).to_contain_text("My Health App")
    assert axe_violations() == []
    page.get_by_role("button", name="Stop this app seeing my record").click()
    expect(page.locator("#no-apps")).to_be_visible()
    assert axe_violations() == []
    assert not AccessToken.objects.filter(user=sam).exists()
