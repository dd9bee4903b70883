"""allauth's pages and emails in the portal's words: the second step of signing in asks
for the code from the authenticator app, no "Remember me", no "Sign in" in the header
halfway through signing in, confirmations as success, emails naming the portal."""

import re

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.conf import settings
from django.core import mail

from tests.personas import PASSWORD, totp_code

pytestmark = pytest.mark.django_db

IMPORTANT_BANNER = ">Important</h2>"  # base.html's banner for a message that is not a success
HEADER_SIGN_IN = re.compile(r'<a class="nhsuk-header__account-link" href="/accounts/login/">Sign in</a>')


def allauth_defaults_absent(text: str) -> None:
    for default in ("Hello from", "Thank you for using", "example.com!", "[127.0.0.1", "[testserver]"):
        assert default not in text


def test_the_sign_in_page_has_no_remember_me(client):
    page = client.get("/accounts/login/").content.decode()
    assert "Remember" not in page
    assert 'name="remember"' not in page


def test_the_second_step_asks_for_the_authenticator_code_in_plain_words(client, ben, with_totp):
    with_totp(ben)
    client.post("/accounts/login/", {"login": ben.email, "password": PASSWORD})
    page = client.get("/accounts/2fa/authenticate/").content.decode()
    assert '<h1 class="nhsuk-heading-l">Enter the code from your authenticator app</h1>' in page
    assert "<title>Enter the code from your authenticator app" in page
    assert "Two-Factor Authentication" not in page
    assert "Sign In" not in page
    assert not HEADER_SIGN_IN.search(page)  # halfway through signing in
    assert 'name="code"' in page


def test_a_wrong_code_is_explained_on_the_same_page(client, ben, with_totp):
    with_totp(ben)
    client.post("/accounts/login/", {"login": ben.email, "password": PASSWORD})
    page = client.post("/accounts/2fa/authenticate/", {"code": "000000"}).content.decode()
    assert "nhsuk-error-message" in page
    assert "Enter the code from your authenticator app" in page


def test_the_header_still_offers_sign_in_elsewhere(client):
    assert HEADER_SIGN_IN.search(client.get("/").content.decode())


def test_signing_up_sends_a_confirmation_email_in_the_portals_words_and_no_important_banner(client):
    response = client.post(
        "/accounts/signup/",
        {
            "email": "new.person@example.com",
            "password1": "a long new password 42",
            "password2": "a long new password 42",
        },
        follow=True,
    )
    page = response.content.decode()
    assert "Confirm your email address" in page
    assert IMPORTANT_BANNER not in page
    (sent,) = mail.outbox
    assert sent.subject == "Patient Record Portal: Confirm your email address"
    assert "create an account with the Patient Record Portal" in sent.body
    assert "/accounts/confirm-email/" in sent.body
    allauth_defaults_absent(sent.subject + sent.body)


def test_confirming_the_email_address_shows_success(client):
    client.post(
        "/accounts/signup/",
        {
            "email": "new.person@example.com",
            "password1": "a long new password 42",
            "password2": "a long new password 42",
        },
    )
    confirm = re.escape(settings.PORTAL_URL) + r"(/accounts/confirm-email/\S+)"
    link = re.search(confirm, mail.outbox[0].body).group(1)
    page = client.post(link, follow=True).content.decode()
    assert "nhsuk-notification-banner--success" in page
    assert "Your email address is confirmed." in page
    assert IMPORTANT_BANNER not in page


def test_the_password_reset_email_names_the_portal_and_links_to_it(client, ben):
    client.post("/accounts/password/reset/", {"email": ben.email})
    (sent,) = mail.outbox
    assert sent.subject == "Patient Record Portal: Reset your password"
    assert "your Patient Record Portal account" in sent.body
    assert "/accounts/password/reset/key/" in sent.body
    allauth_defaults_absent(sent.subject + sent.body)


@pytest.mark.parametrize("known", [True, False])
def test_account_emails_link_to_the_portals_own_address_not_the_requests_host(client, ben, settings, known):
    """A reset asked through an internal host name (or a Host header someone chose)
    still links to the portal's published address."""
    settings.PORTAL_URL = "https://portal.example.nhs.uk"
    settings.ALLOWED_HOSTS = ["testserver", "internal-node-3"]
    client.post(
        "/accounts/password/reset/",
        {"email": ben.email if known else "nobody@example.com"},
        HTTP_HOST="internal-node-3",
    )
    (sent,) = mail.outbox
    links = re.findall(r"https?://\S+", sent.body)
    assert links
    assert all(link.startswith("https://portal.example.nhs.uk/accounts/") for link in links), links
    assert "internal-node-3" not in sent.body


def test_a_reset_for_an_unknown_address_is_in_the_portals_words(client, db):
    client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    (sent,) = mail.outbox
    assert sent.subject == "Patient Record Portal: Reset your password"
    assert "there is no account with it" in sent.body
    allauth_defaults_absent(sent.subject + sent.body)


def test_a_changed_password_is_a_success(client):
    page = client.get("/accounts/password/reset/key/done/").content.decode()
    assert "nhsuk-notification-banner--success" in page
    assert "Your password is changed" in page
    assert IMPORTANT_BANNER not in page


def reauthenticated(client, user, page: str) -> str:
    """Open a page that asks for the password again first; answer, then read the page."""
    asked = client.get(page, follow=True)
    words = asked.content.decode()
    assert "Confirm it is you" in words
    assert "Confirm Access" not in words
    form = asked.redirect_chain[-1][0]
    if "/2fa/" in form:
        client.post(form, {"code": totp_code()})
    else:
        client.post(form, {"password": PASSWORD})
    response = client.get(page)
    assert response.status_code == 200
    return response.content.decode()


def test_the_recovery_codes_page_explains_itself(client, ben, with_totp):
    with_totp(ben)
    RecoveryCodes.activate(ben)
    client.force_login(ben)
    page = reauthenticated(client, ben, "/accounts/2fa/recovery-codes/")
    assert "Your recovery codes" in page
    assert "in place of the code from your authenticator app" in page
    assert "Recovery Codes" not in page


def test_setting_up_an_authenticator_app_is_in_plain_steps(client, ben):
    client.force_login(ben)
    page = reauthenticated(client, ben, "/accounts/2fa/totp/activate/")
    assert "Set up an authenticator app" in page
    assert "Activate Authenticator App" not in page
    assert "Code from your authenticator app" in page
