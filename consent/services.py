"""Workflows that change who may see a record. Each is atomic, checks the policy first,
and writes its audit event in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

import audit
from accounts.models import Notification
from accounts.tasks import notify
from phr.models import Category, Organisation, Patient, RecordEntry
from phr.render.dates import day_and_time

from .models import (
    BreakGlass,
    BreakGlassEnd,
    BreakGlassReason,
    BreakGlassReview,
    ConsentChoice,
    Decision,
    Scope,
    Withholding,
)
from .policy import (
    Action,
    Actor,
    ActorRole,
    Denied,
    NotFound,
    authorise,
    current_choices,
    decide,
    hidden_from_proxies,
    requested,
    sharing_for,
)

MIN_REASON_LENGTH = 10


class InvalidChange(ValueError):
    """The request names something impossible; the message says what to fix and
    ``field`` names the input it is about, when there is one."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def categories_to_choose(actor: Actor) -> list[str]:
    """The kinds of information this actor may make a sharing choice about: all of them
    for the patient; for someone acting for them, only those they may see themself (a
    proxy never decides who sees the patient's sensitive records)."""
    hidden = hidden_from_proxies() if actor.proxy is not None else set()
    return [c for c in Category.values if c not in hidden]


def _tell_patient_of_proxy_choice(actor: Actor, patient: Patient) -> None:
    from accounts.models import User

    for user in User.objects.filter(patient_link__patient=patient, is_active=True):
        notify(
            user,
            kind=Notification.Kind.GENERAL,
            title="Someone acting for you changed your sharing choices",
            body=f"{actor.user} changed who can see your record, acting for you. Check your "
            "sharing choices, and change them back if that is not what you want.",
            link=reverse("sharing:history"),
        )


@transaction.atomic
def change_consent(
    *,
    actor: Actor,
    patient_id,
    scope: str,
    decision: str,
    organisation: Organisation | None = None,
    category: str = "",
    until: datetime | None = None,
    reason: str = "",
) -> ConsentChoice:
    """Record one new sharing choice; only the patient themself may make it."""
    patient, _ = authorise(actor, Action.CHANGE_CONSENT, patient_id)
    if scope not in Scope.values:
        raise InvalidChange(f"Choose what the choice applies to: {', '.join(Scope.values)}", field="scope")
    if decision not in Decision.values:
        raise InvalidChange("Choose share, do not share, or back to the default", field="decision")
    needs_org = scope in (Scope.ORGANISATION, Scope.ORGANISATION_CATEGORY)
    needs_category = scope in (Scope.CATEGORY, Scope.ORGANISATION_CATEGORY)
    if needs_org != (organisation is not None):
        raise InvalidChange(
            "Choose an organisation" if needs_org else "This choice does not name an organisation",
            field="organisation",
        )
    if needs_category != bool(category):
        raise InvalidChange(
            "Choose a kind of information" if needs_category else "This choice does not name a kind",
            field="category",
        )
    if category and category not in categories_to_choose(actor):
        raise InvalidChange("Choose one of the kinds of information listed", field="category")
    if until is not None and until <= timezone.now():
        raise InvalidChange("The end date must be in the future", field="until")
    choice = ConsentChoice.objects.create(
        patient=patient,
        scope=scope,
        organisation=organisation,
        category=category,
        decision=decision,
        until=until,
        reason=reason.strip()[:500],
        recorded_by=actor.user,
    )
    audit.record(
        "consent.change",
        patient=patient,
        purpose="patient-choice",
        detail={
            "choice": choice.pk,
            "scope": scope,
            "decision": decision,
            "organisation": organisation.ods_code if organisation else None,
            "category": category,
            "until": until.isoformat() if until else None,
        },
        **actor.audit_fields(),
    )
    if actor.proxy is not None:
        _tell_patient_of_proxy_choice(actor, patient)
    return choice


def sharing_summary(patient: Patient, *, now: datetime | None = None) -> list[tuple[Organisation, dict]]:
    """For every member organisation, which categories it may see under current choices."""
    choices = current_choices(patient, now=now)
    return [(org, sharing_for(org, choices)) for org in Organisation.objects.order_by("name")]


def holders(patient: Patient) -> set[int]:
    """Which organisations hold items of this record: owners only, no clinical content."""
    return set(RecordEntry.objects.filter(patient=patient).values_list("owner_id", flat=True).distinct())


@dataclass(frozen=True)
class WhoCanSee:
    """One member organisation and what it can see of the record under current choices,
    in the words the sharing page and the JSON API both give."""

    organisation: Organisation
    sentence: str
    because: list[str]
    shared: list[str]  # categories, in the order Category lists them
    not_shared: list[str]
    holds_items: bool


def who_can_see(patient: Patient) -> list[WhoCanSee]:
    """Every member organisation, by name, and what it can see now, with the choices that
    decided it. Metadata only: the caller audits its READ_CONSENT."""
    from . import sharing_text

    held = holders(patient)
    rows = []
    for org, ruling in sharing_summary(patient):
        shared = sharing_text.permitted(ruling)
        rows.append(
            WhoCanSee(
                organisation=org,
                sentence=sharing_text.organisation_sentence(org, ruling, holds=org.pk in held),
                because=[sharing_text.choice_sentence(c) for c in sharing_text.deciding_choices(ruling)],
                shared=[c for c in Category.values if c in shared],
                not_shared=[c for c in Category.values if c not in shared],
                holds_items=org.pk in held,
            )
        )
    return rows


def declare_break_glass(*, actor: Actor, patient_id, reason_code: str, reason_text: str) -> BreakGlass:
    """Open a refused record to one clinician for a limited time, with a stated reason;
    the patient is told and IG reviews it. Declaring again while it is open returns the
    open one: its time is not extended and nobody is told twice."""
    from .policy import find_patient

    patient = find_patient(patient_id)
    if actor.role != ActorRole.CLINICIAN or actor.organisation is None or patient is None:
        _refuse_break_glass(actor, patient, patient_id)
    if reason_code not in BreakGlassReason.values:
        raise InvalidChange("Choose the reason for emergency access", field="reason_code")
    if len(reason_text.strip()) < MIN_REASON_LENGTH:
        raise InvalidChange(
            f"Explain the emergency in at least {MIN_REASON_LENGTH} characters", field="reason_text"
        )
    with transaction.atomic():
        # One declaration at a time per patient: a retried or double-clicked declaration
        # finds the first one open and returns it, rather than opening a second.
        list(Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk", flat=True))
        now = timezone.now()
        current = decide(actor, Action.READ_RECORD, patient, now=now)
        if current.break_glass is not None:
            return current.break_glass
        if set(current.categories) == set(Category.values):
            raise InvalidChange("You can already see this whole record: emergency access is not needed")
        glass = BreakGlass.objects.create(
            clinician=actor.user,
            organisation=actor.organisation,
            patient=patient,
            reason_code=reason_code,
            reason_text=reason_text.strip(),
            opened_at=now,
            expires_at=now + timedelta(minutes=settings.BREAK_GLASS_MINUTES),
        )
        audit.record(
            Action.BREAK_GLASS.value,
            patient=patient,
            purpose="emergency",
            reason=glass.get_reason_code_display()[:200],
            detail={
                "break_glass": glass.pk,
                "reason_code": reason_code,
                "minutes": settings.BREAK_GLASS_MINUTES,
            },
            **actor.audit_fields(),
        )
        for link in patient.accounts.select_related("user"):
            notify(
                link.user,
                kind=Notification.Kind.BREAK_GLASS,
                title="A clinician used emergency access to your record",
                link=reverse("sharing:access_log") + "#emergency-openings",
                body=(
                    f"{actor.user.get_full_name() or actor.label} at {actor.organisation.name} "
                    "opened your record in an emergency on "
                    f"{day_and_time(now)}. The reason they gave: "
                    f"{glass.get_reason_code_display()}. {glass.reason_text} "
                    "Our information governance team reviews every emergency access."
                ),
            )
    return glass


def _refuse_break_glass(actor: Actor, patient: Patient | None, patient_id) -> None:
    # Called before declare_break_glass opens its transaction, so the refusal is kept
    # although the request fails.
    audit.record(
        Action.BREAK_GLASS.value,
        patient=patient,
        outcome="deny",
        reason="not a clinician of a member organisation" if patient else "no such patient",
        detail={} if patient else requested(patient_id),
        **actor.audit_fields(),
    )
    raise NotFound


END_BREAK_GLASS = "breakglass.end"


def end_break_glass(*, actor: Actor, patient_id) -> BreakGlass:
    """End the clinician's own open emergency access to a patient now, once they have what
    they needed, rather than leave the record open until it lapses. Only the clinician
    who opened it, acting for the same organisation, can end it; for anyone else, and for
    a patient with no opening of theirs, it is NotFound (audited as refused), as declaring
    is. The patient's record is then refused to them again exactly as before."""
    from .policy import find_patient, open_break_glass

    patient = find_patient(patient_id)
    with transaction.atomic():
        glass = None
        if patient is not None:
            # One declaration or ending at a time per patient (as declare_break_glass).
            list(Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk", flat=True))
            now = timezone.now()
            glass = open_break_glass(actor, patient, now=now)
        if glass is not None:
            BreakGlassEnd.objects.create(glass=glass, ended_at=now)
            audit.record(
                END_BREAK_GLASS,
                patient=patient,
                purpose="emergency",
                reason="ended by the clinician before its time",
                detail={"break_glass": glass.pk, "was_due_to_end": glass.expires_at.isoformat()},
                **actor.audit_fields(),
            )
            return glass
    audit.record(
        END_BREAK_GLASS,
        patient=patient,
        outcome="deny",
        reason="no open emergency access of this clinician" if patient else "no such patient",
        detail={} if patient else requested(patient_id),
        **actor.audit_fields(),
    )
    raise NotFound


@transaction.atomic
def review_break_glass(
    *, actor: Actor, break_glass_id: int, verdict: str, note: str = ""
) -> BreakGlassReview:
    """An IG officer's verdict on an emergency access: appropriate or not, with a note."""
    if actor.role != ActorRole.IG_OFFICER:
        raise NotFound
    glass = BreakGlass.objects.select_for_update().filter(pk=break_glass_id).first()
    if glass is None:
        raise NotFound
    if verdict not in BreakGlassReview.Verdict.values:
        raise InvalidChange("Choose appropriate or not appropriate")
    if verdict == BreakGlassReview.Verdict.NOT_APPROPRIATE and not note.strip():
        raise InvalidChange("Say why the access was not appropriate")
    if BreakGlassReview.objects.filter(break_glass=glass).exists():
        raise InvalidChange("This emergency access has already been reviewed")
    review = BreakGlassReview.objects.create(
        break_glass=glass, verdict=verdict, note=note.strip(), reviewed_by=actor.user
    )
    audit.record(
        "breakglass.review",
        patient=glass.patient,
        purpose="governance",
        detail={"break_glass": glass.pk, "verdict": verdict},
        **actor.audit_fields(),
    )
    return review


@transaction.atomic
def withhold_from_patient(*, actor: Actor, entry: RecordEntry, reason: str) -> Withholding:
    """The owner keeps one of its items from the patient's own view, with a reason IG can review."""
    if (
        actor.role != ActorRole.CLINICIAN
        or actor.organisation is None
        or entry.owner_id != actor.organisation.pk
    ):
        raise Denied("Only the organisation that holds an item can withhold it")
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise InvalidChange(f"Give the reason in at least {MIN_REASON_LENGTH} characters")
    held = Withholding.objects.create(entry=entry, reason=reason.strip(), withheld_by=actor.user)
    audit.record(
        "record.withhold",
        entries=[entry],
        patient=entry.patient,
        purpose="direct-care",
        detail={"withholding": held.pk},
        **actor.audit_fields(),
    )
    return held


@transaction.atomic
def release_withholding(*, actor: Actor, withholding: Withholding) -> Withholding:
    """Show a withheld item to the patient again."""
    entry = withholding.entry
    if (
        actor.role != ActorRole.CLINICIAN
        or actor.organisation is None
        or entry.owner_id != actor.organisation.pk
    ):
        raise Denied("Only the organisation that holds an item can release it")
    withholding.released_at, withholding.released_by = timezone.now(), actor.user
    withholding.save(update_fields=["released_at", "released_by"])
    audit.record(
        "record.release",
        entries=[entry],
        patient=entry.patient,
        purpose="direct-care",
        detail={"withholding": withholding.pk},
        **actor.audit_fields(),
    )
    return withholding
