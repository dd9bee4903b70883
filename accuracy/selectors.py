"""Which correction requests an actor sees, in which order, and what of their copies of
clinical text: written once here, and called by every channel (the patient's pages, the
staff workspace, the JSON API, FHIR Task and Communication).

A request keeps copies of the item it is about (its name and "what it says now", as the
patient saw them when flagging it), the patient's words about it and a thread with the
owner. They are clinical content: they leave only through release_copies, which asks the
policy (consent.policy.read_copies) whether the viewer may read the item now, has the
disclosure audited, and withholds them with the item.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Case, IntegerField, QuerySet, Value, When

from consent.policy import (
    Actor,
    ActorRole,
    NotFound,
    RecordAccess,
    open_record,
    read_copies,
    shown_entries,
)

from .models import OPEN_STATUSES, CorrectionRequest, Message, Statement

WITHHELD = "An item no longer shown to you"
# The request's own copies of clinical text, loaded only by release_copies.
COPY_COLUMNS = ("item_display", "current_text", "proposed", "reason")


def visible_requests(actor: Actor) -> QuerySet[CorrectionRequest]:
    """The correction requests an actor may see, in the order their list shows them: a
    patient's own, newest first (for someone acting for the patient, only those about an
    item the policy shows them: consent.policy.shown_entries); those held by a clinician's or a
    system's organisation, open ones first, then by deadline (the queue); none for anyone
    else, staff without a second factor included.

    Neither the item's content nor the request's copies of it are loaded here: those pass
    the policy in release_copies.
    """
    requests = CorrectionRequest.objects.select_related("entry", "owner", "assigned_to").defer(
        "entry__json", "entry__display", *COPY_COLUMNS
    )
    if actor.role == ActorRole.PATIENT and actor.patient_id is not None:
        requests = requests.filter(patient_id=actor.patient_id)
        if actor.proxy is not None:
            requests = requests.filter(entry_id__in=shown_entries(actor, actor.patient_id))
        return requests.order_by("-created_at", "pk")
    if (
        actor.role in (ActorRole.CLINICIAN, ActorRole.SYSTEM)
        and actor.organisation is not None
        and not actor.second_factor_missing
    ):
        closed = Case(
            When(status__in=OPEN_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        return (
            requests.filter(owner=actor.organisation)
            .annotate(closed=closed)
            .order_by("closed", "due_on", "created_at", "pk")
        )
    return requests.none()


@dataclass(frozen=True)
class Copies:
    """A request's copies of clinical text as one viewer may read them now: each is the
    text, or WITHHELD. ``messages`` and ``statements`` pair each with its released text."""

    item_shown: bool
    item_display: str
    current_text: str
    proposed: str
    reason: str
    element_label: str
    messages: tuple[tuple[Message, str], ...] = ()
    statements: tuple[tuple[Statement, str], ...] = ()

    @property
    def item_name(self) -> str:
        """How a letter names the item: as flagged, or by the part flagged when withheld."""
        return (self.item_display if self.item_shown else "") or self.element_label

    def text_of(self, said: Message | Statement) -> str:
        pairs = self.messages if isinstance(said, Message) else self.statements
        return next((text for item, text in pairs if item.pk == said.pk), WITHHELD)


def open_records(actor: Actor, patient_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, RecordAccess | None]:
    """The actor's view of each patient's record, or None where the policy refused it
    (the refusal is audited by the policy, once per patient)."""
    opened: dict[uuid.UUID, RecordAccess | None] = {}
    for patient_id in dict.fromkeys(patient_ids):
        try:
            opened[patient_id] = open_record(actor, patient_id)
        except NotFound:
            opened[patient_id] = None
    return opened


def release_copies(
    actor: Actor,
    requests: Iterable[CorrectionRequest],
    *,
    thread: bool = False,
    access: RecordAccess | None = None,
    accesses: dict[uuid.UUID, RecordAccess | None] | None = None,
    detail: dict | None = None,
) -> dict[uuid.UUID, Copies]:
    """The copies of each request (with its messages and statements when ``thread``) as
    the actor may read them: the item's, and the owner's words about it, only while the
    policy lets the actor read the item (audited, naming it); a patient always reads
    their own words (the proposed text, the reason, what they wrote), never "what it
    says now" of an item withheld from them. ``access`` is the actor's view of the
    patient's record when the caller has opened it already, ``accesses`` the views of
    several patients' records (open_records), so that a page opens each record once."""
    wanted = {r.pk: r for r in requests}
    # The copies are read only for requests the actor may see (the selector's rule).
    rows = {
        row[0]: dict(zip(COPY_COLUMNS, row[1:], strict=True))
        for row in visible_requests(actor).filter(pk__in=list(wanted)).values_list("pk", *COPY_COLUMNS)
    }
    by_patient: dict[uuid.UUID, list[CorrectionRequest]] = defaultdict(list)
    for request in wanted.values():
        if request.pk in rows:
            by_patient[request.patient_id].append(request)
    opened = dict(accesses or {})
    if access is not None:
        opened[access.patient.pk] = access
    opened |= open_records(actor, [pid for pid in by_patient if pid not in opened])
    readable: set[uuid.UUID] = set()
    for patient_id, group in by_patient.items():
        view = opened.get(patient_id)
        if view is None:  # refused, and audited, by the policy
            continue
        readable |= read_copies(
            view,
            [(r.entry_id, r.entry_version) for r in group],
            detail={**(detail or {}), "correction_requests": [r.pk.hex for r in group]},
        )
    return {
        pk: _copies(actor, request, rows.get(pk), request.entry_id in readable, thread)
        for pk, request in wanted.items()
    }


def _copies(actor: Actor, request: CorrectionRequest, row: dict | None, shown: bool, thread: bool) -> Copies:
    if row is None:  # not the actor's to see at all
        return Copies(False, WITHHELD, WITHHELD, WITHHELD, WITHHELD, request.element_label)
    own = actor.role == ActorRole.PATIENT and actor.patient_id == request.patient_id

    def released(text: str, *, theirs: bool) -> str:
        return text if shown or (own and theirs) else WITHHELD

    messages = statements = ()
    if thread:
        messages = tuple(
            (m, released(m.body, theirs=m.from_patient)) for m in request.messages.select_related("author")
        )
        statements = tuple(
            (s, released(s.text, theirs=s.kind == Statement.Kind.DISAGREEMENT))
            for s in request.statements.select_related("author")
        )
    return Copies(
        item_shown=shown,
        item_display=released(row["item_display"], theirs=False),
        current_text=released(row["current_text"], theirs=False),
        proposed=released(row["proposed"], theirs=True),
        reason=released(row["reason"], theirs=True),
        element_label=request.element_label,
        messages=messages,
        statements=statements,
    )
