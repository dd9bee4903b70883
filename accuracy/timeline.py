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
# A step someone acting for the patient took: the patient did not take it, so not "You".
PROXY_WORDS = {
    "submitted": "Request sent",
    "patient_reply": "Replied",
    "log_disagreement": "Statement of disagreement added",
}
# What consent.policy.Actor.label puts after a proxy's email address.
PROXY_MARK = ", acting for the patient"


def proxy_email(label: str) -> str:
    """The email address of the person acting for the patient who took a step or wrote a
    message, from its stored label; "" when it was not someone acting for the patient."""
    head, mark, _ = label.partition(PROXY_MARK)
    return head if mark else ""


@dataclass(frozen=True)
class TimelineRow:
    at: object
    words: str
    note: str
    by: str
    # The patient's side took the step (the patient, or someone acting for them), and the
    # email address of that someone: so a page can name them for whoever reads it.
    from_patient: bool = False
    proxy: str = ""


def _patients_own(request: CorrectionRequest) -> set:
    """The accounts that are the patient themself (their linked accounts, and whoever made
    the request unless someone acting for the patient made it)."""
    own = set(request.patient.accounts.values_list("user_id", flat=True))
    own.add(request.requested_by_id)
    return own


def timeline_rows(request: CorrectionRequest, events: list[TimelineEvent], reader=None) -> list[TimelineRow]:
    """The steps as the patient's side reads them. To the patient: "You" for their own,
    "<email>, acting for you" for those of someone acting for them. To someone acting for
    the patient (``reader``, an Actor with a proxy grant): "The patient" for the patient's
    steps, "You, acting for the patient" for their own. The organisation's name for its
    staff's, to both."""
    rows = []
    own = None
    acting_as = str(reader.user) if reader is not None and reader.proxy is not None else ""
    for event in events:
        if event.kind in HIDDEN_STEPS:
            continue
        proxy = proxy_email(event.actor_label) if event.actor_id is not None else ""
        words = TIMELINE_WORDS.get(event.kind, event.kind.replace("_", " ").capitalize())
        if proxy:
            words = PROXY_WORDS.get(event.kind, words)
            if not acting_as:
                by = f"{proxy}, acting for you"
            else:
                by = (
                    "You, acting for the patient"
                    if proxy == acting_as
                    else f"{proxy}, acting for the patient"
                )
        elif event.actor_id is None:
            by = "The portal"
        else:
            own = _patients_own(request) if own is None else own
            if event.actor_id not in own:
                by = request.owner.name
            elif acting_as:
                by, words = "The patient", PROXY_WORDS.get(event.kind, words)
            else:
                by = "You"
        note = event.note if event.kind in SHOWN_NOTES else ""
        if event.kind in NOTE_PREFIX and note:
            words, note = f"{NOTE_PREFIX[event.kind]}: {note}", ""
        rows.append(
            TimelineRow(
                event.at,
                words,
                note,
                by,
                from_patient=bool(proxy) or by in ("You", "The patient"),
                proxy=proxy,
            )
        )
    return rows


def staff_timeline_rows(request: CorrectionRequest) -> list[TimelineRow]:
    """Every step as the owning organisation's staff read it: the patient named by role
    (their account, an email address, is not what the clinician needs), someone acting for
    the patient by their label ("<email>, acting for the patient (<relationship>)"), staff
    by name."""
    events = list(request.timeline.all())
    own = _patients_own(request) if events else set()
    rows = []
    for event in events:
        proxy = proxy_email(event.actor_label) if event.actor_id is not None else ""
        mine = not proxy and event.actor_id is not None and event.actor_id in own
        by = "the patient" if mine else event.actor_label
        words = services.STEP_WORDS.get(event.kind, event.kind)
        rows.append(
            TimelineRow(event.at, words, event.note, by, from_patient=mine or bool(proxy), proxy=proxy)
        )
    return rows
