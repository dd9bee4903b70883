"""The OAuth 2.0 server's rules beyond django-oauth-toolkit's, and the patient's grants.

- Client credentials are for organisations' systems only (an Application with a
  SystemClient); an organisation's system never takes part in a patient's consent.
- A token issued to a patient's app names the patient's record in the token response
  (SMART's ``patient`` launch context) when the app asked for ``launch/patient``.
- A refresh token (access kept while the patient is not using the app) is issued only
  when the app asked for ``offline_access`` and the patient allowed it: the consent
  screen says so then, and only then. A refresh that drops ``offline_access`` ends it.
- A patient may see which apps can read their record and stop any of them: every
  access and refresh token (and unused code) of that app for that patient goes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import (
    AbstractApplication,
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
    set_token_value,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.common import generate_token

import audit

from . import scopes as smart
from .scopes import is_system_application

# What api.auth and django-oauth-toolkit's validate_bearer_token read of a token row and
# the rows joined to it (anything else would be loaded lazily, one query each).
BEARER_CHECK_FIELDS = (
    "user_id",
    "application_id",
    "expires",
    "scope",
    "resource",
    "token_checksum",
    "application__client_id",
    "application__name",
    "application__client_type",
    "application__authorization_grant_type",
    "user__email",
    "user__role",
    "user__is_active",
    "user__is_staff",
    "user__is_superuser",
    "user__first_name",
    "user__last_name",
    "user__patient_link__patient_id",
    "user__patient_link__method",
    "user__patient_link__verified_at",
)


class SmartValidator(OAuth2Validator):
    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        """Client credentials only for organisations' systems, the other grants never."""
        if not super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs):
            return False
        return (grant_type == "client_credentials") == is_system_application(client)

    def _load_access_token(self, token):
        """The token as django-oauth-toolkit looks it up (by its SHA-256 checksum), with
        the patient's record link that api.auth acts on in the same query, and only the
        columns a bearer check and the actor need: the application's secrets and
        redirect URIs and the user's password hash stay in the database (loading the
        four whole rows took longer than the query). Joining the system client and its
        organisation too cost more than the query it saved: a system's token looks
        those up on its own."""
        checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
        found = (
            get_access_token_model()
            .objects.select_related("application", "user__patient_link")
            .only(*BEARER_CHECK_FIELDS)
            .filter(token_checksum=checksum)
        )
        return next(iter(found[:1]), None)  # the checksum is unique: no ORDER BY needed

    def _save_bearer_token(self, token, request, *args, **kwargs):
        # oauthlib mints a refresh token for every code (and refresh) grant; without
        # offline_access the app gets none, and a refresh token it presented is spent.
        ended = None
        if "refresh_token" in token and not smart.keeps_access(token.get("scope", "")):
            del token["refresh_token"]
            ended = getattr(request, "refresh_token_instance", None)
        super()._save_bearer_token(token, request, *args, **kwargs)
        if ended is not None:
            ended.revoke()
        # The dict is serialised as the token response after this: SMART's launch context.
        user = getattr(request, "user", None)
        if user is not None and "launch/patient" in smart.parse(token.get("scope", "")):
            link = getattr(user, "patient_link", None) if hasattr(user, "patient_link") else None
            if link is not None:
                token["patient"] = str(link.patient_id)


@dataclass
class ConnectedApp:
    application: AbstractApplication
    scopes: frozenset[str]
    granted_at: datetime
    last_renewed_at: datetime

    @property
    def may_see(self) -> list[str]:
        return smart.describe(self.scopes)


def connected_apps(user, *, now: datetime | None = None) -> list[ConnectedApp]:
    """The apps that can still read this user's record: a live access token, or a
    refresh token that could get one."""
    now = now or timezone.now()
    tokens = (
        get_access_token_model()
        .objects.filter(user=user)
        .filter(Q(expires__gt=now) | Q(refresh_token__isnull=False, refresh_token__revoked__isnull=True))
        .select_related("application")
        .order_by("created")
    )
    apps: dict[int, ConnectedApp] = {}
    for token in tokens:
        found = apps.get(token.application_id)
        if found is None:
            apps[token.application_id] = ConnectedApp(
                token.application, smart.parse(token.scope), token.created, token.created
            )
        else:
            found.scopes |= smart.parse(token.scope)
            found.last_renewed_at = max(found.last_renewed_at, token.created)
    return sorted(apps.values(), key=lambda a: a.application.name.lower())


def record_grant(*, user, application, scope: str) -> None:
    """The patient allowed an app to see their record: an audit event for their record."""
    link = getattr(user, "patient_link", None) if hasattr(user, "patient_link") else None
    audit.record(
        "oauth.grant",
        actor=user,
        actor_label=str(user)[:200],
        patient=link.patient if link else None,
        detail={"client": application.client_id, "name": application.name[:100], "scope": scope[:500]},
    )


@transaction.atomic
def stop_app(*, user, application) -> bool:
    """Stop an app seeing a patient's record: revoke its tokens and codes, audited.

    Returns False when the app had nothing left to revoke for this user.
    """
    refresh_tokens = get_refresh_token_model().objects.filter(
        user=user, application=application, revoked__isnull=True
    )
    access_tokens = get_access_token_model().objects.filter(user=user, application=application)
    codes = get_grant_model().objects.filter(user=user, application=application)
    if not (refresh_tokens.exists() or access_tokens.exists() or codes.exists()):
        return False
    for refresh_token in refresh_tokens:
        refresh_token.revoke()
    access_tokens.delete()
    codes.delete()
    link = getattr(user, "patient_link", None) if hasattr(user, "patient_link") else None
    audit.record(
        "oauth.revoke",
        actor=user,
        actor_label=str(user)[:200],
        patient=link.patient if link else None,
        detail={"client": application.client_id, "name": application.name[:100]},
    )
    return True


CLI_CLIENT_ID = "portal-cli"


def cli_application():
    """The operators' own client for tokens issued from the command line."""
    application, _ = get_application_model().objects.get_or_create(
        client_id=CLI_CLIENT_ID,
        defaults={
            "name": "cli",
            "client_type": AbstractApplication.CLIENT_CONFIDENTIAL,
            "authorization_grant_type": AbstractApplication.GRANT_AUTHORIZATION_CODE,
            "skip_authorization": True,
            "redirect_uris": "",
        },
    )
    return application


def system_application(organisation):
    """The organisation's system client (client credentials), made on first use."""
    from .models import SystemClient

    system = SystemClient.objects.select_related("application").filter(organisation=organisation).first()
    if system is not None:
        return system.application
    application = get_application_model().objects.create(
        name=f"{organisation.name} system"[:255],
        client_type=AbstractApplication.CLIENT_CONFIDENTIAL,
        authorization_grant_type=AbstractApplication.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
    )
    SystemClient.objects.create(application=application, organisation=organisation)
    return application


@transaction.atomic
def issue_access_token(*, application, user, scope: str, minutes: int, issued_by: str) -> tuple[str, object]:
    """Mint a bearer token directly (no OAuth flow) for an operator, audited.

    Returns the token (shown once: only its checksum is stored) and its AccessToken.
    """
    raw = generate_token()
    access_token = get_access_token_model()(
        user=user, application=application, scope=scope, expires=timezone.now() + timedelta(minutes=minutes)
    )
    set_token_value(access_token, raw)
    access_token.save()
    link = getattr(user, "patient_link", None) if user is not None and hasattr(user, "patient_link") else None
    system = getattr(application, "system_client", None) if hasattr(application, "system_client") else None
    audit.record(
        "oauth.issue",
        actor_label=issued_by[:200],
        patient=link.patient if link else None,
        organisation=system.organisation if system else None,
        detail={"client": application.client_id, "scope": scope[:500], "minutes": minutes},
    )
    return raw, access_token
