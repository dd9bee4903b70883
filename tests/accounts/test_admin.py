"""Django's admin, where a superuser can link any account to any record, sits behind the
portal's own sign-in (allauth, rate limited) and second factor, and is off in production
unless ADMIN_ENABLED says otherwise."""

import importlib

import pytest
from django.urls import clear_url_caches

from accounts.models import PatientLink, User
from tests.personas import PASSWORD, UserFactory
from tests.test_settings import PRODUCTION, run_with

pytestmark = pytest.mark.django_db


def remount(settings, enabled: bool) -> None:
    """config.urls as it is built with ADMIN_ENABLED set so."""
    import config.urls

    settings.ADMIN_ENABLED = enabled
    importlib.reload(config.urls)
    clear_url_caches()


@pytest.fixture
def admin_on(settings):
    remount(settings, True)
    yield
    remount(settings, True)  # as the tests run (DEBUG on)


@pytest.fixture
def admin_off(settings):
    remount(settings, False)
    yield
    remount(settings, True)


@pytest.fixture
def superuser() -> User:
    return UserFactory(email="root@example.com", is_staff=True, is_superuser=True, verified_email=True)


def test_with_the_admin_on_a_superuser_without_a_second_factor_gets_no_admin_page(
    client, admin_on, superuser
):
    client.force_login(superuser)
    for url in ("/admin/", "/admin/accounts/patientlink/", "/admin/accounts/patientlink/add/"):
        response = client.get(url, follow=True)
        # To the authenticator set-up (which asks for the password again first).
        assert "/accounts/2fa/totp/activate/" in [where for where, _ in response.redirect_chain], url
        assert b"administration" not in response.content
    assert client.post("/admin/accounts/patientlink/add/", {"user": superuser.pk}).status_code == 302
    assert not PatientLink.objects.exists()


def test_with_a_second_factor_the_superuser_gets_the_admin(client, admin_on, superuser, with_totp):
    client.force_login(with_totp(superuser))
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/accounts/patientlink/").status_code == 200


def test_the_admin_login_takes_no_password_and_sends_everyone_to_the_portals_sign_in(
    client, admin_on, superuser, with_totp
):
    with_totp(superuser)
    response = client.post("/admin/login/?next=/admin/", {"username": superuser.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/"
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/", follow=True).redirect_chain[-1][0] == "/accounts/login/?next=/admin/"


def test_the_admin_does_not_exist_for_signed_in_users_who_are_not_staff(client, admin_on, ben):
    client.force_login(ben)
    assert client.get("/admin/", follow=True).status_code == 404


def test_with_the_admin_off_its_addresses_do_not_exist(client, admin_off, superuser, with_totp):
    client.force_login(with_totp(superuser))
    for url in ("/admin/", "/admin/login/", "/admin/accounts/patientlink/"):
        assert client.get(url).status_code == 404, url
    posted = client.post("/admin/login/", {"username": superuser.email, "password": PASSWORD})
    assert posted.status_code == 404


SHOW = (
    "-c",
    "import django; django.setup(); from django.conf import settings; print(settings.ADMIN_ENABLED)",
)


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        pytest.param({"DEBUG": "true"}, "True", id="on-with-debug"),
        pytest.param(PRODUCTION, "False", id="off-in-production"),
        pytest.param({**PRODUCTION, "ADMIN_ENABLED": "yes"}, "True", id="on-when-asked"),
    ],
)
def test_the_admin_is_on_with_debug_and_off_in_production_unless_asked(env, shown):
    result = run_with(env, *SHOW)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == shown


def test_a_wrong_admin_enabled_stops_the_settings_naming_it():
    result = run_with({"DEBUG": "true", "ADMIN_ENABLED": "perhaps"})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "ADMIN_ENABLED" in result.stderr
