"""Share links: the patient shows their record to someone outside the network, such as
a clinician far from home, with a link, a passcode and an end date.

What a link's holder sees is the patient's own view of their record (items withheld
from the patient stay withheld), read through consent.policy as the patient, and every
view is audited in the patient's trail naming the link, so that it appears in the
patient's "who has looked" page. No rule of access is written here: the policy decides.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.db.models import F
from django.utils import timezone

import audit

from .policy import AccessDecision, Action, Actor, ActorRole, NotFound, RecordAccess, actor_for, open_record
from .share_models import MAX_DAYS, MAX_FAILED_ATTEMPTS, ShareLink, token_hash

MIN_PASSCODE_LENGTH = 6
GENERATED_PASSCODE_DIGITS = 8
PURPOSE = "share-link"


class ShareLinkError(Exception):
    """A request to create a link that breaks a rule, in words for the patient."""


@dataclass(frozen=True)
class CreatedLink:
    """A new link with the secrets that are shown to the patient once and never stored."""

    link: ShareLink
    token: str
    passcode: str | None  # only when generated: the patient knows their own


def _own_patient(actor: Actor) -> None:
    if actor.role != ActorRole.PATIENT or actor.patient_id is None or actor.user is None:
        raise NotFound


def generate_passcode() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(GENERATED_PASSCODE_DIGITS))


@transaction.atomic
def create_share_link(
    *, actor: Actor, label: str, scope: str, days: int, passcode: str = "", now: datetime | None = None
) -> CreatedLink:
    """A patient shares their own record for 1 to 30 days behind a passcode of 6 or more
    characters (generated when they give none); only hashes of the link and passcode are kept."""
    _own_patient(actor)
    if not 1 <= days <= MAX_DAYS:
        raise ShareLinkError(f"A link can last from 1 to {MAX_DAYS} days")
    if scope not in ShareLink.Scope.values:
        raise ShareLinkError("Choose a summary or the whole record")
    label = label.strip()
    if not label:
        raise ShareLinkError("Give the link a name")
    generated = None
    if not passcode:
        passcode = generated = generate_passcode()
    elif len(passcode) < MIN_PASSCODE_LENGTH:
        raise ShareLinkError(f"The passcode must be at least {MIN_PASSCODE_LENGTH} characters")
    now = now or timezone.now()
    token = secrets.token_urlsafe(32)  # 256 bits
    link = ShareLink.objects.create(
        patient_id=actor.patient_id,
        created_by=actor.user,
        scope=scope,
        label=label[:60],
        token_hash=token_hash(token),
        passcode_hash=make_password(passcode),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    audit.record(
        "share.create",
        patient=link.patient,
        purpose="patient-choice",
        detail={"share_link": link.pk, "label": link.label, "scope": scope, "days": days},
        **actor.audit_fields(),
    )
    return CreatedLink(link, token, generated)


@transaction.atomic
def revoke_share_link(*, actor: Actor, link_id, now: datetime | None = None) -> ShareLink:
    """A patient ends one of their own links at once; anyone else's is NotFound."""
    _own_patient(actor)
    link = ShareLink.objects.select_for_update().of_patient(actor.patient_id).filter(pk=link_id).first()
    if link is None:
        raise NotFound
    if link.revoked_at is None:
        link.revoked_at = now or timezone.now()
        link.save(update_fields=["revoked_at"])
        audit.record(
            "share.revoke",
            patient=link.patient,
            purpose="patient-choice",
            detail={"share_link": link.pk, "label": link.label},
            **actor.audit_fields(),
        )
    return link


def find_usable(token: str, *, now: datetime | None = None) -> ShareLink | None:
    """The link a token opens, or None alike for unknown, expired, revoked and locked links."""
    if not token or len(token) > 100:
        return None
    return ShareLink.objects.usable(now).filter(token_hash=token_hash(token)).first()


@transaction.atomic
def try_passcode(*, link: ShareLink, passcode: str, source_address: str | None = None) -> bool:
    """Whether the passcode opens the link; the fifth wrong passcode locks it for good."""
    link = ShareLink.objects.select_for_update().get(pk=link.pk)
    if not link.usable():
        return False
    if check_password(passcode or "", link.passcode_hash):
        return True
    link.failed_attempts += 1
    fields = ["failed_attempts"]
    if link.failed_attempts >= MAX_FAILED_ATTEMPTS:
        link.locked_at = timezone.now()
        fields.append("locked_at")
        audit.record(
            "share.lock",
            patient=link.patient,
            actor_label=f"Shared link: {link.label}"[:200],
            outcome="deny",
            purpose=PURPOSE,
            reason=f"{MAX_FAILED_ATTEMPTS} wrong passcodes",
            source_address=source_address,
            detail={"share_link": link.pk, "label": link.label},
        )
    link.save(update_fields=fields)
    return False


def attempts_left(link: ShareLink) -> int:
    return max(0, MAX_FAILED_ATTEMPTS - link.failed_attempts)


# --- Reading the record through the policy -----------------------------------------------


@dataclass(frozen=True)
class ShareLinkActor(Actor):
    """The patient, as seen through one of their share links: the policy decides exactly
    as for the patient (role and patient_id), but the audit event names the link and the
    viewer's address, not the patient's account."""

    link_label: str = ""

    @property
    def label(self) -> str:
        return f"Shared link: {self.link_label}"

    def audit_fields(self) -> dict:
        return {
            "actor": None,
            "actor_label": self.label[:200],
            "organisation": None,
            "source_address": self.source_address,
        }


@dataclass(frozen=True)
class _SharedDecision(AccessDecision):
    # The patient's own-record decision, audited with the share link's purpose so that
    # the patient's access log lists it (it leaves out the patient's own looks).
    @property
    def purpose(self) -> str:
        return PURPOSE


def open_shared_record(*, link: ShareLink, source_address: str | None) -> RecordAccess:
    """The linked patient's own view of their record, for the holder of a usable link.

    NotFound when the link no longer opens, or its patient could no longer see the
    record themselves (account closed or unlinked): the viewer never gets more.
    """
    if not link.usable():
        raise NotFound
    patient_actor = actor_for(link.created_by)
    if patient_actor.role != ActorRole.PATIENT or patient_actor.patient_id != link.patient_id:
        raise NotFound
    actor = ShareLinkActor(
        ActorRole.PATIENT,
        user=link.created_by,
        patient_id=patient_actor.patient_id,
        source_address=source_address,
        link_label=link.label,
    )
    access = open_record(actor, link.patient_id, action=Action.READ_RECORD)
    d = access.decision
    access.decision = _SharedDecision(d.permitted, d.reason, d.basis, d.break_glass, d.categories)
    return access


def count_view(link: ShareLink) -> None:
    ShareLink.objects.filter(pk=link.pk).update(view_count=F("view_count") + 1, last_viewed_at=timezone.now())
