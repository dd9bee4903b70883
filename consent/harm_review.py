"""Harm review before the patient sees: items that could harm a patient shown them
unprepared wait for the holder's clinicians, who release each one or keep it withheld
with a reason.

Which items wait is the policy's rule (policy.awaiting_review): safeguarding items
always, items labelled as about a third party, and new results for
settings.RESULTS_REVIEW_DAYS. The policy keeps them from the patient's own view, and so
from anyone or anything that reads as the patient (a proxy, a share link, an app). This
module holds the queue and the two decisions; every decision is audited, and a decision
made twice (two clinicians on the same item) is refused, not repeated.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import QuerySet

import audit
from phr.models import Patient, RecordEntry

from .models import HarmReview, Withholding
from .policy import Actor, ActorRole, NotFound, awaiting_review

MIN_REASON_LENGTH = 10


class AlreadyReviewed(Exception):
    """Another clinician decided this item first: nothing was changed."""


class ReasonNeeded(ValueError):
    """Keeping an item withheld needs a reason the patient's care team and IG can read."""


def _reviewer(actor: Actor) -> None:
    if actor.role != ActorRole.CLINICIAN or actor.organisation is None or actor.second_factor_missing:
        raise NotFound


def pending(actor: Actor) -> QuerySet[RecordEntry]:
    """The items of the clinician's organisation waiting for review, oldest first: ids
    and columns to find them by, never their content (the page reads that through the
    policy)."""
    _reviewer(actor)
    return (
        RecordEntry.objects.filter(awaiting_review(), owner=actor.organisation)
        .only("pk", "patient_id", "resource_type", "category", "third_party", "first_received_at")
        .order_by("first_received_at", "pk")
    )


def waiting_for_patient(patient: Patient) -> int:
    """How many of the patient's items wait for review: the number alone, so the patient
    can be told that some do ("Some items are waiting for your care team to review")."""
    return RecordEntry.objects.filter(awaiting_review(), patient=patient).count()


def _held_entry(actor: Actor, entry_id) -> RecordEntry:
    """The item, locked, if it is the actor's organisation's and still waits; otherwise
    NotFound (another organisation's item, a guess) or AlreadyReviewed."""
    _reviewer(actor)
    try:
        pk = uuid.UUID(str(entry_id))
    except ValueError:
        raise NotFound from None
    entry = (
        RecordEntry.objects.select_for_update()
        .filter(pk=pk, owner=actor.organisation)
        .only("pk", "patient_id", "owner_id", "version")
        .first()
    )
    if entry is None:
        raise NotFound
    if HarmReview.objects.filter(entry=entry).exists():
        raise AlreadyReviewed
    if not RecordEntry.objects.filter(awaiting_review(), pk=entry.pk).exists():
        raise NotFound  # never held (an ordinary item): nothing to review
    return entry


@transaction.atomic
def release(*, actor: Actor, entry_id) -> HarmReview:
    """The holder shows the item to the patient."""
    entry = _held_entry(actor, entry_id)
    review = HarmReview.objects.create(
        entry=entry, decision=HarmReview.Decision.RELEASED, decided_by=actor.user
    )
    audit.record(
        "record.release",
        entries=[entry],
        patient_id=entry.patient_id,
        purpose="direct-care",
        detail={"harm_review": review.pk},
        **actor.audit_fields(),
    )
    return review


@transaction.atomic
def keep_withheld(*, actor: Actor, entry_id, reason: str) -> HarmReview:
    """The holder keeps the item from the patient, with a reason IG reviews."""
    reason = reason.strip()
    if len(reason) < MIN_REASON_LENGTH:
        raise ReasonNeeded(f"Give the reason in at least {MIN_REASON_LENGTH} characters")
    entry = _held_entry(actor, entry_id)
    review = HarmReview.objects.create(
        entry=entry, decision=HarmReview.Decision.WITHHELD, decided_by=actor.user, reason=reason
    )
    held = Withholding.objects.create(entry=entry, reason=reason, withheld_by=actor.user)
    audit.record(
        "record.withhold",
        entries=[entry],
        patient_id=entry.patient_id,
        purpose="direct-care",
        detail={"harm_review": review.pk, "withholding": held.pk},
        **actor.audit_fields(),
    )
    return review
