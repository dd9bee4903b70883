"""Pages that belong to the site as a whole rather than to one app."""

from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Answer 200 only when the database answers; says nothing about anyone's record."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any database failure means "not healthy", whatever its type
        return HttpResponse("database unavailable", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


def nhsuk_icon(request: HttpRequest, name: str) -> HttpResponse:
    """The compiled nhsuk-frontend stylesheet asks for its icons at /assets/images/...;
    send those requests to where the files are really served from."""
    return HttpResponsePermanentRedirect(static(f"nhsuk/assets/images/{name}"))
