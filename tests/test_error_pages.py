"""What nobody's view answered (config.errors): a page in the portal's style for people,
{"detail": ...} under /api/ and an OperationOutcome under /fhir/ for machines; never a
traceback, never what went wrong inside.

This module is also the URLconf its tests run under: the portal's routes, with views
that fail on purpose in front of them."""

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import path
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny

from config import urls as portal_urls
from config.errors import server_error
from tests.test_headers import assert_no_inline_code, assert_strict

# Said by the failing views; no answer may repeat it.
INSIDE = "the-secret-inside-detail"
FAILURES = {
    "boom": RuntimeError(INSIDE),
    "refused": PermissionDenied(INSIDE),
    "odd": SuspiciousOperation(INSIDE),
}


def failing(request, failure: str) -> HttpResponse:
    raise FAILURES[failure]


@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def failing_api(request, failure: str):
    raise FAILURES[failure]


handler400 = portal_urls.handler400
handler403 = portal_urls.handler403
handler404 = portal_urls.handler404
handler500 = portal_urls.handler500
urlpatterns = [
    path("page/<str:failure>", failing),
    path("api/v1/test/<str:failure>/", failing_api),
    path("api/plain/<str:failure>", failing),
    path("fhir/Test/<str:failure>", failing),
    *portal_urls.urlpatterns,
]

STATUS = {"boom": 500, "refused": 403, "odd": 400}
PORTAL_HEADER = ('class="nhsuk-header"', "Patient Record Portal", "/static/nhsuk/nhsuk-frontend.min.css")
PAGE_HEADINGS = {
    400: "Sorry, there is a problem with your request",
    403: "You cannot see this page",
    404: "Page not found",
    405: "Sorry, this page cannot do that",
    500: "Sorry, there is a problem with the service",
}


@pytest.fixture
def production(settings):
    """Errors as production shows them: no debug page, and the test client answers what
    the handlers answer instead of raising."""
    settings.DEBUG = False
    return Client(raise_request_exception=False)


@pytest.fixture
def failing_views(settings):
    """The portal's routes and handlers, with this module's failing views in front."""
    settings.ROOT_URLCONF = __name__


def assert_a_portal_page(response, status: int) -> str:
    page = response.content.decode()
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert PAGE_HEADINGS[status] in page
    for mark in PORTAL_HEADER:
        assert mark in page
    assert INSIDE not in page
    assert "Traceback" not in page
    assert_strict(response)
    assert_no_inline_code(response)
    return page


# --- Pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["boom", "refused", "odd"])
def test_a_page_that_fails_answers_a_page_in_the_portals_style(production, failing_views, db, failure):
    assert_a_portal_page(production.get(f"/page/{failure}"), STATUS[failure])


def test_an_unknown_address_answers_the_portals_page_not_found(production, db):
    page = assert_a_portal_page(production.get("/no/such/page"), 404)
    assert 'href="/"' in page


@pytest.mark.parametrize(("method", "address"), [("delete", "/healthz"), ("put", "/")])
def test_a_method_a_page_does_not_take_answers_the_portals_page(production, db, method, address):
    response = getattr(production, method)(address)
    assert_a_portal_page(response, 405)
    assert response["Allow"]


def test_a_nul_character_in_a_page_address_answers_the_portals_page_naming_it(production, db):
    page = assert_a_portal_page(production.get("/record/?q=%00"), 400)
    assert "The parameter &#x27;q&#x27; holds a NUL character" in page


def test_the_page_not_found_knows_who_is_signed_in(production, django_user_model):
    user = django_user_model.objects.create_user(email="ann@example.com", password="correct-horse-battery")
    production.force_login(user)
    page = assert_a_portal_page(production.get("/no/such/page"), 404)
    assert "ann@example.com" in page
    assert "Sign out" in page


def test_the_500_page_needs_neither_the_database_nor_the_request():
    """No database here: pytest-django refuses every query of a test without ``db``, and
    a query while drawing the page would leave only the plain-text fallback."""
    response = server_error(RequestFactory().get("/record/"))
    page = response.content.decode()
    assert response.status_code == 500
    assert PAGE_HEADINGS[500] in page
    for mark in PORTAL_HEADER:
        assert mark in page
    assert "Sign in" not in page  # who is signed in is unknown: the page does not guess


def test_a_failing_page_is_answered_without_the_database(production, failing_views):
    assert_a_portal_page(production.get("/page/boom"), 500)


def test_the_500_page_says_something_plain_when_it_cannot_be_drawn(settings, tmp_path):
    (tmp_path / "500.html").write_text("{% url 'no-such-route' %}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/plain")
    assert b"Sorry, there is a problem with the service" in response.content


def test_a_form_refused_by_the_csrf_check_explains_what_to_do(settings):
    settings.DEBUG = False
    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"login": "a@example.com"})
    page = response.content.decode()
    assert response.status_code == 403
    assert "Sorry, your form could not be sent" in page
    assert "reload the page" in page
    for mark in PORTAL_HEADER:
        assert mark in page
    assert "CSRF" not in page
    assert_no_inline_code(response)


# --- The JSON API -------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["boom", "refused", "odd"])
@pytest.mark.parametrize("prefix", ["/api/v1/test/{}/", "/api/plain/{}"])
def test_the_json_api_answers_its_errors_in_json(production, failing_views, db, prefix, failure):
    """Whether DRF's view or a plain Django view failed: DRF answers what it knows (a
    PermissionDenied, with the words its view chose to say), the handlers the rest, in the
    same shape and without a word from inside."""
    response = production.get(prefix.format(failure))
    status = STATUS[failure]
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail"}
    if not (prefix.startswith("/api/v1/") and failure == "refused"):
        assert INSIDE not in response.content.decode()
    if status == 500:
        assert body["detail"] == "A server error occurred."


@pytest.mark.parametrize("address", ["/api/v1/no-such-thing/", "/api/nothing", "/api/v1/corrections/x/y/"])
def test_an_unknown_api_address_answers_json(production, db, address):
    response = production.get(address)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_method_the_api_does_not_take_answers_json(production, failing_views, db):
    response = production.put("/api/v1/test/boom/")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"detail"}


# --- FHIR ---------------------------------------------------------------------------------

FHIR_CODES = {500: "exception", 403: "forbidden", 400: "invalid"}


@pytest.mark.parametrize("failure", ["boom", "refused", "odd"])
def test_fhir_answers_its_errors_as_operation_outcomes(production, failing_views, db, failure):
    response = production.get(f"/fhir/Test/{failure}")
    status = STATUS[failure]
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert [issue["code"] for issue in body["issue"]] == [FHIR_CODES[status]]
    assert INSIDE not in response.content.decode()
