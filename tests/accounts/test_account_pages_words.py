"""The account pages a signed-in person reaches read as the rest of the portal does: their
email addresses, choosing a first password, and their security keys and passkeys, in
plain British English and NHS.UK markup, not allauth's words. The forms still do what
allauth expects of them."""

import hashlib
import os
import re

import pytest
from allauth.account import app_settings as account_settings
from allauth.account.models import EmailAddress
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.webauthn.internal.auth import WebAuthn
from cryptography.hazmat.primitives.asymmetric import ec
from django.core import mail
from fido2.cose import ES256
from fido2.utils import websafe_encode
from fido2.webauthn import (
    Aaguid,
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)

from accounts.models import User
from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db

# allauth's own words for these pages; none may show through.
ALLAUTHS_WORDS = (
    "E-mail",
    "Email Addresses",
    "Make Primary",
    "Re-send Verification",
    "Add Email",
    "Unverified",
    "Verified",
    "Set Password",
    "Security Key",  # also "Security Keys", "Add Security Key", "Edit Security Key", "Remove Security Key"
    "Unspecified",
    "Passwordless",
    "No security keys have been added",
    "This functionality requires JavaScript",
    "Confirm Access",
)
PASSKEY_MID_SENTENCE = re.compile(r"[a-z,] Passkey")
SUCCESS = "nhsuk-notification-banner--success"
OTHER = "bens.other@example.com"


def in_portal_words(page: str) -> str:
    """The page, after checking none of allauth's words and one h1 only."""
    found = [words for words in ALLAUTHS_WORDS if words in page]
    assert not found, found
    assert not PASSKEY_MID_SENTENCE.search(page)
    assert page.count("<h1") == 1
    assert "nhsuk-header" in page
    return page


def read(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return in_portal_words(response.content.decode())


def confirm_it_is_me(client) -> None:
    """allauth asks for the password again before a change to how someone signs in."""
    response = client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert response.status_code == 302


def security_key(user: User, name: str = "Blue key") -> Authenticator:
    """A security key stored as allauth stores one added through the browser: a real
    registration response (a new P-256 key, no attestation), which allauth reads back
    whenever it asks for a key."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    credential_id = os.urandom(16)
    attested = AttestedCredentialData.create(
        Aaguid.NONE, credential_id, ES256.from_cryptography_key(private_key.public_key())
    )
    data = AuthenticatorData.create(
        hashlib.sha256(b"testserver").digest(),
        AuthenticatorData.FLAG.UP | AuthenticatorData.FLAG.AT,
        0,
        attested,
    )
    client_data = CollectedClientData.create(
        CollectedClientData.TYPE.CREATE, os.urandom(16), "https://testserver"
    )
    credential = {
        "type": "public-key",
        "id": websafe_encode(credential_id),
        "rawId": websafe_encode(credential_id),
        "response": {
            "clientDataJSON": websafe_encode(client_data),
            "attestationObject": websafe_encode(AttestationObject.create("none", data, {})),
        },
        "clientExtensionResults": {"credProps": {"rk": False}},
    }
    return WebAuthn.add(user, name, credential).instance


@pytest.fixture
def signed_in(client, ben):
    client.force_login(ben)
    return client


@pytest.fixture
def other_address(ben):
    def add(*, verified: bool) -> EmailAddress:
        return EmailAddress.objects.create(user=ben, email=OTHER, verified=verified, primary=False)

    return add


# Email addresses


def test_the_email_addresses_page_is_in_the_portals_words(signed_in, other_address):
    other_address(verified=False)
    page = read(signed_in, "/accounts/email/")
    assert "<title>Your email addresses" in page
    assert '<h1 class="nhsuk-heading-l">Your email addresses</h1>' in page
    for words in (
        "Make this your main address",
        "Send the confirmation email again",
        ">Remove</button>",
        "Add an email address",
        "Main address",
        "Not confirmed yet",
    ):
        assert words in page, words


def test_the_email_addresses_form_keeps_the_names_allauth_reads(signed_in, other_address):
    other_address(verified=False)
    page = read(signed_in, "/accounts/email/")
    assert 'action="/accounts/email/"' in page
    assert "csrfmiddlewaretoken" in page
    for name in ("email", "action_primary", "action_send", "action_remove", "action_add"):
        assert f'name="{name}"' in page, name
    assert 'value="ben@example.com" aria-describedby="email_radio_0-hint" checked' in page
    # allauth's script asks before removing; the question is ours.
    assert 'data-allauth-onload="allauth.account.forms.manageEmailForm"' in page
    assert "Remove the chosen email address from your account?" in page
    assert "Do you really want" not in page


def test_making_a_confirmed_address_the_main_one(signed_in, ben, other_address):
    other_address(verified=True)
    response = signed_in.post("/accounts/email/", {"email": OTHER, "action_primary": ""}, follow=True)
    page = in_portal_words(response.content.decode())
    assert EmailAddress.objects.get(user=ben, primary=True).email == OTHER
    assert SUCCESS in page
    assert "Your main email address is changed." in page


def test_an_unconfirmed_address_cannot_be_the_main_one_and_the_page_says_why(signed_in, ben, other_address):
    other_address(verified=False)
    response = signed_in.post("/accounts/email/", {"email": OTHER, "action_primary": ""}, follow=True)
    page = response.content.decode()
    assert EmailAddress.objects.get(user=ben, primary=True).email == "ben@example.com"
    assert "Only a confirmed address can be your main address." in in_portal_words(page)


def test_sending_the_confirmation_email_again(signed_in, other_address):
    other_address(verified=False)
    response = signed_in.post("/accounts/email/", {"email": OTHER, "action_send": ""}, follow=True)
    page = in_portal_words(response.content.decode())
    (sent,) = mail.outbox
    assert sent.to == [OTHER]
    assert "/accounts/confirm-email/" in sent.body
    assert f"We have sent a confirmation link to {OTHER}." in page


def test_removing_another_address(signed_in, ben, other_address):
    other_address(verified=True)
    response = signed_in.post("/accounts/email/", {"email": OTHER, "action_remove": ""}, follow=True)
    page = in_portal_words(response.content.decode())
    assert not EmailAddress.objects.filter(user=ben, email=OTHER).exists()
    assert SUCCESS in page
    assert f"{OTHER} is removed from your account." in page


def test_the_main_address_cannot_be_removed_and_the_page_says_why(signed_in, ben, other_address):
    other_address(verified=True)
    page = signed_in.post(
        "/accounts/email/", {"email": "ben@example.com", "action_remove": ""}, follow=True
    ).content.decode()
    assert EmailAddress.objects.filter(user=ben, email="ben@example.com").exists()
    assert "is your main address, so it cannot be removed" in in_portal_words(page)


def test_adding_an_address_sends_a_confirmation_link_to_it(signed_in, ben):
    response = signed_in.post("/accounts/email/", {"email": OTHER, "action_add": ""}, follow=True)
    page = in_portal_words(response.content.decode())
    assert EmailAddress.objects.get(user=ben, email=OTHER).verified is False
    (sent,) = mail.outbox
    assert sent.to == [OTHER]
    assert f"We have sent a confirmation link to {OTHER}." in page


def test_a_wrong_address_to_add_is_explained_on_the_same_page(signed_in):
    page = in_portal_words(
        signed_in.post("/accounts/email/", {"email": "not an address", "action_add": ""}).content.decode()
    )
    assert "There is a problem" in page
    assert "nhsuk-input--error" in page


# A first password, for an account made without one


def test_choosing_a_first_password(client, ben):
    ben.set_unusable_password()
    ben.save()
    client.force_login(ben)
    page = read(client, "/accounts/password/set/")
    assert '<h1 class="nhsuk-heading-l">Choose a password</h1>' in page
    assert 'action="/accounts/password/set/"' in page
    assert 'name="password1"' in page
    assert 'name="password2"' in page
    response = client.post(
        "/accounts/password/set/",
        {"password1": "a long new password 42", "password2": "a long new password 42", "action": ""},
    )
    assert response.status_code == 302
    ben.refresh_from_db()
    assert ben.check_password("a long new password 42")


# Security keys and passkeys


def test_the_security_keys_page_with_none_added(signed_in):
    page = read(signed_in, "/accounts/2fa/webauthn/")
    assert '<h1 class="nhsuk-heading-l">Security keys and passkeys</h1>' in page
    assert "You have not added any security keys or passkeys." in page
    assert "Add a security key or passkey" in page


def test_the_security_keys_page_lists_each_key_in_plain_words(signed_in, ben):
    key = security_key(ben)
    page = read(signed_in, "/accounts/2fa/webauthn/")
    assert "Blue key" in page
    assert "Not used yet" in page
    assert f'href="/accounts/2fa/webauthn/keys/{key.pk}/edit/">Change the name' in page
    assert f'href="/accounts/2fa/webauthn/keys/{key.pk}/remove/">Remove' in page


def test_adding_a_security_key_keeps_what_allauths_script_needs(signed_in):
    confirm_it_is_me(signed_in)
    page = read(signed_in, "/accounts/2fa/webauthn/add/")
    assert "Add a security key or passkey" in page
    assert "Name for this key" in page
    assert 'action="/accounts/2fa/webauthn/add/"' in page
    assert "csrfmiddlewaretoken" in page
    assert 'id="mfa_webauthn_add" type="button"' in page
    assert 'name="credential"' in page
    assert 'id="id_credential"' in page
    assert '<script id="js_data" type="application/json">' in page
    assert "creation_options" in page
    assert 'data-allauth-onload="allauth.webauthn.forms.addForm"' in page
    assert '"credential": "id_credential"' in page
    for script in ("mfa/js/webauthn-json", "mfa/js/webauthn.", "account/js/onload."):
        assert script in page, script


def test_renaming_a_security_key(signed_in, ben):
    confirm_it_is_me(signed_in)
    key = security_key(ben)
    url = f"/accounts/2fa/webauthn/keys/{key.pk}/edit/"
    page = read(signed_in, url)
    assert '<h1 class="nhsuk-heading-l">Change the name of a security key</h1>' in page
    assert f'action="{url}"' in page
    assert 'value="Blue key"' in page
    assert signed_in.post(url, {"name": "Work laptop"}).status_code == 302
    key.refresh_from_db()
    assert key.wrap().name == "Work laptop"


def test_removing_a_security_key(signed_in, ben):
    confirm_it_is_me(signed_in)
    key = security_key(ben)
    url = f"/accounts/2fa/webauthn/keys/{key.pk}/remove/"
    page = read(signed_in, url)
    assert '<h1 class="nhsuk-heading-l">Remove Blue key?</h1>' in page
    assert f'action="{url}"' in page
    assert "Keep it" in page
    assert signed_in.post(url).status_code == 302
    assert not Authenticator.objects.filter(pk=key.pk).exists()


def test_confirming_it_is_you_with_a_security_key(signed_in, ben):
    security_key(ben)
    page = read(signed_in, "/accounts/2fa/webauthn/reauthenticate/")
    assert "Confirm it is you" in page
    assert "Use a security key or passkey" in page
    assert 'action="/accounts/2fa/webauthn/reauthenticate/"' in page
    assert 'id="mfa_webauthn_reauthenticate"' in page
    assert 'data-allauth-onload="allauth.webauthn.forms.authenticateForm"' in page
    assert "request_options" in page


def test_the_pages_left_in_allauths_words_are_switched_off():
    """No portal template exists for these, so none may be reachable: changing the
    email address in one step, signing in by emailed code, trusting a browser, and
    signing up with a passkey. Switching one on needs its page written first."""
    assert account_settings.CHANGE_EMAIL is False
    assert account_settings.LOGIN_BY_CODE_ENABLED is False
    assert mfa_settings.TRUST_ENABLED is False
    assert mfa_settings.PASSKEY_SIGNUP_ENABLED is False
