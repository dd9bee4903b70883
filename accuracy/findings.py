"""What the accuracy checks found, as each person may see it, and their answers.

One rule decides who sees a finding, on every channel (pages, FHIR DetectedIssue): the
finding is about some entries, and it is shown only to someone the policy lets see every
one of them (consent.policy.shown_entries), only while it is open, and only to its
audience: the patient's side (the patient, or someone acting for them) for findings meant
for the patient, a holder's clinicians for findings about their organisation's items.

Each side answers for itself: the patient says "This is right" (with a note the holders
can read) or asks the holders to correct it (one correction request per holder, routed
as every request is); a holder's clinician marks it "Checked, correct" or amends the item
(then the next check resolves the finding by itself). An answer closes the finding for
that side only, for that version of the items.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

import audit
from consent.policy import Actor, ActorRole, NotFound, RecordAccess, proxy_may, shown_versions
from phr.models import Organisation
from phr.vocabulary import type_name

from . import services
from .checks.base import RULES, Audience
from .models import ContactPreference, CorrectionRequest, Finding, FindingEntry, FindingResponse

PATIENT_SIDE = (Audience.PATIENT, Audience.BOTH)
HOLDER_SIDE = (Audience.HOLDER, Audience.BOTH)
MAX_NOTE = 500


def _all_shown(actor: Actor, patient_id) -> Q:
    """Findings none of whose entry versions the actor is refused: the entry as it is now
    (shown_entries), and the version the finding quotes, by that version's own category
    where the actor reads other holders' items by the patient's choices."""
    entries, categories = shown_versions(actor, patient_id)
    refused = ~Q(entry_id__in=entries)
    if categories is not None:
        refused |= ~Q(category__in=categories) & ~Q(owner=actor.organisation)
    return ~Q(Exists(FindingEntry.objects.filter(refused, finding=OuterRef("pk"))))


def for_patient(actor: Actor, patient_id, *, settled: bool = False) -> QuerySet[Finding]:
    """The open findings the patient's side should look at: meant for the patient, about
    items this actor may see, not answered yet from the patient's side. With ``settled``,
    also those the patient's side answered and those a later version resolved (a record
    of them all, as FHIR DetectedIssue serves them), by the same rule of who sees them."""
    found = Finding.objects.filter(patient_id=patient_id, audience__in=PATIENT_SIDE).filter(
        _all_shown(actor, patient_id)
    )
    if not settled:
        answered = FindingResponse.objects.filter(finding=OuterRef("pk"), organisation__isnull=True)
        found = found.filter(status=Finding.Status.OPEN).exclude(Exists(answered))
    return found.prefetch_related("implicated__owner").order_by("-found_at", "id")


def for_holder(actor: Actor, *, limit: int = 200, settled: bool = False) -> list[Finding]:
    """The open findings about the actor's organisation's items that its clinicians
    should look at, not answered by the organisation yet, each only if the actor may see
    every item it is about (a patient may have withheld the other holder's copy). With
    ``settled``, also those the organisation answered and those a later version resolved."""
    org = actor.organisation
    if (
        actor.role not in (ActorRole.CLINICIAN, ActorRole.SYSTEM)
        or org is None
        or actor.second_factor_missing
    ):
        return []
    found = Finding.objects.filter(audience__in=HOLDER_SIDE, implicated__owner=org)
    if not settled:
        answered = FindingResponse.objects.filter(finding=OuterRef("pk"), organisation=org)
        found = found.filter(status=Finding.Status.OPEN).exclude(Exists(answered))
    candidates = list(
        found.select_related("patient")
        .prefetch_related("implicated__owner")
        .distinct()
        .order_by("-found_at", "id")[:limit]
    )
    shown = []
    for patient_id in {f.patient_id for f in candidates}:
        allowed = set(
            Finding.objects.filter(pk__in=[f.pk for f in candidates if f.patient_id == patient_id])
            .filter(_all_shown(actor, patient_id))
            .values_list("pk", flat=True)
        )
        shown += [f for f in candidates if f.pk in allowed]
    return sorted(shown, key=lambda f: (f.found_at, str(f.pk)), reverse=True)


def visible_to(actor: Actor, finding_id, *, settled: bool = False) -> Finding:
    """One finding this actor may see and answer, or NotFound alike. With ``settled``, one
    it may see even though answered or resolved (for_patient, for_holder)."""
    found = Finding.objects.filter(pk=finding_id)
    finding = (found if settled else found.filter(status=Finding.Status.OPEN)).first()
    if finding is None:
        raise NotFound
    if actor.role == ActorRole.PATIENT and actor.patient_id == finding.patient_id:
        if (
            finding.audience in PATIENT_SIDE
            and for_patient(actor, finding.patient_id, settled=settled).filter(pk=finding.pk).exists()
        ):
            return finding
    elif finding in for_holder(actor, settled=settled):
        return finding
    raise NotFound


@dataclass(frozen=True)
class Said:
    """What one holder's copy says, as a finding shows it."""

    holder: Organisation
    entry_id: object
    words: str


def what_each_says(finding: Finding) -> list[Said]:
    rows = sorted(finding.implicated.all(), key=lambda r: (r.owner.name, str(r.entry_id)))
    return [Said(r.owner, r.entry_id, finding.says.get(str(r.entry_id), "")) for r in rows]


def _answer(finding: Finding, actor: Actor, outcome: str, note: str, organisation=None) -> FindingResponse:
    response = FindingResponse.objects.create(
        finding=finding,
        outcome=outcome,
        by=actor.user,
        by_label=actor.label[:200],
        organisation=organisation,
        note=note.strip()[:MAX_NOTE],
        at=timezone.now(),
    )
    audit.record(
        "finding.answer",
        patient_id=finding.patient_id,
        purpose="patient-access" if organisation is None else "direct-care",
        detail={"finding": str(finding.pk), "rule": finding.rule, "outcome": outcome},
        **actor.audit_fields(),
    )
    return response


class NotAHolder(ValueError):
    """The organisation named as right holds none of the items the finding is about."""


@transaction.atomic
def patient_says_right(
    access: RecordAccess, finding_id, note: str = "", *, right_holder: str = ""
) -> FindingResponse:
    """ "This is right": closed for the patient's side for these versions, with a note the
    holders can read, saying which holder's record is right when the patient names one
    (by ODS code, one of the holders of the items it is about)."""
    if not proxy_may(access.actor, "correct"):
        raise NotFound
    finding = visible_to(access.actor, finding_id)
    if right_holder:
        holders = {row.owner.ods_code: row.owner for row in finding.implicated.select_related("owner")}
        if right_holder not in holders:
            raise NotAHolder(right_holder)
        said = f"{holders[right_holder].name}'s record is right."
        note = f"{said} {note.strip()}".strip()
    return _answer(finding, access.actor, FindingResponse.Outcome.RIGHT, note)


def proposal(finding: Finding, said: Said, others: list[Said]) -> str:
    """What a request asks a holder to check: what the others say."""
    elsewhere = "; ".join(f"{o.holder.name}'s record says {o.words}" for o in others if o.words)
    if elsewhere:
        return f"Please check this against the other records: {elsewhere}."
    return "Please check this item."


@transaction.atomic
def ask_holders(
    access: RecordAccess, finding_id, *, contact_preference: str = ContactPreference.PORTAL
) -> list:
    """ "Ask them to correct it": one correction request to each holder of an item the
    finding is about, pre-filled with what the other holders say, routed and timed as
    every request is. A holder already asked about that item is not asked twice."""
    finding = visible_to(access.actor, finding_id)
    said = what_each_says(finding)
    made = []
    for one in said:
        try:
            made.append(
                services.submit_correction(
                    actor=access.actor,
                    entry_id=one.entry_id,
                    element="",
                    proposed=proposal(finding, one, [o for o in said if o is not one]),
                    reason=f"The portal's accuracy check found this: {finding.explanation}",
                    contact_preference=contact_preference,
                )
            )
        except services.DuplicateRequest as duplicate:
            made.append(duplicate.existing)
    _answer(finding, access.actor, FindingResponse.Outcome.ASKED, "")
    return made


@transaction.atomic
def holder_checked(actor: Actor, finding_id, note: str = "") -> FindingResponse:
    """A holder's clinician checked their organisation's item: it is correct."""
    finding = visible_to(actor, finding_id)
    return _answer(finding, actor, FindingResponse.Outcome.CHECKED, note, organisation=actor.organisation)


def own_item(actor: Actor, finding_id, entry_id) -> tuple[Finding, FindingEntry]:
    """A finding the actor's organisation has not answered, and one of its items it is
    about, for a clinician there to correct; NotFound alike for anything else."""
    finding = visible_to(actor, finding_id)
    row = finding.implicated.filter(entry_id=entry_id, owner=actor.organisation).first()
    if row is None or actor.role != ActorRole.CLINICIAN:
        raise NotFound
    return finding, row


def already_amended(actor: Actor, finding_id) -> bool:
    """Whether the actor's organisation has amended its item for this finding: what a
    second click of "Save" meets once the first one was saved (no longer an item to
    correct, so own_item refuses it)."""
    try:
        finding = visible_to(actor, finding_id, settled=True)
    except NotFound:
        return False
    return finding.responses.filter(
        organisation=actor.organisation, outcome=FindingResponse.Outcome.AMENDED
    ).exists()


@transaction.atomic
def holder_amended(
    actor: Actor, finding_id, entry_id, *, resource_json: str, based_on_version: int, note: str = ""
) -> int:
    """A holder's clinician corrects their organisation's item a finding is about: its
    next version with a Provenance naming the finding, every organisation that read an
    older version told (as after a correction request), the finding answered for the
    organisation; the next check resolves it once the items agree. The version number."""
    finding, row = own_item(actor, finding_id, entry_id)
    owner = actor.organisation
    rule = RULES.get(finding.rule)
    tag = f"{finding.pk.hex[:20]}-{row.entry_id.hex[:20]}"
    why = services.Why(
        produced_by=f"finding:{finding.pk.hex}",
        reason=f"Accuracy check: {rule.title if rule else finding.rule}",
        source=f"DetectedIssue/{finding.pk}",
        because="after the portal's accuracy check",
        notice_id=f"notice-{tag}",
        provenance_id=f"finding-{tag}",
    )
    entry, version = services.write_version(
        actor,
        entry_id=row.entry_id,
        owner=owner,
        resource_json=resource_json,
        based_on_version=based_on_version,
        why=why,
    )
    services.tell_readers(
        entry,
        owner,
        why,
        names=(f'"{entry.display or type_name(entry.resource_type).lower()}"', finding.patient.display_name),
        row={"finding": finding, "entry": entry},
        audited=lambda organisation: audit.record(
            "finding.notice",
            patient_id=finding.patient_id,
            purpose="direct-care",
            detail={"finding": str(finding.pk), "organisation": organisation.ods_code},
            **actor.audit_fields(),
        ),
    )
    _answer(finding, actor, FindingResponse.Outcome.AMENDED, note, organisation=owner)
    return version.number


def notes_for_holder(finding: Finding, organisation: Organisation | None = None) -> list[FindingResponse]:
    """What the others said about a finding: the patient's side ("This is right", or they
    asked), and the other organisations' clinicians ("Checked, correct", amended), with
    their notes; never who, only which organisation."""
    said = finding.responses.select_related("organisation")
    if organisation is not None:
        said = said.exclude(organisation=organisation)
    return list(said.order_by("at", "pk"))


SHOWN_SETTLED = 20  # the patient's page lists this many findings already answered or put right


def patient_side_answers(found: list[Finding]) -> dict:
    """Finding id -> the patient's side's latest answer to it, if any."""
    answers = {}
    for response in FindingResponse.objects.filter(finding__in=found, organisation__isnull=True).order_by(
        "at", "pk"
    ):
        answers[response.finding_id] = response
    return answers


def open_request_about(actor: Actor, entry_id):
    """The patient's open correction request about this item of the actor's organisation,
    if there is one (a holder then decides it, rather than correcting around it)."""
    return (
        CorrectionRequest.objects.open()
        .filter(entry_id=entry_id, owner=actor.organisation)
        .order_by("received_on", "pk")
        .first()
    )


def entries_with_findings(actor: Actor, patient_id) -> dict:
    """Entry id -> the open findings the patient's side should look at about it."""
    found: dict = {}
    for finding in for_patient(actor, patient_id):
        for row in finding.implicated.all():
            found.setdefault(row.entry_id, []).append(finding)
    return found
