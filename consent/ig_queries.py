"""What the IG console asks of the audit trail and the consent history; no HTTP here.

Information governance officers see audit and consent metadata and the names of the
items each access read ("High blood pressure"): what was disclosed, never what it said.
One function, item_names, reads the versions the trail references
("<entry uuid hex>:<version>") and hands back their names only, never a value, a date or
a note; patients appear by name and NHS number, staff by name and role.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, F, Max, Q, QuerySet
from django.utils import timezone

from accounts.models import PatientLink, Role, User
from audit.models import AuditEvent, Outcome
from phr.models import Category, Organisation, Patient, RecordEntry
from phr.nhs_number import ODS_SYSTEM
from phr.replica import lag_tolerant, lagging

from .models import PAUSE_REASON, BreakGlass, BreakGlassReview, ConsentChoice, Decision, Scope
from .policy import READ_ACTIONS, choices_in_force, item_names, sharing_for

RECORD_ACCESS = tuple(action.value for action in READ_ACTIONS)
ANY_RECORD_ACCESS = "record.*"

# Every action code the trail holds, with words for the search form.
ACTION_CHOICES = [
    (ANY_RECORD_ACCESS, "Any access to a record (read, search or export)"),
    ("record.read", "Record read"),
    ("record.search", "Record searched"),
    ("record.export", "Record exported"),
    ("record.withhold", "Item withheld from the patient"),
    ("record.release", "Withheld item released"),
    ("record.write", "Item amended by its owner"),
    ("record.move", "Item moved to or from a record by its owner"),
    ("consent.change", "Sharing choice changed"),
    ("finding.answer", "Accuracy check answered"),
    ("finding.notice", "Accuracy check: organisations that saw the old version told of a correction"),
    ("consent.read", "Sharing choices viewed"),
    ("consent.alerts", "Choice of being told who looked changed"),
    ("proxy.grant", "Access to act for the patient given"),
    ("proxy.end", "Access to act for the patient ended"),
    ("record.check", "Patient checked an item of their record"),
    ("breakglass.open", "Emergency access opened"),
    ("breakglass.review", "Emergency access reviewed"),
    ("audit.read", "Audit trail viewed"),
    ("audit.search", "Audit trail searched"),
    ("audit.export", "Audit trail exported"),
    ("ingest.batch", "Data received from an organisation"),
    ("correction.submit", "Correction requested"),
    ("correction.start_review", "Correction: review started"),
    ("correction.ask_information", "Correction: more information asked for"),
    ("correction.patient_reply", "Correction: the patient replied"),
    ("correction.message", "Correction: message"),
    ("correction.extend", "Correction: deadline extended"),
    ("correction.assign", "Correction: assigned"),
    ("correction.accept", "Correction: corrected"),
    ("correction.accept_in_part", "Correction: partly corrected"),
    ("correction.deny", "Correction: not corrected"),
    ("correction.withdraw", "Correction: withdrawn"),
    ("correction.log_disagreement", "Correction: statement of disagreement added"),
    ("correction.rebuttal", "Correction: response to the disagreement added"),
    ("correction.notice", "Correction: organisations that saw the old version told"),
    ("correction.notice.read", "Correction notice read by a system"),
    ("share.create", "Share link made"),
    ("share.revoke", "Share link revoked"),
    ("share.lock", "Share link locked after wrong passcodes"),
    ("oauth.grant", "App allowed to see a record"),
    ("oauth.revoke", "App stopped from seeing a record"),
    ("oauth.issue", "Access token issued by an operator"),
    ("auth.login", "Sign-in"),
    ("auth.logout", "Sign-out"),
    ("auth.signup", "Account created"),
    ("auth.password", "Password changed or reset"),
    ("auth.mfa", "Two-factor authentication"),
    ("identity.link", "Account linked to a record"),
    ("identity.key_issued", "Linkage key issued to a patient"),
]
ACTION_LABELS = dict(ACTION_CHOICES)

# How far back the unusual-access signals look for bursts and probing.
SIGNAL_LOOKBACK_DAYS = 90
# The most events one export carries; a larger search is narrowed first.
EXPORT_LIMIT = 10_000


# --- Searching the trail ------------------------------------------------------------


class UnknownSubject(Exception):
    """A search naming a patient or a user the portal does not know: ``field`` is the
    search's parameter, the message the words every channel answers with."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def searched_patient(patient_id) -> Patient | None:
    """The patient an audit search names by id (None: not named), or UnknownSubject."""
    if patient_id is None:
        return None
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        raise UnknownSubject("patient", "The patient of this search is not known")
    return patient


def searched_user(user_id):
    """The user an audit search names by id (None: not named), or UnknownSubject."""
    from accounts.models import User

    if user_id is None:
        return None
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise UnknownSubject("actor", "The user of this search is not known")
    return user


@dataclass(frozen=True)
class AuditFilters:
    """One search of the trail. Patients and users are held as objects and travel in
    URLs only as their opaque ids: never an NHS number, a name or an email address."""

    patient: Patient | None = None
    organisation: Organisation | None = None
    actor: object | None = None  # a User
    action: str = ""
    outcome: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def as_query(self) -> dict[str, str]:
        """The search as URL parameters."""
        query = {
            "patient": self.patient.pk.hex if self.patient else "",
            "actor": str(self.actor.pk) if self.actor else "",
            "organisation": self.organisation.ods_code if self.organisation else "",
            "action": self.action,
            "outcome": self.outcome,
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
        }
        return {key: value for key, value in query.items() if value}

    def as_detail(self) -> dict[str, str]:
        """The search as it is written to the audit trail: ids only, nothing identifying."""
        return self.as_query()


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def search_events(filters: AuditFilters) -> QuerySet[AuditEvent]:
    """The audit events matching every given filter, newest first (from the replica when
    there is one: a search may lag by a second or two)."""
    events = lagging(AuditEvent.objects.select_related("organisation", "disclosure").order_by("-seq"))
    if filters.patient is not None:
        events = events.filter(patient_id=filters.patient.pk)
    if filters.organisation is not None:
        events = events.filter(organisation_id=filters.organisation.pk)
    if filters.actor is not None:
        events = events.filter(actor_id=filters.actor.pk)
    if filters.action == ANY_RECORD_ACCESS:
        events = events.filter(action__in=RECORD_ACCESS)
    elif filters.action:
        events = events.filter(action=filters.action)
    if filters.outcome:
        events = events.filter(outcome=filters.outcome)
    if filters.date_from:
        events = events.filter(occurred_at__gte=_day_start(filters.date_from))
    # The "to" date is inclusive: everything before the start of the next day ("up to the
    # last day there is" bounds nothing).
    if filters.date_to and filters.date_to < date.max:
        events = events.filter(occurred_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    return events


# --- Naming what the trail references ------------------------------------------------

# How many item names one row of a page lists before "and N more".
ITEMS_SHOWN = 10


def distinct_item_names(refs: Iterable[str], names: dict[str, str]) -> list[str]:
    """The names of the distinct items among these references (one per item, whichever
    versions were read), sorted as people read a list."""
    by_entry: dict[str, str] = {}
    for ref in refs:
        by_entry[ref.partition(":")[0]] = names.get(ref, "An item no longer held")
    return sorted(by_entry.values(), key=str.casefold)


@dataclass(frozen=True)
class Person:
    """A user as the console names them: their name (their email when they gave none) and
    their role in words, with their job title at each organisation they act for."""

    name: str
    role: str
    job_titles: dict[int, str] = field(default_factory=dict)

    def role_at(self, organisation_id: int | None) -> str:
        """Their job title at the organisation they acted for, else their role."""
        return self.job_titles.get(organisation_id) or self.role


def people(user_ids: Iterable[int | None]) -> dict[int, Person]:
    """The people these user ids name, in two queries."""
    ids = {pk for pk in user_ids if pk is not None}
    if not ids:
        return {}
    users = User.objects.filter(pk__in=ids).prefetch_related("memberships")
    return {
        user.pk: Person(
            name=user.get_full_name().strip() or user.email,
            role=user.get_role_display(),
            job_titles={m.organisation_id: m.job_title for m in user.memberships.all() if m.job_title},
        )
        for user in users
    }


@dataclass(frozen=True)
class EventRow:
    """One audit event as the console shows it: who acted (by name and role), about which
    patient (by name and NHS number) and the names of the items it read."""

    event: AuditEvent
    actor: Person | None
    patient: Patient | None
    items: list[str]

    @property
    def actor_name(self) -> str:
        return self.actor.name if self.actor else (self.event.actor_label or "Unknown")

    @property
    def actor_role(self) -> str:
        return self.actor.role_at(self.event.organisation_id) if self.actor else ""

    @property
    def items_shown(self) -> list[str]:
        return self.items[:ITEMS_SHOWN]

    @property
    def items_more(self) -> int:
        return max(len(self.items) - ITEMS_SHOWN, 0)


def described(events: Iterable[AuditEvent]) -> list[EventRow]:
    """Events with their actors, patients and item names, each batch-loaded once."""
    events = list(events)
    actors = people(e.actor_id for e in events)
    patients = Patient.objects.in_bulk({e.patient_id for e in events} - {None})
    names = item_names(ref for e in events for ref in e.entries)
    return [
        EventRow(
            event=e,
            actor=actors.get(e.actor_id),
            patient=patients.get(e.patient_id),
            items=distinct_item_names(e.entries, names),
        )
        for e in events
    ]


# --- Consent in force at a moment ---------------------------------------------------


def choices_as_of(choices: Iterable[ConsentChoice], at: datetime) -> dict[tuple, ConsentChoice]:
    """The choices in force at a past moment (the policy's own rule, replayed)."""
    return choices_in_force(choices, at)


@dataclass
class ConsentAtRead:
    """What the patient's choices said about one reader's organisation when it read."""

    deciding: list[ConsentChoice]  # the choices that decided a category, oldest first
    shared: list[str]  # category labels the choices (or default) shared with the organisation
    not_shared: list[str]

    @property
    def by_default(self) -> bool:
        return not self.deciding


def consent_at(organisation: Organisation, choices: Iterable[ConsentChoice], at: datetime) -> ConsentAtRead:
    """The sharing choices in force for an organisation at a moment, category by category."""
    ruling = sharing_for(organisation, choices_as_of(choices, at))
    labels = dict(Category.choices)
    deciding = {r.choice.pk: r.choice for r in ruling.values() if r.choice is not None}
    return ConsentAtRead(
        deciding=sorted(deciding.values(), key=lambda c: (c.recorded_at, c.pk)),
        shared=[labels[c] for c, r in ruling.items() if r.permitted],
        not_shared=[labels[c] for c, r in ruling.items() if not r.permitted],
    )


@dataclass
class AccessUnderConsent:
    """One access to a patient's record, with the choice in force and the reason for it."""

    event: AuditEvent
    consent: ConsentAtRead | None  # None when no organisation read (the patient's own access)
    break_glass: BreakGlass | None
    row: EventRow | None = None  # who read, by name and role, and the items' names

    @property
    def entry_count(self) -> int:
        return len(self.event.entries)


def consent_history(patient: Patient) -> list[ConsentChoice]:
    """Every sharing choice the patient made, oldest first."""
    return list(
        ConsentChoice.objects.filter(patient=patient)
        .select_related("organisation", "recorded_by")
        .order_by("recorded_at", "id")
    )


def record_access_events(patient: Patient) -> QuerySet[AuditEvent]:
    """Every read, search and export of the patient's record, permitted or not, newest first."""
    return (
        AuditEvent.objects.filter(patient_id=patient.pk, action__in=RECORD_ACCESS)
        .select_related("organisation", "disclosure")
        .order_by("-seq")
    )


def _own_access(patient: Patient) -> Q:
    """Accesses by the patient or on their behalf: the policy's own-record purpose (their
    account and the apps they allowed), or any account linked to this patient's record."""
    linked = PatientLink.objects.filter(patient_id=patient.pk).values("user_id")
    return Q(purpose="patient-access") | Q(actor_id__in=linked)


def own_access_events(patient: Patient) -> QuerySet[AuditEvent]:
    """The patient's own reads of their record (and those made for them), newest first."""
    return record_access_events(patient).filter(_own_access(patient))


def others_access_events(patient: Patient) -> QuerySet[AuditEvent]:
    """Reads of the record by staff, systems and anyone else, newest first."""
    return record_access_events(patient).exclude(_own_access(patient))


def accesses_under_consent(
    events: Iterable[AuditEvent], choices: list[ConsentChoice]
) -> list[AccessUnderConsent]:
    """Pair each access with the choices in force for the reader's organisation at that
    moment, and with who read (by name and role) and the names of the items read."""
    events = list(events)
    glass_ids = {e.detail.get("break_glass") for e in events if isinstance(e.detail, dict)} - {None}
    glasses = BreakGlass.objects.in_bulk(glass_ids) if glass_ids else {}
    rows = []
    for event, row in zip(events, described(events), strict=True):
        consent = (
            consent_at(event.organisation, choices, event.occurred_at)
            if event.organisation is not None
            else None
        )
        glass = glasses.get((event.detail or {}).get("break_glass"))
        rows.append(AccessUnderConsent(event, consent, glass, row))
    return rows


# --- Break-glass review -------------------------------------------------------------


@dataclass
class BreakGlassItem:
    glass: BreakGlass
    reads: int
    review: BreakGlassReview | None = None
    form: object | None = field(default=None, compare=False)  # the view's verdict form
    consent: ConsentAtRead | None = None  # the choices in force for the organisation on opening
    withheld: list[str] = field(default_factory=list)  # "The patient had withheld ... before"
    items: list[str] = field(default_factory=list)  # the distinct items read under it, by name
    clinician: Person | None = None
    reviewer: Person | None = None

    @property
    def items_shown(self) -> list[str]:
        return self.items[:ITEMS_SHOWN]

    @property
    def items_more(self) -> int:
        return max(len(self.items) - ITEMS_SHOWN, 0)


def unreviewed_break_glass() -> QuerySet[BreakGlass]:
    """Emergency openings no IG officer has judged yet, oldest first."""
    return (
        BreakGlass.objects.filter(review__isnull=True)
        .select_related("clinician", "organisation", "patient")
        .order_by("opened_at", "id")
    )


def reviewed_break_glass() -> QuerySet[BreakGlass]:
    """Emergency openings already judged, the most recently judged first."""
    return (
        BreakGlass.objects.filter(review__isnull=False)
        .select_related("clinician", "organisation", "patient", "review", "review__reviewed_by")
        .order_by("-review__reviewed_at", "-id")
    )


def interval_words(delta: timedelta) -> str:
    """How long, in the largest whole unit: "22 seconds", "5 minutes", "3 hours", "3 days"."""
    seconds = max(int(delta.total_seconds()), 0)
    for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size or unit == "second":
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable")


def withheld_words(consent: ConsentAtRead, at: datetime) -> list[str]:
    """What the patient had withheld from the reading organisation at a moment, and how
    long before it they chose to: one sentence per choice that withheld."""
    labels = dict(Category.choices)
    what = {
        Scope.NETWORK: lambda c: "everything from every organisation",
        Scope.ORGANISATION: lambda c: "everything from this organisation",
        Scope.CATEGORY: lambda c: f"{labels.get(c.category, c.category).lower()} from every organisation",
        Scope.ORGANISATION_CATEGORY: lambda c: (
            f"{labels.get(c.category, c.category).lower()} from this organisation"
        ),
    }
    return [
        f"The patient had withheld {what[choice.scope](choice)} "
        f"{interval_words(at - choice.recorded_at)} before"
        for choice in consent.deciding
        if choice.decision == Decision.DENY
    ]


def with_read_counts(glasses: Iterable[BreakGlass]) -> list[BreakGlassItem]:
    """Each opening with the permitted reads made under it, the distinct items they read
    (by name), and the patient's choices for the organisation at the moment it opened."""
    glasses = list(glasses)
    if not glasses:
        return []
    counts: Counter = Counter()
    refs: dict[int, list[str]] = defaultdict(list)
    patient_ids = {g.patient_id for g in glasses}
    reads = AuditEvent.objects.filter(
        action__in=RECORD_ACCESS,
        outcome=Outcome.PERMIT,
        patient_id__in=patient_ids,
        detail__break_glass__in=[g.pk for g in glasses],
    ).select_related("disclosure")
    for event in reads:
        glass_id = event.detail.get("break_glass")
        counts[glass_id] += 1
        refs[glass_id].extend(event.entries)
    names = item_names(ref for found in refs.values() for ref in found)
    choices: dict[uuid.UUID, list[ConsentChoice]] = defaultdict(list)
    for choice in ConsentChoice.objects.filter(patient_id__in=patient_ids).order_by("recorded_at", "id"):
        choices[choice.patient_id].append(choice)
    reviews = {g.pk: getattr(g, "review", None) for g in glasses}
    staff = people([g.clinician_id for g in glasses] + [r.reviewed_by_id for r in reviews.values() if r])
    items = []
    for glass in glasses:
        consent = consent_at(glass.organisation, choices[glass.patient_id], glass.opened_at)
        review = reviews[glass.pk]
        items.append(
            BreakGlassItem(
                glass=glass,
                reads=counts[glass.pk],
                review=review,
                consent=consent,
                withheld=withheld_words(consent, glass.opened_at),
                items=distinct_item_names(refs[glass.pk], names),
                clinician=staff.get(glass.clinician_id),
                reviewer=staff.get(review.reviewed_by_id) if review else None,
            )
        )
    return items


# --- Unusual-access signals ---------------------------------------------------------


@dataclass
class UnrelatedAccess:
    """A clinician who read many patients their organisation holds nothing for."""

    actor_id: int
    actor_label: str
    organisation: Organisation
    patients: int  # the most distinct unrelated patients within one window
    window_start: datetime
    window_end: datetime


@lag_tolerant
def unrelated_access(*, now: datetime | None = None) -> list[UnrelatedAccess]:
    """Clinicians who read more than UNUSUAL_ACCESS_PATIENTS distinct patients within any
    UNUSUAL_ACCESS_DAYS days, counting only patients whose record holds nothing from the
    clinician's own organisation."""
    now = now or timezone.now()
    window = timedelta(days=settings.UNUSUAL_ACCESS_DAYS)
    threshold = settings.UNUSUAL_ACCESS_PATIENTS
    reads = (
        AuditEvent.objects.filter(
            action__in=RECORD_ACCESS,
            outcome=Outcome.PERMIT,
            occurred_at__gte=now - timedelta(days=SIGNAL_LOOKBACK_DAYS),
            actor__isnull=False,
            organisation__isnull=False,
            patient__isnull=False,
        )
        .order_by("occurred_at", "seq")
        .values_list("actor_id", "actor_label", "organisation_id", "patient_id", "occurred_at")
    )
    by_reader: dict[tuple[int, int], list[tuple[datetime, uuid.UUID]]] = defaultdict(list)
    labels: dict[int, str] = {}
    for actor_id, label, org_id, patient_id, at in reads:
        by_reader[(actor_id, org_id)].append((at, patient_id))
        labels[actor_id] = label
    if not by_reader:
        return []
    patient_ids = {p for rows in by_reader.values() for _, p in rows}
    held = set(
        RecordEntry.objects.filter(patient_id__in=patient_ids)
        .values_list("patient_id", "owner_id")
        .distinct()
    )
    organisations = Organisation.objects.in_bulk({org for _, org in by_reader})
    found = []
    for (actor_id, org_id), rows in by_reader.items():
        unrelated = [(at, p) for at, p in rows if (p, org_id) not in held]
        best = _most_distinct_in_window(unrelated, window)
        if best and best[0] > threshold:
            found.append(
                UnrelatedAccess(actor_id, labels[actor_id], organisations[org_id], best[0], best[1], best[2])
            )
    return sorted(found, key=lambda f: (-f.patients, f.actor_label))


def _most_distinct_in_window(
    reads: list[tuple[datetime, uuid.UUID]], window: timedelta
) -> tuple[int, datetime, datetime] | None:
    """The largest number of distinct patients read within any window of this length
    (reads in time order), with that window's first and last read."""
    best = None
    inside: deque = deque()
    seen: Counter = Counter()
    for at, patient in reads:
        inside.append((at, patient))
        seen[patient] += 1
        while inside[0][0] <= at - window:
            _, gone = inside.popleft()
            seen[gone] -= 1
            if not seen[gone]:
                del seen[gone]
        if best is None or len(seen) > best[0]:
            best = (len(seen), inside[0][0], at)
    return best


@dataclass
class StaffRecordRead:
    event: AuditEvent
    staff_user: object  # the member of staff whose own record was read
    own: bool  # the staff member read their own record


@lag_tolerant
def staff_record_reads(*, now: datetime | None = None, limit: int = 200) -> list[StaffRecordRead]:
    """Permitted reads of records that belong to members of staff (clinicians and IG
    officers linked to a patient record), including staff reading their own."""
    now = now or timezone.now()
    links = PatientLink.objects.filter(user__role__in=(Role.CLINICIAN, Role.IG_OFFICER)).select_related(
        "user"
    )
    staff_by_patient: dict[uuid.UUID, list] = defaultdict(list)
    for link in links:
        staff_by_patient[link.patient_id].append(link.user)
    if not staff_by_patient:
        return []
    events = (
        AuditEvent.objects.filter(
            action__in=RECORD_ACCESS,
            outcome=Outcome.PERMIT,
            patient_id__in=list(staff_by_patient),
            occurred_at__gte=now - timedelta(days=SIGNAL_LOOKBACK_DAYS),
        )
        # A patient account reading its own record is the patient, not a member of staff.
        .exclude(purpose="patient-access")
        .select_related("organisation", "patient")
        .order_by("-seq")[:limit]
    )
    found = []
    for event in events:
        for staff in staff_by_patient[event.patient_id]:
            found.append(StaffRecordRead(event, staff, own=event.actor_id == staff.pk))
    return found


@dataclass
class Probing:
    actor_id: int
    actor_label: str
    organisation: Organisation | None
    denied: int
    last: datetime


@lag_tolerant
def denied_reads(*, now: datetime | None = None) -> list[Probing]:
    """Denied reads of records per user and organisation, the most first: probing."""
    now = now or timezone.now()
    rows = (
        AuditEvent.objects.filter(
            action__in=RECORD_ACCESS,
            outcome=Outcome.DENY,
            actor__isnull=False,
            occurred_at__gte=now - timedelta(days=SIGNAL_LOOKBACK_DAYS),
        )
        .values("actor_id", "actor_label", "organisation_id")
        .annotate(denied=Count("id"), last=Max("occurred_at"))
        .order_by("-denied", "actor_label")
    )
    organisations = Organisation.objects.in_bulk({r["organisation_id"] for r in rows} - {None})
    return [
        Probing(
            r["actor_id"], r["actor_label"], organisations.get(r["organisation_id"]), r["denied"], r["last"]
        )
        for r in rows
    ]


# --- Exports ------------------------------------------------------------------------

CSV_COLUMNS = [
    "seq",
    "occurred_at",
    "action",
    "outcome",
    "actor_id",
    "actor_label",
    "organisation_ods_code",
    "organisation_name",
    "patient_id",
    "entry_count",
    "entry_refs",
    "purpose",
    "reason",
    "break_glass",
    "source_address",
    "patient_nhs_number",
    "item_names",
]
# Events named per batch while a CSV streams: one query for their items, one for patients.
CSV_BATCH = 500


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs a cell that starts with one of these as a formula.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _batches(events: Iterable[AuditEvent], size: int) -> Iterator[list[AuditEvent]]:
    batch: list[AuditEvent] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def csv_rows(events: Iterable[AuditEvent]) -> Iterator[list[str]]:
    """The header, then one row per event: metadata, entry references, the patient's NHS
    number and the names of the items read (never their values)."""
    yield CSV_COLUMNS
    for batch in _batches(events, CSV_BATCH):
        numbers = dict(
            Patient.objects.filter(pk__in={e.patient_id for e in batch} - {None}).values_list(
                "pk", "nhs_number"
            )
        )
        names = item_names(ref for e in batch for ref in e.entries)
        for e in batch:
            detail = e.detail if isinstance(e.detail, dict) else {}
            yield [
                _cell(v)
                for v in (
                    e.seq,
                    e.occurred_at.astimezone(UTC).isoformat(),
                    e.action,
                    e.outcome,
                    e.actor_id,
                    e.actor_label,
                    e.organisation.ods_code if e.organisation else "",
                    e.organisation.name if e.organisation else "",
                    e.patient_id or "",
                    len(e.entries),
                    " ".join(e.entries),
                    e.purpose,
                    e.reason,
                    detail.get("break_glass", ""),
                    e.source_address or "",
                    numbers.get(e.patient_id) or "",
                    "; ".join(distinct_item_names(e.entries, names)),
                )
            ]


# FHIR AuditEvent in the style of IHE Basic Audit Log Patterns (BALP).
DCM = "http://dicom.nema.org/resources/ontology/DCM"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
URI_SYSTEM = "urn:ietf:rfc:3986"
PORTAL_NAME = "Patient Record Portal"


def _portal_system(kind: str) -> str:
    base = getattr(settings, "FHIR_IDENTIFIER_BASE", "https://portal.northbridge.example/fhir/id")
    return f"{base.rstrip('/')}/{kind}"


# action code -> (event type, FHIR restful interaction, AuditEvent.action)
_EVENT_SHAPES = {
    "record.read": ("110110", "read", "R"),
    "record.search": ("110110", "search-type", "E"),
    "record.export": ("110110", "search-type", "R"),
    "record.withhold": ("110110", "update", "U"),
    "record.release": ("110110", "update", "U"),
    "record.write": ("110110", "update", "U"),
    "record.move": ("110110", "update", "U"),
    "consent.read": ("110110", "read", "R"),
    "consent.change": ("110110", "create", "C"),
    "breakglass.open": ("110113", "create", "E"),
    "breakglass.review": ("110110", "create", "C"),
    "audit.read": ("110101", "read", "R"),
    "audit.search": ("110101", "search-type", "E"),
    "audit.export": ("110101", "search-type", "R"),
    "ingest.batch": ("110107", "batch", "C"),
}
_EVENT_TYPES = {
    "110110": "Patient Record",
    "110113": "Security Alert",
    "110101": "Audit Log Used",
    "110107": "Import",
    "110100": "Application Activity",
}
# The portal's purposes -> v3-ActReason purpose of use.
_PURPOSES = {
    "direct-care": ("TREAT", "treatment"),
    "emergency": ("ETREAT", "Emergency Treatment"),
    "patient-access": ("PATRQT", "patient requested"),
    "patient-choice": ("PATRQT", "patient requested"),
    "governance": ("HOPERAT", "healthcare operations"),
}


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _coding(system: str, code: str, display: str = "") -> dict:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def fhir_id(event: AuditEvent) -> str:
    """A stable id for the event: a UUID from its chain hash."""
    return str(uuid.UUID(event.hash[:32]))


def fhir_audit_event(event: AuditEvent) -> dict:
    """One audit event as a FHIR R4 AuditEvent: who, for which organisation, did what to
    whose record, why, and which entries (by reference only)."""
    type_code, interaction, action = _EVENT_SHAPES.get(
        event.action, ("110110" if event.patient_id else "110100", "", "E")
    )
    detail = event.detail if isinstance(event.detail, dict) else {}
    purpose = _PURPOSES.get(event.purpose)
    purpose_of_use = [{"coding": [_coding(ACT_REASON, *purpose)]}] if purpose else []
    subtype = [_coding(_portal_system("audit-action"), event.action)]
    if interaction:
        subtype.insert(0, _coding(RESTFUL_INTERACTION, interaction))

    who: dict = {"display": event.actor_label or "unknown"}
    if event.actor_id is not None:
        who["identifier"] = {"system": _portal_system("user"), "value": str(event.actor_id)}
    person = {
        "type": {"coding": [_coding(PARTICIPATION_TYPE, "IRCP", "information recipient")]},
        "who": who,
        "requestor": True,
    }
    if purpose_of_use:
        person["purposeOfUse"] = purpose_of_use
    if event.source_address:
        person["network"] = {"address": event.source_address, "type": "2"}
    agents = [person]
    if event.organisation is not None:
        agents.append(
            {
                "type": {"coding": [_coding(PARTICIPATION_TYPE, "CST", "custodian")]},
                "who": {
                    "identifier": {"system": ODS_SYSTEM, "value": event.organisation.ods_code},
                    "display": event.organisation.name,
                },
                "requestor": False,
            }
        )

    entities = []
    if event.patient_id is not None:
        entities.append(
            {
                "what": {"reference": f"Patient/{event.patient_id}"},
                "type": _coding(ENTITY_TYPE, "1", "Person"),
                "role": _coding(OBJECT_ROLE, "1", "Patient"),
            }
        )
    for ref in event.entries:
        entry, _, version = ref.partition(":")
        entities.append(
            {
                "what": {"identifier": {"system": URI_SYSTEM, "value": f"urn:uuid:{uuid.UUID(entry)}"}},
                "type": _coding(ENTITY_TYPE, "2", "System Object"),
                "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
                **({"detail": [{"type": "version", "valueString": version}]} if version else {}),
            }
        )
    if "break_glass" in detail:
        entities.append(
            {
                "what": {
                    "identifier": {
                        "system": _portal_system("break-glass"),
                        "value": str(detail["break_glass"]),
                    }
                },
                "type": _coding(ENTITY_TYPE, "2", "System Object"),
                "role": _coding(OBJECT_ROLE, "13", "Security Resource"),
            }
        )

    resource = {
        "resourceType": "AuditEvent",
        "id": fhir_id(event),
        "type": _coding(DCM, type_code, _EVENT_TYPES[type_code]),
        "subtype": subtype,
        "action": action,
        "recorded": _instant(event.occurred_at),
        "outcome": "0" if event.outcome == Outcome.PERMIT else "4",
        "agent": agents,
        "source": {
            "site": PORTAL_NAME,
            "observer": {"display": PORTAL_NAME},
            "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
        },
    }
    if event.reason:
        resource["outcomeDesc"] = event.reason
    if purpose_of_use:
        resource["purposeOfEvent"] = purpose_of_use
    if entities:
        resource["entity"] = entities
    return resource


def fhir_bundle(events: Iterable[AuditEvent], *, total: int) -> dict:
    """A searchset Bundle of AuditEvents for one search of the trail."""
    entries = []
    for event in events:
        resource = fhir_audit_event(event)
        entries.append(
            {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource, "search": {"mode": "match"}}
        )
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "timestamp": _instant(timezone.now()),
        "total": total,
        "entry": entries,
    }


def withholdings():
    """Items owners keep from patients' own view, with their reasons: open ones first.

    Only the entry's kind and holder are shown, never its content.
    """
    from .models import Withholding

    return (
        Withholding.objects.select_related("entry__owner", "entry__patient", "withheld_by", "released_by")
        .only(
            "reason",
            "withheld_at",
            "released_at",
            "entry__id",
            "entry__resource_type",
            "entry__patient__id",
            "entry__patient__nhs_number",
            "entry__patient__family_name",
            "entry__patient__given_names",
            "entry__owner__name",
            "entry__owner__ods_code",
            "withheld_by__email",
            "withheld_by__first_name",
            "withheld_by__last_name",
            "released_by__email",
            "released_by__first_name",
            "released_by__last_name",
        )
        .order_by(F("released_at").desc(nulls_first=True), "-withheld_at")
    )


def patients_with_a_pause(*, now: datetime | None = None) -> int:
    """How many patients have sharing paused while they check their record (a pause in
    force for one organisation or more): a number for the IG console, never who."""
    now = now or timezone.now()
    candidates = (
        ConsentChoice.objects.filter(reason=PAUSE_REASON, decision=Decision.DENY, recorded_at__lte=now)
        .values_list("patient_id", flat=True)
        .distinct()
    )
    by_patient: dict = defaultdict(list)
    for choice in ConsentChoice.objects.filter(patient_id__in=candidates, recorded_at__lte=now):
        by_patient[choice.patient_id].append(choice)
    return sum(
        any(
            c.reason == PAUSE_REASON and c.decision == Decision.DENY
            for c in choices_in_force(found, now).values()
        )
        for found in by_patient.values()
    )
