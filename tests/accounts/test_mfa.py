"""Two-factor authentication: secrets sealed at rest, sign-in with a code still works,
wrong passwords and wrong codes are rate limited, and the pages a patient meets when
setting it up render in the portal's layout."""

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.exceptions import ImproperlyConfigured

from accounts.adapters import MFAAdapter
from tests.personas import PASSWORD, TOTP_SECRET, totp_code

pytestmark = pytest.mark.django_db


def test_the_totp_secret_is_not_stored_in_the_clear(ben, with_totp):
    with_totp(ben)
    stored = Authenticator.objects.get(user=ben, type=Authenticator.Type.TOTP).data["secret"]
    assert stored != TOTP_SECRET
    assert TOTP_SECRET not in stored
    assert MFAAdapter().decrypt(stored) == TOTP_SECRET


def test_the_recovery_code_seed_is_not_stored_in_the_clear(ben, with_totp):
    with_totp(ben)
    codes = RecoveryCodes.activate(ben)
    stored = Authenticator.objects.get(user=ben, type=Authenticator.Type.RECOVERY_CODES).data["seed"]
    assert stored.startswith("gAAAAA")
    assert codes.validate_code(codes.get_unused_codes()[0])


def test_each_encryption_is_different_but_decrypts_alike():
    adapter = MFAAdapter()
    first, second = adapter.encrypt("secret"), adapter.encrypt("secret")
    assert first != second
    assert adapter.decrypt(first) == adapter.decrypt(second) == "secret"


def test_the_key_comes_from_mfa_encryption_key_and_old_keys_still_decrypt(settings):
    adapter = MFAAdapter()
    settings.MFA_ENCRYPTION_KEY = ["old-key-" + "x" * 40]
    sealed_with_old = adapter.encrypt("secret")
    settings.MFA_ENCRYPTION_KEY = ["new-key-" + "y" * 40, "old-key-" + "x" * 40]
    assert adapter.decrypt(sealed_with_old) == "secret"
    settings.MFA_ENCRYPTION_KEY = ["new-key-" + "y" * 40]
    with pytest.raises(ImproperlyConfigured, match="MFA_ENCRYPTION_KEY"):
        adapter.decrypt(sealed_with_old)


def test_without_mfa_encryption_key_the_key_is_derived_from_secret_key(settings):
    settings.MFA_ENCRYPTION_KEY = []
    sealed = MFAAdapter().encrypt("secret")
    settings.SECRET_KEY = "another-secret-key-" + "z" * 40
    with pytest.raises(ImproperlyConfigured):
        MFAAdapter().decrypt(sealed)


def test_a_secret_stored_before_encryption_still_reads():
    assert MFAAdapter().decrypt(TOTP_SECRET) == TOTP_SECRET


def test_signing_in_with_an_authenticator_code_still_works(client, ben, with_totp):
    with_totp(ben)
    response = client.post("/accounts/login/", {"login": ben.email, "password": PASSWORD})
    assert response["Location"] == "/accounts/2fa/authenticate/"
    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code()})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(ben.pk)


# The middle of one 30-second authenticator step, so that no step ends during a test.
MID_STEP = 1_800_000_015


@pytest.mark.parametrize(("steps", "signed_in"), [(-1, True), (1, True), (-2, False), (2, False)])
def test_a_code_from_the_next_or_last_30_seconds_works_but_no_older_or_newer(
    client, ben, with_totp, steps, signed_in
):
    import time_machine

    with_totp(ben)
    with time_machine.travel(MID_STEP, tick=False):
        code = format_hotp_value(hotp_value(TOTP_SECRET, MID_STEP // 30 + steps))
        client.post("/accounts/login/", {"login": ben.email, "password": PASSWORD})
        client.post("/accounts/2fa/authenticate/", {"code": code})
        assert ("_auth_user_id" in client.session) is signed_in


def test_a_code_works_once_only(client, ben, with_totp):
    with_totp(ben)
    code = totp_code()
    client.post("/accounts/login/", {"login": ben.email, "password": PASSWORD})
    client.post("/accounts/2fa/authenticate/", {"code": code})
    assert client.session["_auth_user_id"] == str(ben.pk)
    client.logout()
    client.post("/accounts/login/", {"login": ben.email, "password": PASSWORD})
    client.post("/accounts/2fa/authenticate/", {"code": code})
    assert "_auth_user_id" not in client.session


def test_a_wrong_code_does_not_sign_in(client, ben, with_totp):
    with_totp(ben)
    client.post("/accounts/login/", {"login": ben.email, "password": PASSWORD})
    response = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_wrong_passwords_are_rate_limited_without_an_error_page(client, ben):
    for _ in range(5):
        page = client.post("/accounts/login/", {"login": ben.email, "password": "wrong-password"})
        assert page.status_code == 200
        assert "Too many failed login attempts" not in page.content.decode()
    page = client.post("/accounts/login/", {"login": ben.email, "password": "wrong-password"})
    assert page.status_code == 200
    assert "Too many failed login attempts" in page.content.decode()
    assert "nhsuk-error-summary" in page.content.decode()
    # Even the right password is refused until the limit lapses.
    page = client.post("/accounts/login/", {"login": ben.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session


def test_wrong_authenticator_codes_are_rate_limited(client, ben, with_totp):
    with_totp(ben)
    client.post("/accounts/login/", {"login": ben.email, "password": PASSWORD})
    for _ in range(5):
        page = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
        assert "Too many failed login attempts" not in page.content.decode()
    page = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert page.status_code == 200
    assert "Too many failed login attempts" in page.content.decode()
    page = client.post("/accounts/2fa/authenticate/", {"code": totp_code()})
    assert "_auth_user_id" not in client.session


def test_webauthn_is_offered_alongside_an_authenticator_app(settings):
    assert settings.MFA_SUPPORTED_TYPES == ["totp", "recovery_codes", "webauthn"]


@pytest.mark.parametrize(
    "url",
    ["/accounts/2fa/", "/accounts/2fa/webauthn/", "/accounts/reauthenticate/"],
)
def test_the_two_factor_pages_render_in_the_portal_layout(client, ben, url):
    client.force_login(ben)
    response = client.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "nhsuk-header" in page
    assert 'id="maincontent"' in page
    assert "nhsuk-heading-l" in page


def test_the_setup_pages_render_in_the_portal_layout_after_reauthentication(client, ben, with_totp):
    client.force_login(ben)
    # allauth asks for the password again before any change to two-factor settings.
    assert client.get("/accounts/2fa/totp/activate/")["Location"].startswith("/accounts/reauthenticate/")
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    page = client.get("/accounts/2fa/totp/activate/").content.decode()
    assert "nhsuk-header" in page
    assert "<svg" in page  # the QR code
    assert 'name="code"' in page
    with_totp(ben)
    client.post("/accounts/2fa/recovery-codes/generate/", {})
    for url in (
        "/accounts/2fa/recovery-codes/",
        "/accounts/2fa/totp/deactivate/",
        "/accounts/2fa/webauthn/add/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "nhsuk-header" in response.content.decode(), url


def test_the_two_factor_page_speaks_plainly_and_says_what_is_on(client, ben, with_totp):
    client.force_login(ben)
    page = client.get("/accounts/2fa/").content.decode()
    assert "It is optional for patients" in page
    assert "Set up an authenticator app" in page
    with_totp(ben)
    page = client.get("/accounts/2fa/").content.decode()
    assert "Turn off the authenticator app" in page
    assert "Make recovery codes" in page
