"""What a patient's own access log asks of the audit trail; no HTTP here.

The patient sees who looked at their record, when, what and why. Which items an event
disclosed is resolved only through the patient's own permitted view of their record
(RecordAccess.entries), so an item withheld from the patient stays withheld here too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import ProxyAccess, Role
from audit.models import AuditEvent, Outcome
from phr.models import Organisation, Patient, RecordEntry

from . import sharing_text
from .models import BreakGlass
from .policy import READ_ACTIONS, RecordAccess
from .share_links import PURPOSE as SHARE_LINK_PURPOSE

RECORD_ACCESS = tuple(action.value for action in READ_ACTIONS)
# Information governance looks at consent and audit metadata, never clinical content.
GOVERNANCE_ACTIONS = ("consent.read", "audit.read", "audit.search", "audit.export", "breakglass.review")
GOVERNANCE_WORDS = {
    "consent.read": "looked at your sharing choices",
    "audit.read": "looked at the record of who has seen your record",
    "audit.search": "searched the record of who has seen your record",
    "audit.export": "exported the record of who has seen your record",
    "breakglass.review": "reviewed an emergency access to your record",
}
# How many display texts one row lists before "and N more".
ITEMS_SHOWN = 10


@dataclass(frozen=True)
class LogFilters:
    organisation: Organisation | None = None
    date_from: date | None = None
    date_to: date | None = None
    emergency_only: bool = False

    def as_query(self) -> dict[str, str]:
        query = {
            "organisation": str(self.organisation.pk) if self.organisation else "",
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "emergency": "1" if self.emergency_only else "",
        }
        return {key: value for key, value in query.items() if value}


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def record_looks() -> QuerySet[AuditEvent]:
    """Permitted reads, searches and exports of records, other than patients' own."""
    return AuditEvent.objects.filter(action__in=RECORD_ACCESS, outcome=Outcome.PERMIT).exclude(
        purpose="patient-access"
    )


def organisation_reads() -> QuerySet[AuditEvent]:
    """The looks that are an organisation reading a record: its staff or its system,
    acting for it; never the patient, someone acting for them, a share link (none has an
    organisation) or information governance (audit metadata only, no organisation)."""
    return (
        record_looks()
        .filter(organisation__isnull=False)
        .exclude(actor__role__in=(Role.PATIENT, Role.IG_OFFICER))
    )


def looks(patient: Patient, *, viewer, filters: LogFilters) -> QuerySet[AuditEvent]:
    """Permitted reads, searches and exports of the patient's record by others, newest first.

    The viewer's own looks are left out: the log answers "who else has looked".
    """
    events = (
        record_looks()
        .filter(patient_id=patient.pk)
        .exclude(actor_id=viewer.pk)
        .select_related("organisation", "actor", "disclosure")
        .order_by("-seq")
    )
    if filters.organisation is not None:
        events = events.filter(organisation_id=filters.organisation.pk)
    if filters.date_from:
        events = events.filter(occurred_at__gte=_day_start(filters.date_from))
    if filters.date_to and filters.date_to < date.max:  # "up to the last day there is" bounds nothing
        events = events.filter(occurred_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    if filters.emergency_only:
        events = events.filter(purpose="emergency")
    return events


def refused_attempts(patient: Patient, *, limit: int = 20) -> list[AuditEvent]:
    """Recent refused attempts by staff of member organisations, and wrong passcodes on
    the patient's own share links, newest first.

    Other refusals without an organisation (someone else's account, a mistyped address)
    are for information governance: naming those people to this patient would disclose
    them.
    """
    return list(
        AuditEvent.objects.filter(
            Q(organisation__isnull=False) | Q(purpose=SHARE_LINK_PURPOSE),
            patient_id=patient.pk,
            action__in=RECORD_ACCESS,
            outcome=Outcome.DENY,
        )
        .select_related("organisation", "actor")
        .order_by("-seq")[:limit]
    )


def governance_reviews(patient: Patient, *, limit: int = 20) -> list[AuditEvent]:
    """Recent looks at this patient's consent and audit metadata by IG officers."""
    return list(
        AuditEvent.objects.filter(
            patient_id=patient.pk,
            action__in=GOVERNANCE_ACTIONS,
            outcome=Outcome.PERMIT,
            actor__role=Role.IG_OFFICER,
        ).order_by("-seq")[:limit]
    )


def emergency_openings(patient: Patient) -> list[BreakGlass]:
    """Every emergency (break-glass) opening of the patient's record, newest first."""
    return list(
        BreakGlass.objects.filter(patient=patient)
        .select_related("organisation", "clinician", "review")
        .order_by("-opened_at")
    )


def entry_ids(events) -> set[uuid.UUID]:
    """The entries named by these events ("<entry uuid hex>:<version>")."""
    ids = set()
    for event in events:
        for ref in event.entries:
            try:
                ids.add(uuid.UUID(ref.split(":", 1)[0]))
            except ValueError:
                continue
    return ids


@dataclass
class Look:
    """One row of the log: the event, who, why, and the items the patient may see."""

    event: AuditEvent
    person: str
    break_glass: BreakGlass | None
    items: list[RecordEntry] = field(default_factory=list)

    @property
    def emergency(self) -> bool:
        return self.event.purpose == "emergency" or self.break_glass is not None

    @property
    def kinds(self) -> list[str]:
        return sharing_text.kinds_words(item.resource_type for item in self.items)

    @property
    def shown(self) -> list[RecordEntry]:
        return self.items[:ITEMS_SHOWN]

    @property
    def more(self) -> int:
        return max(0, len(self.items) - ITEMS_SHOWN)


def person(event: AuditEvent) -> str:
    """Who acted, by name where the account has one."""
    if event.actor is not None:
        return event.actor.get_full_name() or event.actor_label or str(event.actor)
    if event.actor_label.startswith("system:"):
        return "A computer system"
    return event.actor_label or "Unknown"


def shown_looks(access: RecordAccess, events: list[AuditEvent], *, detail: dict) -> list[Look]:
    """One page of the access log as the patient reads it, on the page and in the API: the
    items each look touched, read through the patient's own record (so an item withheld
    from them stays unnamed) in the one audited read of that page."""
    ids = entry_ids(events)
    visible = {
        item.pk: item
        for item in access.read(
            lambda qs: qs.filter(pk__in=ids).only("id", "resource_type", "display", "owner_id"), detail=detail
        )
    }
    return build_looks(events, visible)


def build_looks(events: list[AuditEvent], visible: dict[uuid.UUID, RecordEntry]) -> list[Look]:
    """Pair each event with its break-glass and the items of it the patient may see."""
    glass_ids = {(e.detail or {}).get("break_glass") for e in events if isinstance(e.detail, dict)} - {None}
    glasses = BreakGlass.objects.in_bulk(glass_ids) if glass_ids else {}
    rows = []
    for event in events:
        items = []
        for ref in event.entries:
            try:
                entry = visible.get(uuid.UUID(ref.split(":", 1)[0]))
            except ValueError:
                entry = None
            if entry is not None:
                items.append(entry)
        glass = (
            glasses.get((event.detail or {}).get("break_glass")) if isinstance(event.detail, dict) else None
        )
        rows.append(Look(event, person(event), glass, items))
    return rows


# --- What people acting for the patient did ---------------------------------------------

# How Actor.label marks an act done by someone acting for the patient (a proxy): the event
# names the proxy as its actor and its label reads "<email>, acting for the patient
# (<relationship>)". Events carry no grant id (oauth.grant aside), so an act is the
# proxy's when its actor has (or had) a grant for this patient and its label says so.
ACTING_FOR = ", acting for the patient ("
# The newest acts listed; the page says when there were more.
PROXY_ACTS_SHOWN = 50
# What each act of a proxy was, in the patient's words: done, and tried but refused.
PROXY_ACT_WORDS = {
    "record.read": ("Opened your record", "Tried to open something on your record they may not see"),
    "record.search": ("Searched your record", "Tried to search your record"),
    "record.export": ("Downloaded your record", "Tried to download your record"),
    "consent.read": ("Looked at your sharing choices", "Tried to look at your sharing choices"),
    "consent.change": ("Changed your sharing choices", "Tried to change your sharing choices"),
    "correction.submit": (
        "Asked for an item on your record to be corrected",
        "Tried to ask for an item on your record to be corrected",
    ),
    "correction.patient_reply": (
        "Replied to a question about a correction request",
        "Tried to reply about a correction request",
    ),
    "correction.message": (
        "Sent a message about a correction request",
        "Tried to send a message about a correction request",
    ),
    "correction.withdraw": ("Withdrew a correction request", "Tried to withdraw a correction request"),
    "correction.log_disagreement": (
        "Added a statement that they disagree with the answer to a correction request",
        "Tried to add a statement of disagreement to a correction request",
    ),
    "oauth.grant": ("Connected an app to your record", "Tried to connect an app to your record"),
    "oauth.revoke": ("Stopped an app seeing your record", "Tried to stop an app seeing your record"),
}
# Any other step on a correction request a proxy may take one day.
CORRECTION_WORDS = ("Took a step on a correction request", "Tried to take a step on a correction request")


@dataclass
class ProxyAct:
    """One thing someone acting for the patient did, or tried: when, in words, which app
    (for connecting or stopping one), and for a read the items, as an organisation's look."""

    event: AuditEvent
    words: str
    refused: bool
    app: str = ""
    look: Look | None = None


@dataclass
class PersonActing:
    """Someone acting for the patient, by email and relationship, and their acts, newest first."""

    email: str
    relationship: str
    acts: list[ProxyAct] = field(default_factory=list)


def proxy_events(
    patient: Patient, *, filters: LogFilters, limit: int | None = None
) -> tuple[list[AuditEvent], bool]:
    """The newest acts (permitted or refused) of people acting for the patient on their
    record, and whether there were more than ``limit``. The date filters apply; a filter
    on an organisation or on emergency access leaves none (a proxy acts for no
    organisation, never in an emergency)."""
    if filters.organisation is not None or filters.emergency_only:
        return [], False
    proxies = ProxyAccess.objects.filter(patient_id=patient.pk).values("proxy_id")
    events = (
        AuditEvent.objects.filter(
            Q(action__in=list(PROXY_ACT_WORDS)) | Q(action__startswith="correction."),
            patient_id=patient.pk,
            actor_id__in=proxies,
            actor_label__contains=ACTING_FOR,
        )
        .select_related("actor", "disclosure")
        .order_by("-seq")
    )
    if filters.date_from:
        events = events.filter(occurred_at__gte=_day_start(filters.date_from))
    if filters.date_to and filters.date_to < date.max:
        events = events.filter(occurred_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    limit = limit or PROXY_ACTS_SHOWN
    found = list(events[: limit + 1])
    return found[:limit], len(found) > limit


def _relationship(label: str) -> str:
    """The relationship the label names, in words ("Someone the patient chose to act for
    them"); the label may have been cut at 200 characters."""
    said = label.partition(ACTING_FOR)[2].removesuffix(")").strip().lower()
    if not said:
        return ""
    for words in ProxyAccess.Relationship.labels:
        if words.lower() == said or words.lower().startswith(said):
            return str(words)
    return ""


def _latest_relationships(patient_id, proxy_ids) -> dict:
    rows = ProxyAccess.objects.filter(patient_id=patient_id, proxy_id__in=proxy_ids).order_by(
        "granted_at", "pk"
    )
    return {row.proxy_id: row.get_relationship_display() for row in rows}


def people_acting(events: list[AuditEvent], looks: dict[int, Look]) -> list[PersonActing]:
    """The acts, grouped by person and relationship, the person who acted last first; a
    read carries its look (``looks`` by event pk, from shown_looks)."""
    if not events:
        return []
    fallback = _latest_relationships(events[0].patient_id, {e.actor_id for e in events})
    people: dict[tuple[str, str], PersonActing] = {}
    for event in events:  # newest first
        email = event.actor.email if event.actor is not None else event.actor_label.partition(ACTING_FOR)[0]
        relationship = _relationship(event.actor_label) or fallback.get(event.actor_id, "")
        done, tried = PROXY_ACT_WORDS.get(event.action, CORRECTION_WORDS)
        refused = event.outcome == Outcome.DENY
        detail = event.detail if isinstance(event.detail, dict) else {}
        act = ProxyAct(
            event,
            tried if refused else done,
            refused,
            app=str(detail.get("name", "")) if event.action.startswith("oauth.") else "",
            look=looks.get(event.pk),
        )
        person_acting = people.setdefault((email, relationship), PersonActing(email, relationship))
        person_acting.acts.append(act)
    return list(people.values())


def shown_log(
    access: RecordAccess, events: list[AuditEvent], acts: list[AuditEvent], *, detail: dict
) -> tuple[list[Look], list[PersonActing]]:
    """One page of the access log: the organisations' looks, and what people acting for
    the patient did, their reads' items resolved with the looks' in the page's one
    audited read of the patient's own record."""
    reads = [e for e in acts if e.action in RECORD_ACCESS and e.outcome == Outcome.PERMIT]
    rows = shown_looks(access, [*events, *reads], detail=detail)
    looks, read_looks = rows[: len(events)], rows[len(events) :]
    return looks, people_acting(acts, {look.event.pk: look for look in read_looks})
