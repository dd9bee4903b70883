"""A correction request's timeline as the patient reads it, in plain words: the one
wording the patient's request page and the JSON API share."""

from dataclasses import dataclass

from . import services
from .models import CorrectionRequest, TimelineEvent

# The patient's view of the timeline; staff-only steps (assigning, reminders) stay off it.
TIMELINE_WORDS = {
    **services.STEP_WORDS,
    "submitted": "You sent your request",
    "patient_reply": "You replied",
    "log_disagreement": "You added a statement of disagreement",
    "escalation": "The decision is overdue: the organisation's information governance lead was told",
}
HIDDEN_STEPS = frozenset({"assign", "reminder"})
# Steps whose note the patient should read with them (a reason, who was told).
NOTE_PREFIX = {
    "extend": "Deadline extended",
    "notice": "Organisations that saw the old version were told",
}
SHOWN_NOTES = frozenset({"extend", "notice", "accept", "accept_in_part", "deny", "withdraw"})


@dataclass(frozen=True)
class TimelineRow:
    at: object
    words: str
    note: str
    by: str


def timeline_rows(request: CorrectionRequest, events: list[TimelineEvent]) -> list[TimelineRow]:
    rows = []
    for event in events:
        if event.kind in HIDDEN_STEPS:
            continue
        by = "You" if event.actor_id == request.requested_by_id else request.owner.name
        if event.actor_id is None:
            by = "The portal"
        note = event.note if event.kind in SHOWN_NOTES else ""
        if event.kind in NOTE_PREFIX and note:
            words, note = f"{NOTE_PREFIX[event.kind]}: {note}", ""
        else:
            words = TIMELINE_WORDS.get(event.kind, event.kind.replace("_", " ").capitalize())
        rows.append(TimelineRow(event.at, words, note, by))
    return rows


def staff_timeline_rows(request: CorrectionRequest) -> list[TimelineRow]:
    """Every step as the owning organisation's staff read it: the patient named by role
    (their account, an email address, is not what the clinician needs), staff by name."""
    return [
        TimelineRow(
            event.at,
            services.STEP_WORDS.get(event.kind, event.kind),
            event.note,
            "the patient" if event.actor_id == request.requested_by_id else event.actor_label,
        )
        for event in request.timeline.all()
    ]
