"""Where a request comes from, and two rules every response keeps, whichever channel answers.

ClientAddressMiddleware: behind TRUSTED_PROXIES proxies, the client's address is taken
from their X-Forwarded-For and put in REMOTE_ADDR, before anything reads it.

NulCharacterMiddleware: a NUL character in a query parameter or a form field is refused
with a 400 naming the parameter, before any view runs. PostgreSQL stores no NUL in text
or JSON, so a NUL that reached a query or an audit event would be a server error there;
no view has to think about it.

SecurityHeadersMiddleware: a Content-Security-Policy allowing this origin only and no
inline code (the pages' scripts and styles are files in static/portal/), a
Permissions-Policy switching off the device features the portal never uses, and
``Cache-Control: no-store`` on everything except the few public, data-free addresses
(static files are answered before this middleware runs).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

from api.fhir.bundle import outcome

from .errors import API, FHIR, channel

NUL = "\x00"
FORM = "application/x-www-form-urlencoded"


# --- Client address -------------------------------------------------------------------


def _ip(value: str) -> str | None:
    """The address in its standard spelling, or None when it is not one.

    Proxies write an entry as "1.2.3.4", "1.2.3.4:5678", "2001:db8::1" or
    "[2001:db8::1]:5678": the port is dropped. An IPv4 address mapped into IPv6 is the
    IPv4 address (one client, one count). An IPv6 zone ("fe80::1%eth0") names an
    interface of the proxy's, not a client, and the database cannot store it: refused.
    """
    value = value.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return None
        address = address.ipv4_mapped or address
    return str(address)


def forwarded_client_address(meta, trusted_proxies: int) -> str | None:
    """The address the outermost trusted proxy saw the client come from, or None.

    Each proxy appends the address it was reached from to X-Forwarded-For, so with N
    proxies the client's is the Nth entry from the right; whatever stands to its left
    the client wrote itself and is never believed. A header shorter than N did not pass
    through every proxy, and an entry that is not an IP address proves nothing: both
    give None, and the connection's own address stands.
    """
    if trusted_proxies < 1:
        return None
    entries = meta.get("HTTP_X_FORWARDED_FOR", "").split(",")
    if len(entries) < trusted_proxies:
        return None
    return _ip(entries[-trusted_proxies])


class ClientAddressMiddleware:
    """Puts the client's address in REMOTE_ADDR, first of all, so that allauth's sign-in
    limits, the portal's own attempt limits and the audit trail count and record the
    client, not the proxy every request arrives through."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        forwarded = forwarded_client_address(request.META, settings.TRUSTED_PROXIES)
        if forwarded is not None:
            request.META["REMOTE_ADDR"] = forwarded
        return self.get_response(request)


def _shown(name: str) -> str:
    """A parameter's name as it can be quoted back: no NUL, not too long."""
    return name.replace(NUL, "")[:40] or "(no name)"


def _nul_parameter(request) -> str | None:
    """The first query parameter or form field whose name or value holds a NUL."""
    sources = []
    try:
        sources.append(request.GET)
        if request.method == "POST" and request.content_type == FORM:
            sources.append(request.POST)
    except (RequestDataTooBig, TooManyFieldsSent):
        pass  # too large to look at: the view answers these its own way, from scratch
    for params in sources:
        for name, values in params.lists():
            if NUL in name or any(NUL in value for value in values):
                return _shown(name)
    return None


def refusal(request, parameter: str) -> HttpResponse:
    """A 400 naming the parameter, in the language of the channel asked."""
    message = f"The parameter '{parameter}' holds a NUL character, which is not allowed"
    asked = channel(request.path)
    if asked == FHIR:
        return outcome(400, message, expression=parameter)
    if asked == API:
        return JsonResponse(
            {"detail": message, "field": parameter, "errors": {parameter: [message]}}, status=400
        )
    return render(request, "400.html", {"problem": f"{message}."}, status=400)


class NulCharacterMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        parameter = _nul_parameter(request)
        if parameter is not None:
            return refusal(request, parameter)
        return self.get_response(request)


# --- Headers --------------------------------------------------------------------------

PERMISSIONS_POLICY = ", ".join(
    [
        *(
            f"{feature}=()"
            for feature in (
                "accelerometer",
                "autoplay",
                "camera",
                "display-capture",
                "encrypted-media",
                "geolocation",
                "gyroscope",
                "magnetometer",
                "microphone",
                "midi",
                "payment",
                "screen-wake-lock",
                "serial",
                "usb",
                "xr-spatial-tracking",
            )
        ),
        # Security keys and passkeys (allauth's WebAuthn) are a second factor here.
        "publickey-credentials-create=(self)",
        "publickey-credentials-get=(self)",
    ]
)

# Public addresses that carry nobody's data, which a browser or proxy may keep when the
# caller is not signed in: the FHIR capability statement, the SMART configuration, the
# JSON API's schema and docs page, and the design system's icon redirects.
PUBLIC_PATHS = (
    "/fhir/metadata",
    "/.well-known/",
    "/fhir/.well-known/",
    "/api/schema/",
    "/api/docs/",
    "/assets/images/",
)
# The Swagger UI of the JSON API's docs page sets inline styles (and its page has a
# <style> block); its script is served as a file.
SWAGGER_PATH = "/api/docs/"
# A form posted to /o/authorize/ redirects to the app's own address, which form-action
# would block; that page's CSP leaves form-action out.
OAUTH_AUTHORIZE_PATH = "/o/authorize/"


def _origin(url: str) -> str:
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(request) -> str:
    """The strict policy: this origin only, no inline script, no inline style (but on the
    API docs page)."""
    styles = "'self' 'unsafe-inline'" if request.path.startswith(SWAGGER_PATH) else "'self'"
    # The sign-in form of NHS login posts here and is redirected to NHS login.
    forms = " ".join(filter(None, ["'self'", _origin(settings.NHS_LOGIN_SERVER_URL)]))
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        f"style-src {styles}",
        # data: for the authenticator QR code and the design system's inline icons.
        "img-src 'self' data:",
        # Fonts from this server only: the design system's remote Frutiger is not used
        # (static/portal/portal.css), so no page waits on another host.
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
    if not request.path.startswith(OAUTH_AUTHORIZE_PATH):
        directives.append(f"form-action {forms}")
    return "; ".join(directives)


def is_public(request) -> bool:
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    return not signed_in and request.path.startswith(PUBLIC_PATHS)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", content_security_policy(request))
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if not is_public(request) and "no-store" not in response.get("Cache-Control", ""):
            response["Cache-Control"] = "no-store"
        return response
