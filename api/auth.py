"""Who is calling the API, and what their token lets them do.

Every API view asks two things: ``api_actor(request)`` (the policy's Actor: a signed-in
user through the session, or a patient's app or an organisation's system through an
OAuth 2.0 bearer token) and ``has_scope(request, scope)`` (SMART scopes such as
"patient/Observation.read" or "system/Bundle.write"). The session, used by the portal's
own pages, carries every scope the user's role allows (api.scopes.SESSION_SCOPES); what
a token carries is what the patient or organisation granted it. The policy still
decides every read, and gives a token's actor only entries of the resource types its
read scopes name (consent.policy.Actor.readable_types, from api.scopes.readable_types).

With an ``Authorization: Bearer`` header:
- a token of a patient's app acts as that patient, on their own linked record only; one
  a proxy connected to someone they act for (api.models.ProxyApp) acts as that proxy
  for that patient, under the grant, and is refused once the grant has ended;
- a token of an organisation's system (api.models.SystemClient) acts as that
  organisation's system (consent.policy.system_actor);
- an unknown, expired or revoked token, or one whose patient is no longer linked to a
  record, raises ``InvalidToken``: answer 401 with
  ``WWW-Authenticate: Bearer error="invalid_token"`` (``InvalidToken.challenge``).

Call ``api_actor`` first; ``has_scope`` answers False for a request whose token is
invalid. Both accept a Django HttpRequest or a DRF Request.
"""

from __future__ import annotations

from dataclasses import replace

from oauthlib.common import Request as OAuthRequest

from consent.policy import Actor, actor_for, proxy_may, system_actor
from consent.web import client_address, request_actor

from . import scopes as smart


class InvalidToken(Exception):
    """A bearer token that is unknown, expired or revoked, or may no longer act.

    The API answers it with 401 and the ``challenge`` value as WWW-Authenticate.
    """

    challenge = 'Bearer error="invalid_token"'


def _http_request(request):
    return getattr(request, "_request", request)  # DRF wraps the HttpRequest


def bearer_token(request) -> str | None:
    """The bearer token from the Authorization header, or None without one."""
    header = _http_request(request).META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not token:
        raise InvalidToken("the bearer token is empty")
    return token


def api_actor(request) -> Actor:
    """The actor for an API request: from its bearer token, else from the session."""
    http = _http_request(request)
    actor = getattr(http, "_api_actor", None)
    if actor is not None:
        return actor
    token = bearer_token(http)
    if token is None:
        actor = request_actor(http)
        user = getattr(http, "user", None)
        role = getattr(user, "role", None) if user is not None and user.is_authenticated else None
        scopes = smart.SESSION_SCOPES.get(role, frozenset())
    else:
        actor, scopes = _token_actor(http, token)
    http._api_actor = actor
    http._smart_scopes = scopes
    return actor


def _token_actor(http, token: str) -> tuple[Actor, frozenset[str]]:
    from oauth2_provider.settings import oauth2_settings

    from .models import SystemClient

    validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS()
    oauth_request = OAuthRequest(http.build_absolute_uri(http.path), http_method=http.method)
    if not validator.validate_bearer_token(token, [], oauth_request):
        raise InvalidToken("the token is unknown, expired or revoked")
    access_token = oauth_request.access_token
    granted = smart.parse(access_token.scope)
    source = client_address(http)
    # Client-credentials tokens carry no user: only those can be an organisation's system.
    # (The validator, api.oauth_server.SmartValidator, fetched a patient's record link.)
    system = (
        None
        if access_token.user_id is not None
        else SystemClient.objects.select_related("organisation")
        .filter(application=access_token.application_id)
        .first()
    )
    # The actor carries the resource types its scopes release: the policy gives it
    # entries of those types only, whichever view asks.
    if system is not None:
        scopes = frozenset(s for s in granted if s in smart.SYSTEM_SCOPES)
        actor = system_actor(system.organisation, access_token.application.client_id, source_address=source)
        return replace(actor, readable_types=smart.readable_types(scopes, "system")), scopes
    user = access_token.user
    if user is None or not user.is_active or user.role != "patient":
        raise InvalidToken("the token does not belong to a patient")
    grant_id = getattr(access_token, "proxy_grant_id", None)  # annotated by the validator
    actor = actor_for(user, source_address=source, proxy_grant=grant_id)
    if grant_id is not None and (actor.proxy is None or not proxy_may(actor, "see")):
        raise InvalidToken("the proxy's access to the record has ended")
    if actor.patient_id is None:
        raise InvalidToken("the account is not linked to a record")
    scopes = frozenset(s for s in granted if s in smart.PATIENT_APP_SCOPES)
    return replace(actor, readable_types=smart.readable_types(scopes, "patient")), scopes


def has_scope(request, scope: str) -> bool:
    """Whether the request's credentials carry ``scope`` (wildcards allowed in grants)."""
    http = _http_request(request)
    if not hasattr(http, "_smart_scopes"):
        try:
            api_actor(http)
        except InvalidToken:
            return False
    return smart.permits(http._smart_scopes, scope)


def granted_scopes(request) -> frozenset[str]:
    """The scopes the request's credentials carry (empty for an invalid token)."""
    http = _http_request(request)
    if not hasattr(http, "_smart_scopes"):
        try:
            api_actor(http)
        except InvalidToken:
            return frozenset()
    return http._smart_scopes
