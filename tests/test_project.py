"""The project as a whole: migrations match the models, and the pages every visitor
meets first render in the NHS.UK design system."""

from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command

pytestmark = pytest.mark.django_db

NHSUK_CSS = "/static/nhsuk/nhsuk-frontend.min.css"
NHSUK_JS = "/static/nhsuk/nhsuk-frontend.min.js"


@pytest.fixture
def alice(django_user_model):
    user = django_user_model.objects.create_user(email="alice@example.com", password="correct-horse-battery")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def test_the_models_have_no_unwritten_migrations():
    out = StringIO()
    # --check exits (SystemExit) when a migration is missing; reaching the assert means none is.
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    assert "No changes detected" in out.getvalue()


def test_the_home_page_invites_an_anonymous_visitor_to_sign_in(client):
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Sign in" in page
    assert "Create an account" in page
    assert f'href="{NHSUK_CSS}"' in page
    assert NHSUK_JS in page
    assert 'class="nhsuk-skip-link"' in page
    assert 'id="maincontent"' in page
    assert "Patient Record Portal" in page


def test_the_home_page_shows_a_signed_in_user_their_email_and_sign_out(client, alice):
    client.force_login(alice)
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "alice@example.com" in page
    assert "Sign out" in page
    assert "Create an account" not in page


def test_the_nhsuk_stylesheet_is_served(client, settings):
    # Tests run with DEBUG off, so WhiteNoise is told to look where `runserver` would.
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    response = client.get(NHSUK_CSS)
    assert response.status_code == 200
    assert b".nhsuk-header" in b"".join(response.streaming_content)


def test_the_icons_the_stylesheet_asks_for_are_found(client):
    response = client.get("/assets/images/nhsuk-icon-cross.svg")
    assert response.status_code == 301
    assert response["Location"] == "/static/nhsuk/assets/images/nhsuk-icon-cross.svg"


def test_the_login_page_uses_the_nhsuk_form_styles(client):
    response = client.get("/accounts/login/")
    page = response.content.decode()
    assert response.status_code == 200
    for css_class in ("nhsuk-form-group", "nhsuk-label", "nhsuk-input", "nhsuk-button", "nhsuk-header"):
        assert css_class in page
    assert "nhsuk-error-summary" not in page


def test_a_wrong_password_shows_an_error_summary_linked_to_the_field(client, alice):
    response = client.post("/accounts/login/", {"login": alice.email, "password": "not-the-password"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "nhsuk-error-summary" in page
    assert "There is a problem" in page
    assert 'href="#id_login"' in page
    assert "<title>Error: Sign in" in page
    assert "_auth_user_id" not in client.session


def test_the_right_password_signs_in_and_lands_on_home(client, alice):
    response = client.post("/accounts/login/", {"login": alice.email, "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_signup_errors_mark_the_fields_in_error(client):
    response = client.post(
        "/accounts/signup/", {"email": "not-an-email", "password1": "short", "password2": "different"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "nhsuk-error-summary" in page
    assert "nhsuk-form-group--error" in page
    assert "nhsuk-input--error" in page
    assert 'href="#id_email"' in page


@pytest.mark.parametrize(
    "url",
    [
        "/accounts/signup/",
        "/accounts/password/reset/",
        "/accounts/password/reset/done/",
        "/accounts/confirm-email/",
        "/accounts/confirm-email/not-a-key/",
        "/accounts/password/reset/key/1-not-a-key/",
    ],
)
def test_every_account_page_renders_inside_the_portal_layout(client, url):
    response = client.get(url, follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert f'href="{NHSUK_CSS}"' in page
    assert "nhsuk-heading-l" in page
    assert 'class="nhsuk-footer"' in page


def test_the_sign_out_page_renders_for_a_signed_in_user(client, alice):
    client.force_login(alice)
    response = client.get("/accounts/logout/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "nhsuk-button" in page
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_healthz_answers_ok_when_the_database_does(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
