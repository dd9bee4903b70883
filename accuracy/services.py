"""The correction workflow: submit, review, ask, extend, decide, disagree, rebut, notify.

Each step is one function taking the acting user's policy Actor. Every step checks who
may act (a patient on their own request; a clinician of the organisation that holds
the item), checks the step is one the HL7 guide allows from the request's current
state, and refuses a form based on an older revision of the request: of two clinicians
acting at once exactly one wins and the other is told what happened.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

import audit
from accounts.models import Membership, Notification, Role, User
from accounts.tasks import notify
from audit.models import AuditEvent
from consent.policy import Actor, ActorRole, NotFound, open_record, proxy_may
from phr import contact_details
from phr.amend import amend_entry
from phr.ingest import UnusableInput, ingest_documents, parse_json
from phr.models import EntryVersion, Organisation, RecordEntry
from phr.nhs_number import ODS_SYSTEM
from phr.render.dates import day

from . import elements, notifications, selectors
from .deadlines import profile
from .models import (
    OPEN_STATUSES,
    BusinessStatus,
    ContactPreference,
    CorrectionRequest,
    DenialReason,
    DownstreamNotice,
    Message,
    Statement,
    Status,
    TimelineEvent,
    overdue_on,
    waiting_on_patient,
)

MIN_TEXT = 5


class InvalidStep(ValueError):
    """The input cannot be used; the message says what to fix, ``field`` names the input."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class Conflict(Exception):
    """Someone else changed the request first; the message says what happened."""


class DuplicateRequest(Exception):
    """An open request on the same item exists: show it instead of making another."""

    def __init__(self, existing: CorrectionRequest):
        super().__init__("You have already asked for this item to be corrected")
        self.existing = existing


# Which (status, businessStatus) each step may start from, and where it leads.
Q, R, W = (
    (Status.READY, BusinessStatus.QUEUED),
    (Status.IN_PROGRESS, BusinessStatus.IN_REVIEW),
    (
        Status.IN_PROGRESS,
        BusinessStatus.WAITING,
    ),
)
STEPS = {
    "start_review": ({Q, W}, R),
    "ask_information": ({R}, W),
    "patient_reply": ({W}, R),
    "accept": ({R}, (Status.COMPLETED, BusinessStatus.AMENDED)),
    "accept_in_part": ({R}, (Status.COMPLETED, BusinessStatus.PARTIAL)),
    "deny": ({R}, (Status.COMPLETED, BusinessStatus.DENIED)),
    "withdraw": ({Q, R, W}, (Status.CANCELLED, BusinessStatus.CANCELLED)),
    "log_disagreement": (
        {(Status.COMPLETED, BusinessStatus.DENIED), (Status.COMPLETED, BusinessStatus.PARTIAL)},
        (Status.COMPLETED, BusinessStatus.DISAGREEMENT),
    ),
}
STEP_WORDS = {
    "submitted": "Request received",
    "start_review": "Review started",
    "ask_information": "More information asked for",
    "patient_reply": "Patient replied",
    "accept": "Corrected",
    "accept_in_part": "Partly corrected",
    "deny": "Not corrected",
    "withdraw": "Withdrawn",
    "log_disagreement": "Statement of disagreement added",
    "rebuttal": "Response to the disagreement added",
    "extend": "Deadline extended",
    "assign": "Assigned",
    "message": "Message",
    "reminder": "Reminder sent",
    "escalation": "Escalated: overdue",
    "notice": "Organisations that saw the old version were told",
}


# --- Submitting -----------------------------------------------------------------------


@transaction.atomic
def contact_problems(preference: str, *, phone: str = "", address: str = "", postcode: str = "") -> list:
    """What is wrong with how the patient asked to be contacted, as (field, message)
    pairs: a call needs a phone number, a letter an address and a postcode, each real.
    Every channel (the form, the JSON API) asks this, and submit_correction refuses
    what it finds."""
    problems = []
    if preference not in ContactPreference.values:
        return [("contact_preference", "Choose how we should contact you")]
    if preference == ContactPreference.PHONE:
        if not phone.strip():
            problems.append(("contact_phone", "Enter the phone number to call you on"))
        elif contact_details.phone_number(phone) is None:
            problems.append(("contact_phone", contact_details.PHONE_PROBLEM))
    if preference == ContactPreference.LETTER:
        if not address.strip():
            problems.append(("contact_address", "Enter the address to write to"))
        elif contact_details.has_direction_controls(address):
            problems.append(("contact_address", "Remove the hidden text-direction characters"))
        if not postcode.strip():
            problems.append(("contact_postcode", "Enter the postcode"))
        elif contact_details.uk_postcode(postcode) is None:
            problems.append(
                ("contact_postcode", f"Enter a real postcode, like {contact_details.POSTCODE_EXAMPLE}")
            )
    return problems


def submit_correction(
    *,
    actor: Actor,
    entry_id,
    element: str,
    proposed: str,
    reason: str,
    contact_preference: str,
    contact_phone: str = "",
    contact_address: str = "",
    contact_postcode: str = "",
) -> CorrectionRequest:
    """A patient flags one item of their own record; the request goes to the item's
    data owner, taken from the stored entry, never from the request. Where to phone or
    write is kept only for the way of contact chosen, and only when it is real."""
    if actor.role != ActorRole.PATIENT or not proxy_may(actor, "correct"):
        raise NotFound
    entry = open_record(actor, actor.patient_id).read_one(entry_id, detail={"purpose": "correction request"})
    existing = CorrectionRequest.objects.open().filter(entry=entry).first()
    if existing is not None:
        raise DuplicateRequest(existing)
    label = elements.label_of(entry.resource_type, element)
    if label is None:
        raise InvalidStep("Choose which part of the item is wrong", "element")
    if len(proposed.strip()) < 2:
        raise InvalidStep("Say what it should say", "proposed")
    if len(reason.strip()) < MIN_TEXT:
        raise InvalidStep("Say why it is wrong", "reason")
    for field, message in contact_problems(
        contact_preference, phone=contact_phone, address=contact_address, postcode=contact_postcode
    ):
        raise InvalidStep(message, field)
    rules = profile()
    today = timezone.localdate()
    due = rules.due(today)
    request = CorrectionRequest.objects.create(
        patient_id=actor.patient_id,
        entry=entry,
        owner=entry.owner,
        entry_version=entry.version,
        element=element,
        element_label=label,
        item_display=entry.display[:255],
        current_text=elements.says(json.loads(entry.json), element)[:2000] if element else entry.display,
        proposed=proposed.strip(),
        reason=reason.strip(),
        contact_preference=contact_preference,
        contact_phone=contact_details.phone_number(contact_phone) or ""
        if contact_preference == ContactPreference.PHONE
        else "",
        contact_address=contact_address.strip() if contact_preference == ContactPreference.LETTER else "",
        contact_postcode=contact_details.uk_postcode(contact_postcode) or ""
        if contact_preference == ContactPreference.LETTER
        else "",
        jurisdiction=rules.key,
        received_on=today,
        first_due_on=due,
        due_on=due,
        requested_by=actor.user,
    )
    _timeline(request, actor, "submitted")
    _audit("correction.submit", request, actor, entries=[entry])
    for member in _staff_of(entry.owner):
        notify(
            member,
            kind=Notification.Kind.CORRECTION,
            title="A new correction request",
            body=f"{notifications.asked(request)} Decide by {day(due)}.",
            link=notifications.staff_page(request),
        )
    return request


# --- Finding requests -----------------------------------------------------------------


def request_for(actor: Actor, request_id) -> CorrectionRequest:
    """Fetch-and-authorise: one of the requests the actor may see (selectors.visible_requests);
    anything else, or nothing, is NotFound alike, and a guessed id loads nothing."""
    try:
        pk = uuid.UUID(str(request_id))
    except ValueError:
        raise NotFound from None
    found = selectors.visible_requests(actor).filter(pk=pk).first()
    if found is None:
        raise NotFound
    return found


def soon_days() -> int:
    """How many days ahead "due soon" looks: as far as the first reminder warns."""
    return max(settings.CORRECTION_REMINDER_DAYS)


def queue_views(user, today: date) -> dict[str, models.Q]:
    """The ways staff look at their organisation's queue, as conditions on its requests:
    the home page counts them and the queue lists them, by the same rules."""
    still_open = models.Q(status__in=OPEN_STATUSES)
    return {
        "open": still_open,
        "overdue": overdue_on(today),
        "due_soon": still_open & models.Q(due_on__gte=today, due_on__lte=today + timedelta(days=soon_days())),
        "waiting": waiting_on_patient(),
        "mine": still_open & models.Q(assigned_to=user),
        "decided": ~still_open,
    }


@dataclass(frozen=True)
class Workload:
    """What waits for an organisation's records staff, and for one of them."""

    open: int
    overdue: int
    due_soon: int  # due today or within soon_days(), not overdue
    waiting: int  # waiting for more information from the patient
    mine: int  # open and assigned to this member of staff
    soon_days: int


def workload(organisation: Organisation, user, today: date | None = None) -> Workload:
    """Counts of the organisation's open requests in one query, each as its queue view
    (queue_views) lists them."""
    views = queue_views(user, today or timezone.localdate())
    counted = ("open", "overdue", "due_soon", "waiting", "mine")
    counts = CorrectionRequest.objects.filter(owner=organisation).aggregate(
        **{name: models.Count("pk", filter=views[name]) for name in counted}
    )
    return Workload(soon_days=soon_days(), **counts)


def disputed_entry_ids(entry_ids) -> set:
    """Entries under dispute: an open request, or a disagreement standing beside them."""
    return set(
        CorrectionRequest.objects.disputing()
        .filter(entry_id__in=list(entry_ids))
        .values_list("entry_id", flat=True)
    )


# --- Steps ----------------------------------------------------------------------------


def _step(actor: Actor, request_id, revision: int, step: str, *, by_patient: bool) -> CorrectionRequest:
    """Lock the request, check who acts, the revision and the guide's state rules."""
    request = request_for(actor, request_id)
    if (actor.role == ActorRole.PATIENT) != by_patient or not proxy_may(actor, "correct"):
        raise NotFound
    request = CorrectionRequest.objects.select_for_update().get(pk=request.pk)
    if request.revision != revision:
        last = request.timeline.order_by("-at", "-id").first()
        what = f"{STEP_WORDS.get(last.kind, last.kind)} by {last.actor_label}" if last else "a change"
        raise Conflict(
            f"This request changed while you were looking at it: {what}. Nothing was saved; look again."
        )
    if step in STEPS and (request.status, request.business_status) not in STEPS[step][0]:
        raise Conflict(
            f"This request is {request.get_business_status_display().lower()}: "
            f"it cannot be {STEP_WORDS[step].lower()} now."
        )
    return request


def _advance(
    request: CorrectionRequest, actor: Actor, step: str, note: str = "", **changes
) -> CorrectionRequest:
    if step in STEPS:
        request.status, request.business_status = STEPS[step][1]
    for name, value in changes.items():
        setattr(request, name, value)
    request.revision += 1
    request.save()
    _timeline(request, actor, step, note)
    _audit(f"correction.{step}", request, actor)
    return request


@transaction.atomic
def start_review(*, actor: Actor, request_id, revision: int) -> CorrectionRequest:
    """The owner starts reviewing (also resumes after waiting for information)."""
    request = _step(actor, request_id, revision, "start_review", by_patient=False)
    return _advance(request, actor, "start_review", assigned_to=request.assigned_to or actor.user)


@transaction.atomic
def ask_information(*, actor: Actor, request_id, revision: int, question: str) -> CorrectionRequest:
    """The owner asks the patient for more information; the clock keeps running."""
    if len(question.strip()) < MIN_TEXT:
        raise InvalidStep("Write your question to the patient", "question")
    request = _step(actor, request_id, revision, "ask_information", by_patient=False)
    _write(Message, request, actor, from_patient=False, body=question.strip())
    _tell_patient(request, "We need more information about your correction request", question.strip())
    return _advance(request, actor, "ask_information")


@transaction.atomic
def patient_reply(*, actor: Actor, request_id, revision: int, body: str) -> CorrectionRequest:
    """The patient answers; a request waiting for information goes back to review."""
    if len(body.strip()) < 2:
        raise InvalidStep("Write your reply", "body")
    request = request_for(actor, request_id)
    waiting = request.business_status == BusinessStatus.WAITING
    request = _step(actor, request_id, revision, "patient_reply" if waiting else "message", by_patient=True)
    if not request.is_open:
        raise Conflict("This request is closed: messages can no longer be added.")
    _write(Message, request, actor, from_patient=True, body=body.strip())
    for member in _staff_of(request.owner):
        notify(
            member,
            kind=Notification.Kind.CORRECTION,
            title="A patient replied on a correction request",
            body=(
                f"{notifications.patient(request)} replied on their request to correct "
                f"{notifications.item(request)}."
            ),
            link=notifications.staff_page(request),
        )
    return _advance(request, actor, "patient_reply" if waiting else "message")


@transaction.atomic
def post_message(*, actor: Actor, request_id, revision: int, body: str) -> CorrectionRequest:
    """The owner writes to the patient on the request's thread."""
    if len(body.strip()) < 2:
        raise InvalidStep("Write your message", "body")
    request = _step(actor, request_id, revision, "message", by_patient=False)
    _write(Message, request, actor, from_patient=False, body=body.strip())
    _tell_patient(request, "A message about your correction request", body.strip())
    return _advance(request, actor, "message")


@transaction.atomic
def extend_deadline(
    *, actor: Actor, request_id, revision: int, reason: str, until: date | None = None
) -> CorrectionRequest:
    """Extend once, only before the first deadline, with a reason the patient is told."""
    request = _step(actor, request_id, revision, "extend", by_patient=False)
    rules = profile()
    if not request.is_open:
        raise Conflict("This request is already decided.")
    if request.is_extended:
        raise InvalidStep("The deadline can be extended only once", "until")
    if timezone.localdate() > request.first_due_on:
        raise InvalidStep("The deadline can be extended only before it has passed", "until")
    if len(reason.strip()) < MIN_TEXT:
        raise InvalidStep("Give the reason for the extension", "reason")
    latest = rules.latest_extension(request.first_due_on)
    new_due = until or latest
    if not request.first_due_on < new_due <= latest:
        raise InvalidStep(
            f"Choose a date after {day(request.first_due_on)} and no later than {day(latest)}",
            "until",
        )
    _tell_patient(
        request,
        "We need more time to decide your correction request",
        f"We will decide by {day(new_due)}. The reason: {reason.strip()}",
    )
    return _advance(
        request, actor, "extend", note=reason.strip(), due_on=new_due, extension_reason=reason.strip()
    )


@transaction.atomic
def assign(*, actor: Actor, request_id, revision: int, colleague: User) -> CorrectionRequest:
    """Hand the request to a colleague at the same organisation."""
    request = _step(actor, request_id, revision, "assign", by_patient=False)
    if not Membership.objects.filter(
        user=colleague, organisation=request.owner, user__role=Role.CLINICIAN
    ).exists():
        raise InvalidStep("Choose a colleague at your organisation", "colleague")
    notify(
        colleague,
        kind=Notification.Kind.CORRECTION,
        title="A correction request was assigned to you",
        body=(
            f"{notifications.who(actor)} assigned you {notifications.patient(request)}'s "
            f"request to correct {notifications.item(request)}. Decide by {day(request.due_on)}."
        ),
        link=notifications.staff_page(request),
    )
    return _advance(request, actor, "assign", note=str(colleague), assigned_to=colleague)


@transaction.atomic
def withdraw(*, actor: Actor, request_id, revision: int, note: str = "") -> CorrectionRequest:
    """The patient withdraws, or the owner withdraws on the patient's behalf."""
    by_patient = actor.role == ActorRole.PATIENT
    request = _step(actor, request_id, revision, "withdraw", by_patient=by_patient)
    if not by_patient:
        if len(note.strip()) < MIN_TEXT:
            raise InvalidStep("Say how the patient asked to withdraw", "note")
        _tell_patient(request, "Your correction request was withdrawn", note.strip())
    return _advance(request, actor, "withdraw", note=note.strip())


@dataclass(frozen=True)
class Why:
    """Why an item is amended, and what the change answers to: a patient's correction
    request (a Task) or an accuracy check's finding (a DetectedIssue)."""

    produced_by: str  # the version's provenance in the store: "correction:<id>", "finding:<id>"
    reason: str  # Provenance.reason
    source: str  # Provenance.entity: "Task/<id>", "DetectedIssue/<id>"
    because: str  # for the notices: "at the patient's request", "after the portal's accuracy check"
    notice_id: str  # the notices' Communication ids start with this
    provenance_id: str  # the Provenance's id (at most 64 characters)


def _because_of(request: CorrectionRequest) -> Why:
    return Why(
        produced_by=f"correction:{request.pk.hex}",
        reason="Patient request for correction",
        source=f"Task/{request.pk}",
        because="at the patient's request",
        notice_id=f"notice-{request.pk.hex[:24]}",
        provenance_id=f"correction-{request.pk.hex}",
    )


def write_version(
    actor: Actor, *, entry_id, owner: Organisation, resource_json: str, based_on_version: int, why: Why
) -> tuple[RecordEntry, EntryVersion]:
    """The item's next version, written by its owner's clinician, with its Provenance."""
    try:
        # Parsed as the ingest parses: a decimal such as 4.10 keeps its precision.
        resource = parse_json(str(resource_json).encode(), "the amended item")
    except UnusableInput:
        raise InvalidStep("The amended item is not valid JSON", "resource") from None
    if not isinstance(resource, dict):
        raise InvalidStep("The amended item must be one FHIR resource", "resource")
    from phr.amend import InvalidAmendment, StaleVersion

    try:
        entry, version = amend_entry(
            entry_id=entry_id,
            based_on_version=based_on_version,
            resource=resource,
            produced_by=why.produced_by,
            changed_by=f"{actor.label} ({owner.name})",
        )
    except StaleVersion as stale:
        raise Conflict(
            f"The item changed while you were editing it: {stale}. Start again from the current version."
        ) from None
    except InvalidAmendment as invalid:
        raise InvalidStep(f"The amended item is not valid FHIR R4: {invalid}", "resource") from None
    _store_provenance(actor, owner, entry, version, why)
    return entry, version


def _amend(actor: Actor, request: CorrectionRequest, resource_json: str, based_on_version: int) -> int:
    _, version = write_version(
        actor,
        entry_id=request.entry_id,
        owner=request.owner,
        resource_json=resource_json,
        based_on_version=based_on_version,
        why=_because_of(request),
    )
    return version.number


def _store_provenance(
    actor: Actor, owner: Organisation, entry: RecordEntry, version: EntryVersion, why: Why
) -> None:
    provenance = {
        "resourceType": "Provenance",
        "id": why.provenance_id,
        "target": [{"reference": f"{entry.resource_type}/{entry.fhir_id}/_history/{version.number}"}],
        "recorded": version.recorded_at.isoformat(),
        "activity": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "UPDATE"}]
        },
        "reason": [{"text": why.reason}],
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                        }
                    ]
                },
                "who": {"display": actor.label},
                "onBehalfOf": {
                    "identifier": {"system": ODS_SYSTEM, "value": owner.ods_code},
                    "display": owner.name,
                },
            }
        ],
        "entity": [{"role": "source", "what": {"reference": why.source}}],
    }
    result = ingest_documents([("correction", provenance)], organisation=owner, source="correction")
    if result.rejected:  # our own construction: a rejection is a bug, not user input
        raise RuntimeError(f"the Provenance for {why.produced_by} was rejected: {result.issues}")


@transaction.atomic
def accept(
    *,
    actor: Actor,
    request_id,
    revision: int,
    resource_json: str,
    based_on_version: int,
    in_part: bool = False,
    note: str = "",
) -> CorrectionRequest:
    """Amend the item as asked (or in part) and tell everyone who read the old version."""
    step = "accept_in_part" if in_part else "accept"
    request = _step(actor, request_id, revision, step, by_patient=False)
    if in_part and len(note.strip()) < MIN_TEXT:
        raise InvalidStep("Say which part was corrected and why the rest was not", "note")
    number = _amend(actor, request, resource_json, based_on_version)
    _advance(
        request,
        actor,
        step,
        note=note.strip(),
        decided_at=timezone.now(),
        decided_by=actor.user,
        amended_version=number,
        decision_text=note.strip(),
    )
    _tell_patient(request, "Your correction request was decided", decision_letter(request))
    send_downstream_notices(request, actor)
    return request


@transaction.atomic
def deny(*, actor: Actor, request_id, revision: int, code: str, text: str) -> CorrectionRequest:
    """Refuse with a reason from the list and an explanation; the letter names the patient's rights."""
    request = _step(actor, request_id, revision, "deny", by_patient=False)
    if code not in DenialReason.values:
        raise InvalidStep("Choose the reason for not correcting the item", "code")
    if len(text.strip()) < MIN_TEXT:
        raise InvalidStep("Explain the decision in words the patient will understand", "text")
    _advance(
        request,
        actor,
        "deny",
        note=text.strip(),
        decided_at=timezone.now(),
        decided_by=actor.user,
        decision_code=code,
        decision_text=text.strip(),
    )
    _tell_patient(request, "Your correction request was decided", decision_letter(request))
    return request


@transaction.atomic
def log_disagreement(*, actor: Actor, request_id, revision: int, text: str) -> CorrectionRequest:
    """After a refusal the patient's statement of disagreement stands beside the item."""
    if len(text.strip()) < MIN_TEXT:
        raise InvalidStep("Write your statement of disagreement", "text")
    request = _step(actor, request_id, revision, "log_disagreement", by_patient=True)
    _write(Statement, request, actor, kind=Statement.Kind.DISAGREEMENT, text=text.strip())
    for member in _staff_of(request.owner):
        notify(
            member,
            kind=Notification.Kind.CORRECTION,
            title="A patient recorded a disagreement",
            body=(
                f"{notifications.patient(request)} disagrees with the decision on "
                f"{notifications.item(request)} and recorded a statement. You may add a response, "
                "which the patient will see."
            ),
            link=notifications.staff_page(request),
        )
    return _advance(request, actor, "log_disagreement")


@transaction.atomic
def add_rebuttal(*, actor: Actor, request_id, revision: int, text: str) -> CorrectionRequest:
    """The owner's response to a statement of disagreement; the patient sees it."""
    if len(text.strip()) < MIN_TEXT:
        raise InvalidStep("Write your response", "text")
    request = _step(actor, request_id, revision, "rebuttal", by_patient=False)
    if request.business_status != BusinessStatus.DISAGREEMENT:
        raise Conflict("There is no statement of disagreement to respond to.")
    if request.statements.filter(kind=Statement.Kind.REBUTTAL).exists():
        raise Conflict("A response has already been added.")
    _write(Statement, request, actor, kind=Statement.Kind.REBUTTAL, text=text.strip())
    _tell_patient(request, "The organisation responded to your disagreement", text.strip())
    return _advance(request, actor, "rebuttal")


# --- Letters and notices ----------------------------------------------------------------


def decision_letter(request: CorrectionRequest, item: str | None = None) -> str:
    """The decision in plain words, with the patient's rights after a refusal; ``item``
    names the item as the reader may see it (selectors.Copies.item_name)."""
    rules = profile()
    item = item or request.item_display or request.element_label
    if request.business_status == BusinessStatus.AMENDED:
        return f'We have corrected "{item}" as you asked. Everyone who saw the old version has been told.'
    lines = []
    if request.business_status == BusinessStatus.PARTIAL:
        lines.append(f'We have corrected part of "{item}". {request.decision_text}')
    else:
        lines.append(
            f'We have decided not to change "{item}". Our reason: {request.get_decision_code_display()}. '
            f"{request.decision_text}"
        )
    lines.append(
        "You have the right to add a statement of disagreement. It will be kept beside the item and "
        "everyone who looks at your record will see it."
    )
    lines.append(f"You also have the right to complain to {rules.complaint_body}: {rules.complaint_url}")
    return "\n\n".join(lines)


def organisations_that_read(entry: RecordEntry, before_version: int) -> dict[int, set[int]]:
    """From the audit trail: organisations (other than the owner) that were shown an
    older version of the entry, with the versions each saw."""
    prefix = f"{entry.pk.hex}:"
    seen: dict[int, set[int]] = {}
    events = (
        AuditEvent.objects.filter(
            patient_id=entry.patient_id,
            outcome="permit",
            action__startswith="record.",
            organisation__isnull=False,
        )
        .filter(models.Q(inline_entries__contains=prefix) | models.Q(disclosure__refs__contains=prefix))
        .exclude(organisation_id=entry.owner_id)
        .select_related("disclosure")
    )
    for event in events:
        for ref in event.entries:
            if ref.startswith(prefix) and int(ref.rsplit(":", 1)[1]) < before_version:
                seen.setdefault(event.organisation_id, set()).add(int(ref.rsplit(":", 1)[1]))
    return seen


def send_downstream_notices(request: CorrectionRequest, actor: Actor) -> list[DownstreamNotice]:
    """Tell every organisation that read the old version: inbox, email and a FHIR Communication."""
    entry = RecordEntry.objects.get(pk=request.entry_id)
    notices = tell_readers(
        entry,
        request.owner,
        _because_of(request),
        names=(notifications.item(request), notifications.patient(request)),
        row={"request": request},
        audited=lambda organisation: _audit(
            "correction.notice", request, actor, detail={"organisation": organisation.ods_code}
        ),
    )
    if notices:
        _timeline(request, actor, "notice", ", ".join(n.organisation.name for n in notices))
    return notices


def tell_readers(
    entry: RecordEntry, owner: Organisation, why: Why, *, names: tuple[str, str], row: dict, audited
) -> list[DownstreamNotice]:
    """Every organisation that was shown an older version of the amended entry is told:
    a notice its system can fetch (a FHIR Communication), and its staff's inbox and email
    (naming the patient and the item only to those the policy lets see it now)."""
    readers = organisations_that_read(entry, entry.version)
    notices = []
    for organisation in Organisation.objects.filter(pk__in=readers):
        versions = sorted(readers[organisation.pk])
        communication = {
            "resourceType": "Communication",
            "id": f"{why.notice_id}-{organisation.pk}",
            "status": "completed",
            "category": [{"text": "Correction notice"}],
            "subject": {"reference": f"Patient/{entry.patient_id}"},
            "about": [
                {"reference": f"{entry.resource_type}/{entry.fhir_id}/_history/{entry.version}"},
                {"reference": why.source},
            ],
            "sent": timezone.now().isoformat(),
            "sender": {"identifier": {"system": ODS_SYSTEM, "value": owner.ods_code}},
            "recipient": [{"identifier": {"system": ODS_SYSTEM, "value": organisation.ods_code}}],
            "payload": [
                {
                    "contentString": (
                        f"{owner.name} corrected an item your organisation saw (version "
                        f"{', '.join(map(str, versions))}). Read the current version before relying on it."
                    )
                }
            ],
        }
        notice = DownstreamNotice.objects.create(
            organisation=organisation,
            versions_read=",".join(map(str, versions)),
            communication=json.dumps(communication, sort_keys=True),
            **row,
        )
        for member in _staff_of(organisation):
            body, link = notifications.corrected_elsewhere(
                member, organisation, owner, entry, versions, why.because, *names
            )
            notify(
                member,
                kind=Notification.Kind.CORRECTION,
                title="An item you saw has been corrected",
                body=body,
                link=link,
            )
        audited(organisation)
        notices.append(notice)
    return notices


# --- Helpers ----------------------------------------------------------------------------


def _write(model, request: CorrectionRequest, actor: Actor, **fields):
    """A message or statement on the request, by the actor (a system has no user: its
    label names it)."""
    return model.objects.create(request=request, author=actor.user, author_label=actor.label[:200], **fields)


def _staff_of(organisation: Organisation):
    return User.objects.filter(memberships__organisation=organisation, role=Role.CLINICIAN, is_active=True)


def _tell_patient(request: CorrectionRequest, title: str, body: str) -> None:
    for link in request.patient.accounts.select_related("user"):
        notify(
            link.user,
            kind=Notification.Kind.CORRECTION,
            title=title,
            body=notifications.to_patient(request, body),
            link=notifications.patient_page(request),
        )


def _timeline(request: CorrectionRequest, actor: Actor | None, kind: str, note: str = "") -> None:
    TimelineEvent.objects.create(
        request=request,
        actor=actor.user if actor and actor.user is not None and actor.user.pk else None,
        actor_label=actor.label if actor else "the portal",
        kind=kind,
        status=request.status,
        business_status=request.business_status,
        note=note,
    )


def _audit(
    action: str, request: CorrectionRequest, actor: Actor, *, entries=(), detail: dict | None = None
) -> None:
    audit.record(
        action,
        patient_id=request.patient_id,
        entries=entries,
        purpose="correction",
        detail={"request": request.pk.hex, "status": request.business_status, **(detail or {})},
        **actor.audit_fields(),
    )


def days_left(request: CorrectionRequest, today: date | None = None) -> int:
    return (request.due_on - (today or timezone.localdate())).days
