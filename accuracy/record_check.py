"""Check before you share: a patient pauses sharing with some or all organisations, looks
at every item of their record, holder by holder, says whether each looks right, and
then chooses where to share again.

A pause is an ordinary "do not share" choice (consent.models.PAUSE_REASON says why it was
made), recorded through consent.services.change_consent and enforced by the policy as
any other. A check is of one version of one item: when the item changes, it needs a new
look. Every read of an item goes through the patient's own RecordAccess (audited), and
what a patient marked stays theirs: information governance gets totals only
(check_figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

import audit
from consent.models import PAUSE_REASON, ConsentChoice, Decision, Scope
from consent.policy import Actor, ActorRole, NotFound, RecordAccess, current_choices, patient_themself
from consent.services import InvalidChange, change_consent
from phr.models import Organisation, Patient, RecordEntry

from . import record_display as display
from .models import CheckOutcome, RecordCheck

CHECK_ACTION = "record.check"
FIGURES_DAYS = 30


# --- The pause -------------------------------------------------------------------------


def pauses(patient: Patient) -> list[ConsentChoice]:
    """The pauses in force: the patient's current choices made as a pause, the network's
    first, then by organisation name."""
    found = [
        choice
        for choice in current_choices(patient).values()
        if choice.decision == Decision.DENY and choice.reason == PAUSE_REASON
    ]
    return sorted(
        found, key=lambda c: (c.scope != Scope.NETWORK, c.organisation.name if c.organisation else "")
    )


@transaction.atomic
def pause_sharing(
    *, actor: Actor, organisations: list[Organisation], everyone: bool = False
) -> list[ConsentChoice]:
    """Pause sharing while the patient checks their record: one "do not share" choice for
    the whole network, or one per organisation named; one already paused is left as it is."""
    patient_id = actor.patient_id
    if not everyone and not organisations:
        raise InvalidChange("Choose the organisations to pause sharing with", field="organisations")
    choices = current_choices_of(actor)
    made = []
    if everyone:
        targets: list[tuple[str, Organisation | None]] = [(Scope.NETWORK, None)]
    else:
        targets = [(Scope.ORGANISATION, org) for org in organisations]
    for scope, organisation in targets:
        now = choices.get((scope, organisation.pk if organisation else None, ""))
        if now is not None and now.decision == Decision.DENY and now.reason == PAUSE_REASON:
            continue
        made.append(
            change_consent(
                actor=actor,
                patient_id=patient_id,
                scope=scope,
                decision=Decision.DENY,
                organisation=organisation,
                reason=PAUSE_REASON,
            )
        )
    return made


def current_choices_of(actor: Actor) -> dict[tuple, ConsentChoice]:
    """The acting patient's own choices in force (no patient may ask about another's)."""
    patient = Patient.objects.filter(pk=actor.patient_id).first() if actor.role == ActorRole.PATIENT else None
    if patient is None:
        raise NotFound
    return current_choices(patient)


# What the patient may choose when a pause ends: the three ordinary decisions.
END_DECISIONS = (Decision.PERMIT, Decision.DENY, Decision.DEFAULT)


@transaction.atomic
def end_pauses(*, actor: Actor, decisions: dict[int | None, str]) -> list[ConsentChoice]:
    """End pauses with the patient's choice for each (share, do not share, or back to the
    usual rule), keyed by organisation id, None for the network; only a pause in force
    can be ended, and the new choice is an ordinary one, with no pause reason."""
    paused = {
        choice.organisation_id: choice
        for choice in current_choices_of(actor).values()
        if choice.decision == Decision.DENY and choice.reason == PAUSE_REASON
    }
    made = []
    for key, decision in decisions.items():
        if key not in paused:
            raise InvalidChange("That organisation is not paused", field="organisations")
        if decision not in END_DECISIONS:
            raise InvalidChange("Choose share, do not share, or go back to the usual rule", field="decision")
        pause = paused[key]
        made.append(
            change_consent(
                actor=actor,
                patient_id=actor.patient_id,
                scope=pause.scope,
                decision=decision,
                organisation=pause.organisation,
            )
        )
    return made


# --- The check -------------------------------------------------------------------------


def _checked_now(patient_id) -> Exists:
    """Whether the patient has checked the entry's current version (for annotating)."""
    return Exists(
        RecordCheck.objects.filter(patient_id=patient_id, entry=OuterRef("pk"), version=OuterRef("version"))
    )


def _to_check(entries: QuerySet) -> QuerySet:
    """The items a patient checks: those of their record that are part of it now (an item
    its holder marked as entered in error is not)."""
    return display.record_items(entries).filter(entered_in_error=False)


@dataclass(frozen=True)
class Progress:
    checked: int
    total: int

    @property
    def done(self) -> bool:
        return self.checked >= self.total


@dataclass(frozen=True)
class HolderProgress:
    """One organisation holding items of the record, and how many of them are checked."""

    organisation_id: int
    name: str
    checked: int
    total: int


def _holder_rows(entries: QuerySet, patient_id) -> list[dict]:
    return list(
        _to_check(entries)
        .annotate(checked_now=_checked_now(patient_id))
        .values("owner_id", "owner__name")
        .annotate(total=Count("pk"), checked=Count("pk", filter=Q(checked_now=True)))
        .order_by("owner__name")
    )


def by_holder(access: RecordAccess) -> list[HolderProgress]:
    """For each holder of the items the patient sees, how many are checked in their
    current version: numbers only (audited as a count)."""
    rows = access.counts(
        lambda entries: _holder_rows(entries, access.patient.pk), detail={"page": "record check"}
    )
    return [HolderProgress(r["owner_id"], r["owner__name"], r["checked"], r["total"]) for r in rows]


def progress(access: RecordAccess, holders: list[HolderProgress] | None = None) -> Progress:
    """How many of the items the patient sees are checked in their current version, of
    how many ("37 of 52 checked")."""
    holders = by_holder(access) if holders is None else holders
    return Progress(sum(h.checked for h in holders), sum(h.total for h in holders))


def next_holder(holders: list[HolderProgress]) -> HolderProgress | None:
    """The first holder with items still to check, else the first holder."""
    return next((h for h in holders if h.checked < h.total), holders[0] if holders else None)


@dataclass(frozen=True)
class ItemToCheck:
    """One item as the check shows it, with the patient's answer for its current version."""

    row: display.ItemRow
    title: str
    details: list[tuple[str, str]]
    outcome: str  # "" while not checked in this version

    @property
    def outcome_words(self) -> str:
        return CheckOutcome(self.outcome).label if self.outcome else ""


def items_of_holder(access: RecordAccess, organisation_id: int) -> list[ItemToCheck]:
    """The items one organisation holds on the patient's record, those still to check
    first, read through the patient's own record (audited as disclosed)."""
    patient_id = access.patient.pk
    entries = access.read(
        lambda qs: (
            _to_check(qs)
            .filter(owner_id=organisation_id)
            .annotate(checked_now=_checked_now(patient_id))
            .select_related("owner")
            .order_by("checked_now", "resource_type", "-clinical_date", "pk")
        ),
        detail={"page": "record check"},
    )
    answers = _answers(patient_id, entries)
    return [
        ItemToCheck(row, display.patient_title(row.entry), _details(row), answers.get(row.entry.pk, ""))
        for row in display.item_rows(entries)
    ]


def _details(row: display.ItemRow) -> list[tuple[str, str]]:
    """What the item says, part by part, and its status unless a part already gives it."""
    details = list(display.item_details(row.entry))
    if not any(label == "Status" for label, _ in details):
        details.append(("Status", row.status))
    return details


def _answers(patient_id, entries: list[RecordEntry]) -> dict:
    """The patient's answer for each entry's current version."""
    versions = {e.pk: e.version for e in entries}
    found = RecordCheck.objects.filter(patient_id=patient_id, entry_id__in=list(versions)).values_list(
        "entry_id", "version", "outcome"
    )
    return {entry_id: outcome for entry_id, version, outcome in found if versions.get(entry_id) == version}


@transaction.atomic
def mark(access: RecordAccess, entry_id, outcome: str) -> tuple[RecordEntry, RecordCheck]:
    """Record the patient's answer for the current version of one item of their own
    record; NotFound alike for an item that is missing, not theirs or not shown to them."""
    actor = access.actor
    patient_themself(actor, access.patient.pk)
    if outcome not in CheckOutcome.values:
        raise InvalidChange("Choose whether the item looks right", field="outcome")
    entry = access.read_one(entry_id, detail={"page": "record check"})
    if entry.entered_in_error or entry.resource_type in display.NOT_ITEMS:
        raise NotFound
    check, _ = RecordCheck.objects.update_or_create(
        patient=access.patient,
        entry=entry,
        version=entry.version,
        defaults={"outcome": outcome, "checked_at": timezone.now(), "checked_by": actor.user},
    )
    # The event says which version was checked, never the answer: what a patient marked
    # is theirs, and the audit trail is read by information governance.
    audit.record(
        CHECK_ACTION,
        entries=[entry],
        patient=access.patient,
        purpose="patient-access",
        detail={"page": "record check"},
        **actor.audit_fields(),
    )
    return entry, check


# --- Figures for information governance ------------------------------------------------


@dataclass(frozen=True)
class CheckFigures:
    """The network's checking in numbers: never a patient, an item or an answer."""

    checked_items: int
    something_wrong: int
    days: int

    @property
    def something_wrong_percent(self) -> int | None:
        if not self.checked_items:
            return None
        return round(100 * self.something_wrong / self.checked_items)


def check_figures(*, now: datetime | None = None, days: int = FIGURES_DAYS) -> CheckFigures:
    """How many item checks were made in the last ``days`` days, and how many of them
    said something is wrong."""
    since = (now or timezone.now()) - timedelta(days=days)
    totals = RecordCheck.objects.filter(checked_at__gte=since).aggregate(
        checked=Count("pk"), wrong=Count("pk", filter=Q(outcome=CheckOutcome.SOMETHING_WRONG))
    )
    return CheckFigures(totals["checked"], totals["wrong"], days)
