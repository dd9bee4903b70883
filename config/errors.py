"""Error answers in the language of the channel asked, for whatever no view answered
itself: an address that matches no route, or an exception that escaped a view or a
middleware.

The path decides: under /fhir/ an OperationOutcome (built by api.fhir.bundle, as every
FHIR view's errors are), under /api/ the JSON API's {"detail": ...} with DRF's own words,
anywhere else a page in the portal's style. None of them shows a traceback or what went
wrong inside.

These live in config, not web: they answer for pages and API alike, and web and api do
not import each other (pyproject.toml's layers).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from rest_framework import exceptions

from api.fhir.bundle import not_found, outcome

logger = logging.getLogger(__name__)

FHIR, API, PAGE = "fhir", "api", "page"

# Each status: the JSON API's words (DRF's, as its own views answer), and the FHIR issue
# code and words (a 500 as api.fhir.common.fhir_view words it).
ANSWERS = {
    400: (exceptions.ParseError.default_detail, "invalid", "The request could not be read"),
    403: (exceptions.PermissionDenied.default_detail, "forbidden", "Not permitted"),
    404: (exceptions.NotFound.default_detail, "not-found", "Not found"),
    500: (exceptions.APIException.default_detail, "exception", "The server could not answer this request"),
}
# Said when even the styled 500 page cannot be drawn (a static file missing from the
# manifest, a broken template): plain words, still no detail.
PLAIN_500 = "Sorry, there is a problem with the service. Try again later.\n"


def channel(path: str) -> str:
    """Who is asking, by the address asked: a FHIR client, a JSON API client or a person."""
    if path.startswith("/fhir/"):
        return FHIR
    if path.startswith("/api/"):
        return API
    return PAGE


def machine_answer(path: str, status: int) -> HttpResponse | None:
    """The error as the FHIR or JSON API client expects it; None for a page."""
    detail, code, diagnostics = ANSWERS[status]
    asked = channel(path)
    if asked == FHIR:
        return not_found() if status == 404 else outcome(status, diagnostics, code=code)
    if asked == API:
        return JsonResponse({"detail": str(detail)}, status=status)
    return None


def _page_or_machine(request: HttpRequest, status: int) -> HttpResponse:
    """A page drawn with the request (so the header knows who is signed in); if drawing it
    fails, Django answers with server_error instead."""
    answer = machine_answer(request.path_info, status)
    if answer is not None:
        return answer
    return render(request, f"{status}.html", status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page_or_machine(request, 400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page_or_machine(request, 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page_or_machine(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    """Drawn without the request: a 500 may come from the database being down, and the
    header's signed-in user, session and inbox count all need it."""
    answer = machine_answer(request.path_info, 500)
    if answer is not None:
        return answer
    try:
        body = loader.get_template("500.html").render()
    except Exception:  # the last answer there is: whatever broke, say something plain
        logger.exception("The 500 page could not be drawn")
        return HttpResponseServerError(PLAIN_500, content_type="text/plain; charset=utf-8")
    return HttpResponseServerError(body)


class EmptyErrorMiddleware:
    """An error a view answered with no body (a 405 from require_http_methods or from a
    DRF view's method check) gets the channel's answer: a page, JSON or an
    OperationOutcome, keeping its Allow header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or response.streaming or response.content:
            return response
        asked = channel(request.path_info)
        if asked == FHIR:
            answer = outcome(405, f"{request.method} is not supported here", code="not-supported")
        elif asked == API:
            answer = JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
        else:
            answer = render(request, "405.html", status=405)
        if response.has_header("Allow"):
            answer["Allow"] = response["Allow"]
        return answer
