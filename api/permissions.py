"""Who may call the JSON API at /api/v1/: DRF's side of api.auth.

``BearerAuthentication`` lets a patient's app or an organisation's system in with an
OAuth 2.0 bearer token (api.auth.api_actor decides what the token is); the portal's own
pages use the session (DRF's SessionAuthentication, with its CSRF check). Each view
names the SMART scope it needs (``required_scope``, e.g. "Consent.read") and the roles
it serves; ``PortalPermission`` asks api.auth.has_scope in the caller's context
(patient/, system/ or user/), and tells staff without two-factor authentication to set
it up (the policy refuses them anyway: consent.policy.Actor.second_factor_missing).
Whether a given record may be seen is still the policy's answer, inside each view.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from consent.policy import SECOND_FACTOR_NEEDED, Actor, ActorRole

from .auth import InvalidToken, api_actor, bearer_token, has_scope

BEARER_REALM = 'Bearer realm="api"'
# The scope context each kind of caller asks in (api.scopes).
CONTEXTS = {ActorRole.PATIENT: "patient", ActorRole.SYSTEM: "system"}


class BearerAuthentication(BaseAuthentication):
    """An ``Authorization: Bearer`` token, understood by api.auth.api_actor."""

    def authenticate(self, request):
        try:
            if bearer_token(request) is None:
                return None  # no token: the session authenticates, or nothing does
            actor = api_actor(request)
        except InvalidToken as invalid:
            request._request._invalid_token = True
            raise exceptions.AuthenticationFailed(str(invalid)) from None
        return (actor.user if actor.user is not None else AnonymousUser(), actor)

    def authenticate_header(self, request) -> str:
        # Given first in the settings' order, this makes DRF answer 401 (not 403) to a
        # caller without credentials, with the challenge RFC 6750 asks for.
        if getattr(request._request, "_invalid_token", False):
            return InvalidToken.challenge
        return BEARER_REALM


class BearerScheme(OpenApiAuthenticationExtension):
    """BearerAuthentication in the OpenAPI schema: an OAuth 2.0 bearer token."""

    target_class = BearerAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}


def actor_of(request) -> Actor:
    """The policy's actor for an API request (authenticated by now)."""
    try:
        return api_actor(request)
    except InvalidToken as invalid:
        raise exceptions.AuthenticationFailed(str(invalid)) from None


def scope_for(actor: Actor, wanted: str) -> str:
    """``wanted`` ("Consent.read") in the caller's context: "patient/Consent.read"."""
    return f"{CONTEXTS.get(actor.role, 'user')}/{wanted}"


class PortalPermission(BasePermission):
    """Signed in (staff with a second factor set up), of a role the view serves, holding
    the view's scope.

    A view sets ``roles`` (the ActorRoles it serves; ``method_roles`` narrows them for
    one HTTP method, with the refusal's words) and ``required_scope`` (a mapping of HTTP
    method to "<Type>.<access>").
    """

    message = "You cannot use this part of the API"

    def has_permission(self, request, view) -> bool:
        actor = actor_of(request)
        if actor.role == ActorRole.ANONYMOUS:
            raise exceptions.NotAuthenticated("Sign in or send a valid bearer token")
        if actor.second_factor_missing:
            raise exceptions.PermissionDenied(SECOND_FACTOR_NEEDED)
        roles, refusal = getattr(view, "method_roles", {}).get(
            request.method, (view.roles, getattr(view, "role_message", self.message))
        )
        if actor.role not in roles:
            raise exceptions.PermissionDenied(refusal)
        if actor.role == ActorRole.PATIENT and actor.patient_id is None:
            raise exceptions.PermissionDenied("Link your account to your record first")
        wanted = view.required_scope.get(request.method, view.required_scope.get("GET"))
        if wanted is not None:
            scope = scope_for(actor, wanted)
            if not has_scope(request, scope):
                raise exceptions.PermissionDenied(f"The credentials do not carry the scope {scope}")
        return True
