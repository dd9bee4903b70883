"""Share links: the patient shows their record to someone outside the network, such as
a clinician far from home, with a link, a passcode and an end date.

What a link's holder sees is the part the patient chose (``released``) of the patient's
own view of their record (items withheld from the patient stay withheld), read through
consent.policy as the patient; every view is audited in the patient's trail naming the
link, so that it appears in the patient's "who has looked" page. No rule of access is
written here: the policy decides, and ``released`` only narrows what it permits.

Each link is also a SMART Health Link (HL7 SMART Health Cards and Links 1.0), so that
any app that reads them can open it. The rules of that specification relied on here:

- The link is ``shlink:/`` then the base64url text (no padding) of a JSON payload: ``url``
  (the manifest's address, which must carry at least 256 bits of randomness), ``key``
  (32 random bytes as base64url, so 43 characters, that decrypt the files), ``exp`` (when
  the link ends, in seconds since 1970), ``flag`` (single letters in alphabetical order;
  ``P`` says the manifest wants a passcode, which ours always does), ``label`` (at most 80
  characters, for whoever scans it) and ``v`` (the version, 1).
- The ``shlink:/`` text may follow a viewer's web address and ``#``: a phone camera then
  opens our own viewer page, and the part after ``#`` never reaches any server.
- A reader POSTs JSON ``{"recipient": who is asking, "passcode": ...}`` to the manifest
  address. It gets 200 and ``{"files": [{"contentType": ..., "embedded": ...}]}``; a wrong
  passcode gets 401 with ``{"remainingAttempts": n}``; a link that no longer works, 404.
- Each embedded file is a compact JWE with ``alg`` "dir" and ``enc`` "A256GCM", encrypted
  with the payload's key, its header's ``cty`` naming what is inside (here a FHIR Bundle,
  ``application/fhir+json``).
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from jwcrypto import jwe, jwk

import audit
from phr import vocabulary
from phr.models import Category

from .policy import (
    AccessDecision,
    Action,
    Actor,
    ActorRole,
    NotFound,
    RecordAccess,
    actor_for,
    kept_to_holder,
    open_record,
    patient_themself,
)
from .share_models import MAX_DAYS, MAX_FAILED_ATTEMPTS, ShareLink, token_hash

MIN_PASSCODE_LENGTH = 6
GENERATED_PASSCODE_DIGITS = 8
PURPOSE = "share-link"
SUMMARY_KINDS = ("problems", "medications", "allergies", "test-results", "immunisations")
RECENT_RESULTS = 10
SHL_LABEL_LENGTH = 80
FILE_TYPE = "application/fhir+json"
_KEY_INFO = b"patient-record-portal share-link file keys v1"


class ShareLinkError(Exception):
    """A request to create a link that breaks a rule, in words for the patient."""


@dataclass(frozen=True)
class CreatedLink:
    """A new link with the secrets that are shown to the patient once and never stored."""

    link: ShareLink
    token: str
    passcode: str | None  # only when generated: the patient knows their own
    key: str  # the SMART Health Link's file key, for the shlink:/ text shown once


# --- What a link carries -------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What the patient chose: a summary or the whole record (of these sensitivity
    categories), or single items."""

    scope: str
    categories: tuple[str, ...] = ()
    item_ids: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, link: ShareLink) -> Selection:
        return cls(link.scope, tuple(link.categories or ()), tuple(link.item_ids or ()))


def default_categories() -> list[str]:
    """The categories a new link carries unless the patient changes them: every one but
    those the deployment keeps to their holder (settings.CATEGORIES_KEPT_TO_HOLDER)."""
    return [category for category in Category.values if not kept_to_holder(category)]


def _summary(items: QuerySet) -> QuerySet:
    kinds = {words.slug: words for words in vocabulary.KIND_WORDS}
    items = items.filter(entered_in_error=False)
    types = [t for slug in SUMMARY_KINDS if slug != "test-results" for t in kinds[slug].resource_types]
    results = items.filter(resource_type__in=kinds["test-results"].resource_types)
    recent = results.order_by(F("clinical_date").desc(nulls_last=True), "pk").values("pk")[:RECENT_RESULTS]
    return items.filter(Q(resource_type__in=types) | Q(pk__in=recent))


def released(selection: Selection, entries: QuerySet) -> QuerySet:
    """What a link releases out of the entries the policy permits: the chosen items, or
    the summary or whole record limited to the chosen categories; never a patient's own
    details. The one filter for the viewer page and the SMART Health Link's file alike."""
    items = entries.exclude(resource_type__in=vocabulary.NOT_ITEMS)
    if selection.scope == ShareLink.Scope.ITEMS:
        return items.filter(pk__in=list(selection.item_ids))
    items = items.filter(category__in=list(selection.categories))
    return _summary(items) if selection.scope == ShareLink.Scope.SUMMARY else items


def left_out(selection: Selection, entries: QuerySet) -> QuerySet:
    """The permitted items the patient's choice keeps out that they may want to know of:
    for a summary or whole record, those of the categories not chosen; for single items,
    those of the categories kept to their holder that were not ticked."""
    items = entries.exclude(resource_type__in=vocabulary.NOT_ITEMS)
    if selection.scope == ShareLink.Scope.ITEMS:
        kept = [c for c in Category.values if kept_to_holder(c)]
        return items.filter(category__in=kept).exclude(pk__in=list(selection.item_ids))
    if selection.scope == ShareLink.Scope.SUMMARY:
        items = _summary(items)
    return items.exclude(category__in=list(selection.categories))


def left_out_words(categories: list[str]) -> list[str]:
    """The left-out items in words, one line per category: "2 sexual health items"."""
    counts = Counter(categories)
    labels = dict(Category.choices)
    return [
        f"{n} {labels[c].lower()} item{'s' if n != 1 else ''}" for c in Category.values if (n := counts[c])
    ]


def count_left_out(*, access: RecordAccess, selection: Selection) -> list[str]:
    """For the patient's own pages: what their choice leaves out, audited as a count."""
    categories = access.counts(
        lambda entries: list(left_out(selection, entries).values_list("category", flat=True)),
        detail={"page": "share-link-left-out"},
    )
    return left_out_words(categories)


def _clean_selection(scope: str, categories, item_ids) -> Selection:
    if scope not in ShareLink.Scope.values:
        raise ShareLinkError("Choose a summary, the whole record or single items")
    if scope == ShareLink.Scope.ITEMS:
        try:
            ids = tuple(sorted({str(uuid.UUID(str(i))) for i in item_ids or ()}))
        except ValueError:
            raise ShareLinkError("Choose items from your record") from None
        if not ids:
            raise ShareLinkError("Choose at least one item to share")
        return Selection(scope, (), ids)
    if categories is None:
        chosen = tuple(default_categories())
    else:
        wanted = set(categories)
        if not wanted <= set(Category.values):
            raise ShareLinkError("Choose kinds of information from the list")
        chosen = tuple(c for c in Category.values if c in wanted)
    if not chosen:
        raise ShareLinkError("Choose at least one kind of information to share")
    return Selection(scope, chosen, ())


# --- The SMART Health Link -----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@cache
def _sealer(secret: str) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO)
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(secret.encode())))


def seal_key(key: str) -> str:
    """A link's file key as stored: sealed under a key derived from SECRET_KEY (HKDF), so
    that a copy of the database alone cannot decrypt what the link carries."""
    return _sealer(settings.SECRET_KEY).encrypt(key.encode()).decode()


def unseal_key(link: ShareLink) -> str:
    return _sealer(settings.SECRET_KEY).decrypt(link.sealed_key.encode()).decode()


def shlink(*, link: ShareLink, key: str, manifest_url: str, viewer_url: str = "") -> str:
    """The link as a SMART Health Link (``shlink:/`` and its payload), after the viewer
    page's address and ``#`` when given, so that a phone camera opens our page."""
    payload = {
        "url": manifest_url,
        "key": key,
        "exp": int(link.expires_at.timestamp()),
        "flag": "P",  # every link here has a passcode
        "label": link.label[:SHL_LABEL_LENGTH],
        "v": 1,
    }
    text = "shlink:/" + _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{viewer_url}#{text}" if viewer_url else text


def encrypt_file(*, link: ShareLink, content: str, content_type: str = FILE_TYPE) -> str:
    """A file of the link as compact JWE (dir, A256GCM) under the link's own key."""
    key = jwk.JWK(kty="oct", k=unseal_key(link))
    header = {"alg": "dir", "enc": "A256GCM", "cty": content_type}
    token = jwe.JWE(content.encode(), protected=json.dumps(header))
    token.add_recipient(key)
    return token.serialize(compact=True)


def _own_patient(actor: Actor) -> None:
    """The patient themself: a share link is theirs to make, never a proxy's (DAPB3051)."""
    patient_themself(actor)
    if actor.user is None:
        raise NotFound


def generate_passcode() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(GENERATED_PASSCODE_DIGITS))


@transaction.atomic
def create_share_link(
    *,
    actor: Actor,
    label: str,
    scope: str,
    days: int,
    passcode: str = "",
    categories: list[str] | None = None,
    item_ids: list[str] | None = None,
    now: datetime | None = None,
) -> CreatedLink:
    """A patient shares what they choose of their own record for 1 to 30 days behind a
    passcode of 6 or more characters (generated when they give none); categories kept to
    their holder stay out unless chosen. Only hashes of the link and passcode are kept."""
    _own_patient(actor)
    if not 1 <= days <= MAX_DAYS:
        raise ShareLinkError(f"A link can last from 1 to {MAX_DAYS} days")
    selection = _clean_selection(scope, categories, item_ids)
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
    key = _b64(secrets.token_bytes(32))
    link = ShareLink.objects.create(
        patient_id=actor.patient_id,
        created_by=actor.user,
        scope=scope,
        categories=list(selection.categories),
        item_ids=list(selection.item_ids),
        label=label[:60],
        token_hash=token_hash(token),
        passcode_hash=make_password(passcode),
        sealed_key=seal_key(key),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    audit.record(
        "share.create",
        patient=link.patient,
        purpose="patient-choice",
        detail={
            "share_link": link.pk,
            "label": link.label,
            "scope": scope,
            "categories": list(selection.categories),
            "items": len(selection.item_ids),
            "days": days,
        },
        **actor.audit_fields(),
    )
    return CreatedLink(link, token, generated, key)


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
    # Each wrong passcode is a refused read of the record, in the patient's trail.
    audit.record(
        Action.READ_RECORD.value,
        patient=link.patient,
        actor_label=f"Shared link: {link.label}"[:200],
        outcome="deny",
        purpose=PURPOSE,
        reason="wrong passcode",
        source_address=source_address,
        detail={"share_link": link.pk, "label": link.label},
    )
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
