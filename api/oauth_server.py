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
- Someone who acts for a patient (a proxy) may connect an app to that patient's record:
  with ``launch/patient`` the consent screen asks whose record, the token response names
  that patient, and the app acts as the proxy for them under the same grant, refused
  the moment the grant ends (api.models.ProxyApp). The patient sees such apps and may
  stop them too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
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
from accounts.models import ProxyAccess
from consent.proxies import patient_name

from . import scopes as smart
from .models import ProxyApp
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
        four whole rows took longer than the query). The grant a proxy connected the app
        under (api.models.ProxyApp) comes in the same query. Joining the system client and its
        organisation too cost more than the query it saved: a system's token looks
        those up on its own."""
        checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
        acting_for = ProxyApp.objects.filter(user=OuterRef("user_id"), application=OuterRef("application_id"))
        found = (
            get_access_token_model()
            .objects.select_related("application", "user__patient_link")
            .only(*BEARER_CHECK_FIELDS)
            .annotate(proxy_grant_id=Subquery(acting_for.values("grant_id")[:1]))
            .filter(token_checksum=checksum)
        )
        return next(iter(found[:1]), None)  # the checksum is unique: no ORDER BY needed

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        return super().validate_code(client_id, code, client, request, *args, **kwargs) and _record_open(
            request.user, client
        )

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        return super().validate_refresh_token(
            refresh_token, client, request, *args, **kwargs
        ) and _record_open(request.user, client)

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
            patient_id = record_of_app(user, request.client)
            if patient_id is not None:
                token["patient"] = str(patient_id)


def acting_grant(user_id, application_id) -> ProxyAccess | None:
    """The grant under which this user's tokens for this app act for someone else, or
    None when the app sees the user's own record."""
    row = (
        ProxyApp.objects.select_related("grant", "grant__patient")
        .filter(user_id=user_id, application_id=application_id)
        .first()
    )
    return row.grant if row is not None else None


def _own_patient_id(user):
    link = getattr(user, "patient_link", None) if hasattr(user, "patient_link") else None
    return link.patient_id if link is not None else None


def record_of_app(user, application):
    """The id of the patient whose record the app sees for this user, or None."""
    grant = acting_grant(user.pk, application.pk)
    if grant is None:
        return _own_patient_id(user)
    return grant.patient_id if grant.is_active() and grant.may_see else None


def _record_open(user, client) -> bool:
    """A code or refresh token is spent only while the record it names may still be
    seen: never once the proxy's grant has ended."""
    return user is None or client is None or record_of_app(user, client) is not None


def _revoke(user, application) -> bool:
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
    return True


@transaction.atomic
def choose_record(*, user, application, grant: ProxyAccess | None) -> None:
    """The record this user's app will see: their own (``grant`` None) or the patient of
    one of their active grants that lets them see it. An app sees one record per person:
    choosing another stops every token it holds for the first."""
    if grant is not None and not (grant.proxy_id == user.pk and grant.is_active() and grant.may_see):
        raise ValueError("not a grant this person may connect an app under")
    current = ProxyApp.objects.select_for_update().filter(user=user, application=application).first()
    if (current.grant_id if current else None) == (grant.pk if grant else None):
        return
    _revoke(user, application)
    if current is not None:
        current.delete()
    if grant is not None:
        ProxyApp.objects.create(user=user, application=application, grant=grant)


@dataclass
class ConnectedApp:
    application: AbstractApplication
    scopes: frozenset[str]
    granted_at: datetime
    last_renewed_at: datetime
    whose: str = ""  # the name of the patient a proxy connected it for; "" for one's own
    connected_by: str = ""  # on the patient's page: the proxy who connected it
    proxy_app: int | None = None

    @property
    def may_see(self) -> list[str]:
        return smart.describe(self.scopes)


def _live_tokens(now, **which):
    return (
        get_access_token_model()
        .objects.filter(**which)
        .filter(Q(expires__gt=now) | Q(refresh_token__isnull=False, refresh_token__revoked__isnull=True))
        .select_related("application")
        .order_by("created")
    )


def connected_apps(user, *, now: datetime | None = None) -> list[ConnectedApp]:
    """The apps that can still read a record for this user: a live access token, or a
    refresh token that could get one; an app connected for someone they act for names
    that person, and goes from the list when the grant ends."""
    now = now or timezone.now()
    acting = {
        row.application_id: row.grant
        for row in ProxyApp.objects.filter(user=user).select_related("grant", "grant__patient")
    }
    apps = _gathered(_live_tokens(now, user=user))
    for app in list(apps):
        grant = acting.get(app.application.pk)
        if grant is not None:
            if not (grant.is_active(now) and grant.may_see):
                apps.remove(app)
                continue
            app.whose = patient_name(grant)
    return apps


def apps_of_proxies(patient_id, *, now: datetime | None = None) -> list[ConnectedApp]:
    """Apps that people acting for this patient connected to the patient's record, while
    their grants are active: the patient sees them and may stop any."""
    now = now or timezone.now()
    found = []
    rows = ProxyApp.objects.filter(grant__patient_id=patient_id).select_related("grant", "user")
    for row in rows:
        if not (row.grant.is_active(now) and row.grant.may_see):
            continue
        for app in _gathered(_live_tokens(now, user_id=row.user_id, application_id=row.application_id)):
            app.connected_by, app.proxy_app = row.user.email, row.pk
            found.append(app)
    return found


def _gathered(tokens) -> list[ConnectedApp]:
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


def _acting_label(user, grant: ProxyAccess | None) -> str:
    if grant is None:
        return str(user)[:200]
    return f"{user}, acting for the patient ({grant.get_relationship_display().lower()})"[:200]


def record_grant(*, user, application, scope: str) -> None:
    """The patient, or someone acting for them, allowed an app to see the record: an
    audit event on the record it sees."""
    grant = acting_grant(user.pk, application.pk)
    audit.record(
        "oauth.grant",
        actor=user,
        actor_label=_acting_label(user, grant),
        patient_id=grant.patient_id if grant is not None else _own_patient_id(user),
        detail={
            "client": application.client_id,
            "name": application.name[:100],
            "scope": scope[:500],
            **({"grant": grant.pk} if grant is not None else {}),
        },
    )
    if grant is not None:
        # The patient is told when someone acting for them connects an app to their
        # record: who and which app, nothing of the record.
        from django.urls import reverse

        from accounts.models import Notification, User
        from accounts.tasks import notify

        for patient_user in User.objects.filter(patient_link__patient_id=grant.patient_id, is_active=True):
            notify(
                patient_user,
                kind=Notification.Kind.GENERAL,
                title="Someone acting for you connected an app",
                body=f"{user.email} connected the app “{application.name[:100]}” to your record, acting "
                "for you. It can see your record as they can. You can stop it on your connected apps page.",
                link=reverse("oauth:apps"),
            )


@transaction.atomic
def stop_app(*, user, application, stopped_by=None) -> bool:
    """Stop an app seeing a record: revoke its tokens and codes for this user, audited
    on the record it saw, as the act of ``stopped_by`` (the user themself by default;
    the patient when they stop an app their proxy connected).

    Returns False when the app had nothing left to revoke for this user.
    """
    grant = acting_grant(user.pk, application.pk)
    if not _revoke(user, application):
        return False
    ProxyApp.objects.filter(user=user, application=application).delete()
    by = stopped_by or user
    audit.record(
        "oauth.revoke",
        actor=by,
        actor_label=_acting_label(by, grant if by == user else None),
        patient_id=grant.patient_id if grant is not None else _own_patient_id(user),
        detail={"client": application.client_id, "name": application.name[:100]},
    )
    return True


def stop_proxy_app(*, patient_user, patient_id, proxy_app_id) -> ConnectedApp | None:
    """The patient stops an app someone acting for them connected to their record."""
    row = (
        ProxyApp.objects.select_related("application", "user")
        .filter(pk=proxy_app_id, grant__patient_id=patient_id)
        .first()
    )
    if row is None or not stop_app(user=row.user, application=row.application, stopped_by=patient_user):
        return None
    return ConnectedApp(
        row.application, frozenset(), timezone.now(), timezone.now(), connected_by=row.user.email
    )


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
