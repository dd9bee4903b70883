"""THE access decision: the only door to clinical data.

Every read of a patient's record, by any user or client, through any page, API call,
export or share link, goes through ``open_record``: it decides permit or deny with a
reason, hands back only what is permitted, and writes the audit event. A denied or
missing patient or entry raises ``NotFound`` either way, so that from outside "missing"
and "not allowed" look the same.

Rules, in the words of the design:
- a patient sees their own record, except items an owner withholds with a recorded reason;
- a clinician acting for a member organisation sees the entries their organisation
  owns, and the other entries whose category the patient's choices permit for that
  organisation: the most specific choice wins, deny wins a tie, and the deployment's
  consent model is the default;
- a break-glass opening shows the whole record to that clinician for a limited time;
- an IG officer sees audit and consent metadata and the names of the items an access
  read (policy.item_names), never what they hold;
- an organisation system reads as its organisation does and writes only its own data;
- staff (clinicians, IG officers) see nothing of a record or its audit trail until they
  have set up a second factor, whichever way they came in;
- a caller whose credentials release only some resource types (an app's or a system's
  token with scopes such as ``patient/Condition.read``) gets only entries of those types,
  from every read, search, operation and export alike.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

import audit
from accounts.access import has_mfa
from accounts.models import ProxyAccess
from accounts.models import Role as UserRole
from phr import columns
from phr.models import (
    Category,
    EntryVersion,
    Organisation,
    Patient,
    RecordEntry,
    RecordEntryQuerySet,
    Refiling,
)
from phr.nhs_number import ODS_SYSTEM, mask_nhs_numbers
from phr.render.item import item_title
from phr.vocabulary import NOT_ITEMS, type_name

from .models import PAUSE_REASON, BreakGlass, ConsentChoice, Decision, Scope, Withholding

T = TypeVar("T")
_INSIDE_POLICY = contextvars.ContextVar("inside_policy", default=False)


@contextmanager
def _policy_scope():
    """Marks clinical reads made by the policy itself, so that tests can prove that no
    other code reads clinical content (see tests/test_url_walk.py)."""
    token = _INSIDE_POLICY.set(True)
    try:
        yield
    finally:
        _INSIDE_POLICY.reset(token)


def inside_policy() -> bool:
    return _INSIDE_POLICY.get()


class NotFound(Exception):
    """Raised alike for what does not exist and what the actor may not see."""


class Denied(Exception):
    """Raised for a change the actor may not make (the actor already knows the object)."""


class ActorRole(StrEnum):
    PATIENT = "patient"
    CLINICIAN = "clinician"
    IG_OFFICER = "ig_officer"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


class Action(StrEnum):
    READ_RECORD = "record.read"
    SEARCH_RECORD = "record.search"
    EXPORT_RECORD = "record.export"
    READ_CONSENT = "consent.read"
    CHANGE_CONSENT = "consent.change"
    READ_AUDIT = "audit.read"
    WRITE_RECORD = "record.write"
    BREAK_GLASS = "breakglass.open"


READ_ACTIONS = (Action.READ_RECORD, Action.SEARCH_RECORD, Action.EXPORT_RECORD)

# The roles that must have a second factor set up before the policy shows them anything.
SECOND_FACTOR_ROLES = frozenset({UserRole.CLINICIAN, UserRole.IG_OFFICER})
# What every channel tells them (FHIR, the JSON API; the pages send them to set it up).
SECOND_FACTOR_NEEDED = "Set up two-factor authentication before you use this"


@dataclass(frozen=True)
class Actor:
    """Who is asking, for which organisation, from where, and what their credentials let
    them reach."""

    role: ActorRole
    user: object | None = None
    organisation: Organisation | None = None
    patient_id: uuid.UUID | None = None  # a patient's own, verified record
    client_id: str = ""
    source_address: str | None = None
    # Staff signed in without a second factor set up: the policy refuses them everything.
    second_factor_missing: bool = False
    # The record's resource types the credentials release (a token's read scopes); None
    # for every type (a session, or a token granted <context>/*.read).
    readable_types: frozenset[str] | None = None
    # Someone acting for the patient (accounts.ProxyAccess): the grant's id, what it lets
    # them do (see, correct, share) and the relationship, for the audit trail.
    proxy: int | None = None
    proxy_rights: frozenset[str] = frozenset()
    proxy_relationship: str = ""

    def releases(self, resource_type: str) -> bool:
        """Whether the credentials release entries of this resource type."""
        return self.readable_types is None or resource_type in self.readable_types

    @property
    def label(self) -> str:
        if self.user is not None and self.proxy is not None:
            return f"{self.user}, acting for the patient ({self.proxy_relationship})"
        if self.user is not None:
            return str(self.user)
        if self.client_id:
            return f"system:{self.client_id}"
        return self.role.value

    def audit_fields(self) -> dict:
        return {
            "actor": self.user if self.user is not None and self.user.pk else None,
            "actor_label": self.label[:200],
            "organisation": self.organisation,
            "source_address": self.source_address,
        }


def actor_for(
    user,
    *,
    organisation: Organisation | None = None,
    source_address: str | None = None,
    proxy_grant: int | None = None,
) -> Actor:
    """The actor a signed-in (or anonymous) user is, acting for one of their organisations,
    or, with ``proxy_grant``, for the patient an active grant of theirs names."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Actor(ActorRole.ANONYMOUS, source_address=source_address)
    if user.role == UserRole.PATIENT and proxy_grant is not None:
        grant = active_grant(user, proxy_grant)
        if grant is not None:
            return Actor(
                ActorRole.PATIENT,
                user=user,
                patient_id=grant.patient_id,
                source_address=source_address,
                proxy=grant.pk,
                proxy_rights=grant.rights,
                proxy_relationship=grant.get_relationship_display().lower(),
            )
    if user.role == UserRole.PATIENT:
        link = getattr(user, "patient_link", None) if hasattr(user, "patient_link") else None
        return Actor(
            ActorRole.PATIENT,
            user=user,
            patient_id=link.patient_id if link else None,
            source_address=source_address,
        )
    # The second factor is looked up here, where every channel resolves its actor, so
    # that no channel can forget it (pages, JSON, FHIR, share views, tasks alike).
    missing = user.role in SECOND_FACTOR_ROLES and not has_mfa(user)
    if user.role == UserRole.IG_OFFICER:
        return Actor(
            ActorRole.IG_OFFICER, user=user, source_address=source_address, second_factor_missing=missing
        )
    memberships = {m.organisation_id: m.organisation for m in user.memberships.select_related("organisation")}
    if organisation is not None:
        acting_for = memberships.get(organisation.pk)
    else:
        acting_for = next(iter(sorted(memberships.values(), key=lambda o: o.pk)), None)
    return Actor(
        ActorRole.CLINICIAN,
        user=user,
        organisation=acting_for,
        source_address=source_address,
        second_factor_missing=missing,
    )


def active_grant(user, grant_id) -> ProxyAccess | None:
    """The user's own grant of this id, if it is in force now."""
    now = timezone.now()
    return (
        ProxyAccess.objects.filter(
            pk=grant_id, proxy=user, ended_at__isnull=True, starts_at__lte=now, ends_at__gt=now
        ).first()
        if str(grant_id).isdigit()
        else None
    )


# What a proxy's grant must allow for each action on the patient's behalf (NHS England's
# proxy standard: a proxy does only what the grant names, never more than the patient).
# The patient's access log stays the patient's: it names what others read, sensitive
# items included, which a proxy never sees.
PROXY_RIGHT_FOR = {
    **{action: "see" for action in ("record.read", "record.search", "record.export")},
    "consent.read": "share",
    "consent.change": "share",
}


def shown_entries(actor: Actor, patient_id) -> QuerySet[RecordEntry]:
    """The entries of the patient's record this actor may see, as the policy decides them
    (decide and permitted_entries: withheld, held-for-review and hidden categories out),
    whatever resource types their token names, for use as a subquery only: it names ids,
    releases nothing and so is not audited (as admits_entry). For what is about items —
    a correction request, an accuracy finding — shown only while its items are."""
    return shown_versions(actor, patient_id)[0]


def shown_versions(actor: Actor, patient_id) -> tuple[QuerySet[RecordEntry], frozenset[str] | None]:
    """shown_entries, and the categories a version of another holder's entry must have had
    for this actor to see what that version said (None: any). A copy of an earlier
    version's words (an accuracy finding quotes the version it checked) follows the rule
    of that version's own category, as the item's history does (_of_permitted_category)."""
    person = replace(actor, readable_types=None)
    patient = Patient(pk=patient_id)
    decision = decide(person, Action.READ_RECORD, patient)
    entries = permitted_entries(person, patient, decision).values("pk")
    return entries, _categories_of_others(decision)


def _categories_of_others(decision: AccessDecision) -> frozenset[str] | None:
    """The categories a version of another holder's entry must have had for this decision
    to show it, or None when the decision is not limited by category (the patient's own
    record, emergency access, every category shared)."""
    if (
        decision.basis == "own-record"
        or decision.break_glass is not None
        or decision.categories == ALL_CATEGORIES
    ):
        return None
    return frozenset(decision.categories or ())


def record_for_checks(patient_id, *, leave_out: Iterable[str] = ()) -> list[tuple[RecordEntry, str]]:
    """Every current entry of the patient's record, every holder's, with its JSON: for
    the accuracy checks (accuracy.checks), which compare the holders' copies and disclose
    nothing. What they find reaches a person only through accuracy.findings: to someone
    who may see every entry a finding is about (shown_entries)."""
    entries = (
        RecordEntry.objects.filter(patient_id=patient_id)
        .exclude(resource_type__in=list(leave_out))
        .select_related("owner")
        .only(*CHECKED_COLUMNS)
        .order_by("pk")
    )
    with _policy_scope():
        return [(entry, entry.json) for entry in entries]


# What the checks read of an entry besides its JSON (a column not named here would be
# fetched one entry at a time, outside the policy's scope: the guard test would say so).
CHECKED_COLUMNS = (
    "owner",
    "patient",
    "resource_type",
    "fhir_id",
    "category",
    "clinical_date",
    "display",
    "entered_in_error",
    "last_updated_at",
    "version",
    "json",
)


def own_entries_for_figures(
    organisation: Organisation, *, pks=None, resource_types=None, fhir_ids=None
) -> list[tuple[uuid.UUID, str, str]]:
    """(pk, FHIR id, JSON) of the organisation's own current entries, for figures about
    its own data that name no patient and no item (accuracy.quality: findings by team or
    service): nothing of an entry leaves as such, so the read is not audited."""
    entries = RecordEntry.objects.filter(owner=organisation)
    if pks is not None:
        entries = entries.filter(pk__in=list(pks))
    if resource_types is not None:
        entries = entries.filter(resource_type__in=list(resource_types))
    if fhir_ids is not None:
        entries = entries.filter(fhir_id__in=list(fhir_ids))
    with _policy_scope():
        return list(entries.values_list("pk", "fhir_id", "json"))


def registered_practices(patient: Patient) -> set[str]:
    """The ODS codes of the practices the patient's details name as their registered
    practice (``generalPractitioner`` by ODS identifier, in any holder's current copy)."""
    codes = set()
    copies = RecordEntry.objects.filter(patient=patient, resource_type="Patient", entered_in_error=False)
    with _policy_scope():  # read to decide who may act, never disclosed
        texts = list(copies.values_list("json", flat=True))
    for text in texts:
        try:
            resource = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        for reference in resource.get("generalPractitioner") or ():
            identifier = reference.get("identifier") if isinstance(reference, dict) else None
            if (
                isinstance(identifier, dict)
                and identifier.get("system") == ODS_SYSTEM
                and identifier.get("value")
            ):
                codes.add(str(identifier["value"]).upper())
    return codes


def patient_themself(actor: Actor, patient_id=None) -> None:
    """Raise NotFound unless the actor is the patient themself (of ``patient_id``, when
    given), never someone acting for them: what stays the patient's alone (NHS England's
    proxy standard) — who acts for them, share links, access alerts, checking the record."""
    if actor.role != ActorRole.PATIENT or actor.patient_id is None or actor.proxy is not None:
        raise NotFound
    if patient_id is not None and str(actor.patient_id) != str(patient_id):
        raise NotFound


def proxy_may(actor: Actor, right: str) -> bool:
    """Whether the actor may do this for the patient: always, for the patient themself;
    for a proxy, only what their grant names."""
    return actor.proxy is None or right in actor.proxy_rights


def system_actor(organisation: Organisation, client_id: str, *, source_address: str | None = None) -> Actor:
    """An organisation's own system (a machine client), acting only for that organisation."""
    return Actor(
        ActorRole.SYSTEM, organisation=organisation, client_id=client_id, source_address=source_address
    )


@dataclass(frozen=True)
class AccessDecision:
    permitted: bool
    reason: str
    basis: str  # own-record, owner, consent, default, break-glass, role
    break_glass: BreakGlass | None = None
    categories: frozenset[str] = frozenset()  # categories shared beyond what the org owns

    def __bool__(self) -> bool:
        return self.permitted

    @property
    def purpose(self) -> str:
        return (
            "emergency"
            if self.break_glass
            else ("patient-access" if self.basis == "own-record" else "direct-care")
        )


# --- Consent choices ----------------------------------------------------------------


def current_choices(patient: Patient, *, now: datetime | None = None) -> dict[tuple, ConsentChoice]:
    """The choices in force now (or at a past moment): see choices_in_force."""
    now = now or timezone.now()
    return choices_in_force(ConsentChoice.objects.filter(patient=patient, recorded_at__lte=now), now)


def choices_in_force(choices: Iterable[ConsentChoice], at: datetime) -> dict[tuple, ConsentChoice]:
    """For each scope, the latest choice recorded by ``at``, unless it withdrew an
    earlier choice (back to the default) or had lapsed by then."""
    latest: dict[tuple, ConsentChoice] = {}
    for choice in sorted(choices, key=lambda c: (c.recorded_at, c.pk)):
        if choice.recorded_at <= at:
            latest[choice.key] = choice
    return {
        key: choice
        for key, choice in latest.items()
        if choice.decision != Decision.DEFAULT and (choice.until is None or choice.until > at)
    }


def kept_to_holder(category: str) -> bool:
    """Whether items of this category stay with their holder unless the patient chooses
    to share the category (settings.CATEGORIES_KEPT_TO_HOLDER: the deployment's table)."""
    return category in settings.CATEGORIES_KEPT_TO_HOLDER


def categories_kept_to_holder() -> set[str]:
    """The categories kept to their holder unless the patient shares them by name: the
    patient's "sensitive records"."""
    return {c for c in Category.values if kept_to_holder(c)}


def hidden_from_proxies() -> set[str]:
    """The categories no one acting for the patient ever sees: the patient's sensitive
    records, and settings.PROXY_HIDDEN_CATEGORIES (mental health by default)."""
    return categories_kept_to_holder() | (set(settings.PROXY_HIDDEN_CATEGORIES) & set(Category.values))


def shared_by_default(category: str) -> bool:
    """Whether an organisation other than the holder sees items of this category when
    the patient has made no choice about it: never for a category kept to its holder,
    otherwise as the deployment's consent model says."""
    return not kept_to_holder(category) and settings.CONSENT_MODEL == "opt-out"


def _pauses(choice: ConsentChoice | None) -> bool:
    return _denies(choice) and choice.reason == PAUSE_REASON


def _denies(choice: ConsentChoice | None) -> bool:
    return choice is not None and choice.decision == Decision.DENY


@dataclass(frozen=True)
class CategoryRuling:
    permitted: bool
    choice: ConsentChoice | None  # the choice that decided, None for the default


def sharing_for(organisation: Organisation, choices: dict[tuple, ConsentChoice]) -> dict[str, CategoryRuling]:
    """For each category: may this organisation see the patient's items of that category?

    Specificity: a choice for this organisation and this category (3) beats a choice for
    the organisation or for the category (2), which beats sharing across the network (1),
    which beats the deployment's default (0). At equal specificity, deny wins. A pause
    (a "do not share" made while the patient checks their record) beats them all.
    """
    network = choices.get((Scope.NETWORK, None, ""))
    for_org = choices.get((Scope.ORGANISATION, organisation.pk, ""))
    # A pause while the patient checks their record stops everything it names, whatever
    # the patient chose before: that is what pausing means.
    pause = next((c for c in (for_org, network) if _pauses(c)), None)
    if pause is not None:
        return {category: CategoryRuling(False, pause) for category in Category.values}
    ruling = {}
    for category in Category.values:
        kept = kept_to_holder(category)
        candidates = [
            (3, choices.get((Scope.ORGANISATION_CATEGORY, organisation.pk, category))),
            # A category kept to its holder is shared only by a choice that names it:
            # "share everything" does not reach it, "share nothing" still does.
            (2, for_org if not kept or _denies(for_org) else None),
            (2, choices.get((Scope.CATEGORY, None, category))),
            (1, network if not kept or _denies(network) else None),
        ]
        present = [(level, c) for level, c in candidates if c is not None]
        if not present:
            ruling[category] = CategoryRuling(shared_by_default(category), None)
            continue
        top = max(level for level, _ in present)
        winners = [c for level, c in present if level == top]
        deny = next((c for c in winners if c.decision == Decision.DENY), None)
        ruling[category] = CategoryRuling(deny is None, deny or winners[0])
    return ruling


# --- The decision -------------------------------------------------------------------


def _open_glasses(actor: Actor, now: datetime) -> QuerySet[BreakGlass]:
    """The actor's emergency accesses open at this moment: granted until later, and not
    ended early by the clinician (BreakGlassEnd). The one definition of "open"."""
    return (
        BreakGlass.objects.filter(clinician=actor.user, organisation=actor.organisation, expires_at__gt=now)
        .exclude(ending__ended_at__lte=now)
        .order_by("-expires_at")
    )


def _may_break_glass(actor: Actor) -> bool:
    return actor.role == ActorRole.CLINICIAN and actor.user is not None and actor.organisation is not None


def open_break_glass(actor: Actor, patient: Patient, *, now: datetime | None = None) -> BreakGlass | None:
    if not _may_break_glass(actor):
        return None
    return _open_glasses(actor, now or timezone.now()).filter(patient=patient).first()


_LOOK_UP = object()


def decide(
    actor: Actor, action: Action, patient: Patient, *, now: datetime | None = None, glass=_LOOK_UP
) -> AccessDecision:
    """Permit or deny one actor one action on one patient's record, with the reason.

    ``glass`` is the actor's open break-glass on this patient when the caller fetched
    it already (open_record does, in the same query as the patient).
    """
    role = actor.role
    if role == ActorRole.ANONYMOUS:
        return AccessDecision(False, "not signed in", "role")
    if actor.second_factor_missing:
        return AccessDecision(False, "staff without two-factor authentication set up", "second-factor")
    if role == ActorRole.PATIENT:
        if actor.patient_id != patient.pk:
            return AccessDecision(False, "not this patient's own record", "role")
        if actor.proxy is not None:
            right = PROXY_RIGHT_FOR.get(action.value)
            if right is None or right not in actor.proxy_rights:
                return AccessDecision(False, "the proxy's grant does not allow this", "role")
            return AccessDecision(True, "acting for the patient under a proxy grant", "own-record")
        if action in (*READ_ACTIONS, Action.READ_CONSENT, Action.CHANGE_CONSENT, Action.READ_AUDIT):
            return AccessDecision(True, "the patient's own record", "own-record")
        return AccessDecision(False, "patients cannot do this", "role")
    if role == ActorRole.IG_OFFICER:
        if action in (Action.READ_CONSENT, Action.READ_AUDIT):
            return AccessDecision(True, "information governance review", "role")
        return AccessDecision(
            False,
            "IG officers see audit and consent metadata and the names of items read, never their content",
            "role",
        )
    # A clinician or an organisation's system, acting for one organisation.
    org = actor.organisation
    if org is None:
        return AccessDecision(False, "not acting for a member organisation", "role")
    if action not in READ_ACTIONS:
        return AccessDecision(False, f"{role.value} cannot {action.value}", "role")
    if glass is _LOOK_UP:
        glass = open_break_glass(actor, patient, now=now)
    if glass is not None:
        return AccessDecision(
            True,
            f"emergency access: {glass.get_reason_code_display()}",
            "break-glass",
            glass,
            frozenset(Category.values),
        )
    ruling = sharing_for(org, current_choices(patient, now=now))
    shared = frozenset(c for c, r in ruling.items() if r.permitted)
    if shared:
        chosen = any(r.choice is not None for c, r in ruling.items() if r.permitted)
        return AccessDecision(
            True,
            "the patient's sharing choices permit it" if chosen else "shared for direct care by default",
            "consent" if chosen else "default",
            None,
            shared,
        )
    if RecordEntry.objects.filter(patient=patient, owner=org).exists():
        return AccessDecision(True, f"{org.name} holds these items", "owner", None, frozenset())
    return AccessDecision(False, f"the patient's sharing choices do not permit {org.name}", "consent")


class Unaudited(Exception):
    """Permitted entries were about to be read outside the policy, with no audit event."""


class SealedEntries(RecordEntryQuerySet):
    """A record's permitted entries that evaluate only inside the policy: RecordAccess
    reads, counts and locates them and audits each; anywhere else, fetching a row, a count
    or an aggregate from them raises Unaudited. Filtering and shaping stay free."""

    def _guard(self) -> None:
        if not inside_policy():
            raise Unaudited("read the permitted entries through RecordAccess.read, counts or locate")

    def _fetch_all(self):
        if self._result_cache is None:
            self._guard()
        super()._fetch_all()

    def count(self):
        self._guard()
        return super().count()

    def exists(self):
        self._guard()
        return super().exists()

    def aggregate(self, *args, **kwargs):
        self._guard()
        return super().aggregate(*args, **kwargs)

    def iterator(self, *args, **kwargs):
        self._guard()
        return super().iterator(*args, **kwargs)


def permitted_entries(actor: Actor, patient: Patient, decision: AccessDecision) -> QuerySet[RecordEntry]:
    """The entries of the patient's record the decision lets this actor see, of the
    resource types the actor's credentials release (sealed: see SealedEntries)."""
    entries = SealedEntries(model=RecordEntry).filter(patient=patient)
    if not decision:
        return entries.none()
    if actor.readable_types is not None:
        entries = entries.filter(resource_type__in=actor.readable_types)
    if decision.basis == "own-record":
        withheld = Withholding.objects.filter(released_at__isnull=True).values("entry_id")
        entries = entries.exclude(pk__in=withheld).exclude(awaiting_review())
        if actor.proxy is not None:
            # A proxy never sees the patient's sensitive records (nor, by default, mental
            # health) or what is about others.
            entries = entries.exclude(category__in=hidden_from_proxies()).exclude(third_party=True)
        return entries
    if decision.break_glass is not None or decision.categories == ALL_CATEGORIES:
        return entries
    return entries.filter(Q(owner=actor.organisation) | Q(category__in=decision.categories))


ALL_CATEGORIES = frozenset(Category.values)
RESULT_TYPES = ("Observation", "DiagnosticReport")


def awaiting_review(*, now: datetime | None = None) -> Q:
    """The entries held from the patient (and so from anyone acting for them, their share
    links and their apps) until the holder's clinicians have reviewed them: safeguarding
    items always, items the sender labelled as about a third party, and new results for
    settings.RESULTS_REVIEW_DAYS after they arrived. A review that released an item ends
    the hold; one that kept it withheld leaves a Withholding, which holds it instead."""
    held = Q(category=Category.SAFEGUARDING) | Q(third_party=True)
    if settings.RESULTS_REVIEW_DAYS:
        since = (now or timezone.now()) - timedelta(days=settings.RESULTS_REVIEW_DAYS)
        held |= Q(resource_type__in=RESULT_TYPES, first_received_at__gt=since)
    return held & Q(harm_review__isnull=True)


def admits_entry(actor: Actor, entry: RecordEntry) -> bool:
    """Whether the actor may see this entry today by the ordinary rules (emergency access
    does not count): a yes or no for deciding what a notice may say, which releases
    nothing of the entry and so is not audited as a read."""
    decision = decide(actor, Action.READ_RECORD, entry.patient)
    if not decision or decision.break_glass is not None:
        return False
    with _policy_scope():
        return permitted_entries(actor, entry.patient, decision).filter(pk=entry.pk).exists()


# --- Fetch, authorise, audit: the caller-bound record ----------------------------------


@dataclass
class RecordAccess:
    """One actor's permitted view of one patient's record, for one request.

    Every read through it is audited with the entries it disclosed; nothing else in the
    code base hands out clinical data.
    """

    actor: Actor
    patient: Patient
    decision: AccessDecision
    action: Action
    _base: QuerySet = field(repr=False, default=None)

    @property
    def entries(self) -> QuerySet[RecordEntry]:
        """The permitted entries, sealed (SealedEntries): filter and shape them, then pass
        the shape to read(), count(), counts() or locate(), which evaluate and audit."""
        return self._base

    def counts(self, shape: Callable[[QuerySet], T], *, detail: dict | None = None) -> T:
        """Numbers about the permitted entries (items per kind, per holder...), audited as
        a search that disclosed none. ``shape`` turns the entries into numbers only: counts,
        aggregates, or rows of grouping columns with their counts, never an entry."""
        with _policy_scope():
            result = shape(self._base)
            if isinstance(result, QuerySet):
                result = list(result)
        self._audit([], {**(detail or {}), "summary": "count"})
        return result

    def locate(self, shape: Callable[[QuerySet], QuerySet]) -> list:
        """Ids of permitted entries (``shape`` ends in values_list of id columns), to route
        a request to the right record before its read: no content, and the read that then
        releases anything is audited. A caller that stops here has released nothing."""
        with _policy_scope():
            return list(shape(self._base))

    def read(
        self, shape: Callable[[QuerySet], Iterable[RecordEntry]] | None = None, *, detail: dict | None = None
    ) -> list[RecordEntry]:
        """Evaluate the permitted entries (shaped by the caller) and audit the disclosure."""
        query = self._base if shape is None else shape(self._base)
        with _policy_scope():
            rows = list(query)
        # The rows leave only once their event is written: a failed write raises here.
        self._audit(rows, detail)
        return rows

    def count(
        self, shape: Callable[[QuerySet], QuerySet[RecordEntry]] | None = None, *, detail: dict | None = None
    ) -> int:
        """How many permitted entries (shaped by the caller) there are, audited as a
        search that disclosed none: only the number leaves."""
        query = self._base if shape is None else shape(self._base)
        with _policy_scope():
            # Filters such as code= match the stored text: counting reads clinical content.
            total = query.count()
        self._audit([], {**(detail or {}), "summary": "count"})
        return total

    def read_one(self, entry_id, *, detail: dict | None = None) -> RecordEntry:
        """One permitted entry, or NotFound whether it is missing or not permitted."""
        try:
            entry_uuid = uuid.UUID(str(entry_id))
        except ValueError:
            raise NotFound from None
        with transaction.atomic(), _policy_scope():
            entry = self._base.filter(pk=entry_uuid).select_related("owner").first()
            if entry is None:
                self._refuse(entry_uuid, detail)
            else:
                self._audit([entry], detail)
        if entry is None:
            raise NotFound
        return entry

    def history(
        self, entry_id, *, version: int | None = None, detail: dict | None = None
    ) -> tuple[RecordEntry, list[EntryVersion]]:
        """One permitted entry with the versions of it filed under this patient's record,
        oldest first (or only the one asked for), audited as exactly the versions
        released; NotFound alike for a missing, refused or other patient's version.

        A version belongs to the patient it was filed under: an item its owner re-filed
        from another patient's record shows nothing of what it said there."""
        try:
            entry_uuid = uuid.UUID(str(entry_id))
        except ValueError:
            raise NotFound from None
        detail = {"history": True, **({"version": version} if version is not None else {}), **(detail or {})}
        with transaction.atomic(), _policy_scope():
            entry = self._base.filter(pk=entry_uuid).select_related("owner").first()
            versions = []
            if entry is not None:
                filed = EntryVersion.objects.filter(entry=entry).filed_under(self.patient)
                if version is not None:
                    filed = filed.filter(number=version)
                versions = self._of_permitted_category(
                    entry, list(filed.select_related("batch").order_by("number"))
                )
            if not versions:
                self._refuse(entry_uuid, detail)
            else:
                # The event names the versions disclosed, not only the current one: notices
                # of a later correction go to whoever saw each version.
                self._audit([f"{entry.pk.hex}:{v.number}" for v in versions], detail)
        if not versions:
            raise NotFound
        return entry, versions

    def _of_permitted_category(self, entry: RecordEntry, versions: list[EntryVersion]) -> list[EntryVersion]:
        """Each version is judged by the category it had, not only the item by its current
        one: a version an owner labelled sexual health, later relabelled general, stays
        with those the patient let see sexual health. Only a view limited by category (an
        organisation reading what it does not own, without break-glass) drops any."""
        categories = _categories_of_others(self.decision)
        if categories is None or entry.owner_id == getattr(self.actor.organisation, "pk", None):
            return versions
        kind = entry.owner.kind
        return [v for v in versions if columns.category(orjson.loads(v.json), kind) in categories]

    def moved_away(self) -> list[dict]:
        """Items the data owner re-filed from this record to another patient's (or to
        none yet): the patient, and the owning organisation's staff, see who moved one
        and when; never what it said or where it went."""
        moves = Refiling.objects.filter(from_patient=self.patient).order_by("-moved_at", "-pk")
        if self.decision.basis != "own-record":
            if not self.decision or self.actor.organisation is None:
                return []
            moves = moves.filter(entry__owner=self.actor.organisation)
        return [
            {"owner": owner, "moved_at": moved_at}
            for moved_at, owner in moves.values_list("moved_at", "entry__owner__name")
        ]

    def _refuse(self, entry_uuid: uuid.UUID, detail: dict | None) -> None:
        audit.record(
            self.action.value,
            patient=self.patient,
            outcome="deny",
            reason="entry not found or not permitted",
            purpose=self.decision.purpose,
            detail={"entry": entry_uuid.hex, **(detail or {})},
            **self.actor.audit_fields(),
        )

    def _audit(self, rows: list[RecordEntry | str], detail: dict | None) -> None:
        extra = dict(detail or {})
        if self.decision.break_glass is not None:
            extra["break_glass"] = self.decision.break_glass.pk
        audit.record(
            self.action.value,
            entries=rows,
            patient=self.patient,
            outcome="permit",
            purpose=self.decision.purpose,
            reason=self.decision.reason[:200],
            detail=extra,
            **self.actor.audit_fields(),
        )


def _parsed_ref(ref: str) -> tuple[uuid.UUID, int | None] | None:
    entry, _, version = ref.partition(":")
    try:
        return uuid.UUID(entry), (int(version) if version else None)
    except ValueError:
        return None


def item_names(refs: Iterable[str]) -> dict[str, str]:
    """The name of each item version the audit trail references ("High blood pressure"),
    read from that version in one query, for the IG console only: what an access
    disclosed, so that an IG officer can judge it, never the values, dates or notes it
    held. An item that names nothing is called by its kind. This is the one read of
    clinical JSON made for governance; its callers are IG officers' pages, each of which
    writes its own audit event."""
    wanted = {ref: parsed for ref in set(refs) if (parsed := _parsed_ref(ref)) is not None}
    if not wanted:
        return {}
    entry_ids = {entry for entry, _ in wanted.values()}
    numbers = {number for _, number in wanted.values() if number is not None}
    versions = EntryVersion.objects.filter(entry_id__in=entry_ids)
    if all(number is not None for _, number in wanted.values()):
        versions = versions.filter(number__in=numbers)
    # A version's JSON is clinical content: only the name leaves this function.
    with _policy_scope():
        rows = list(versions.values_list("entry_id", "number", "json", "entry__resource_type"))
    names: dict[tuple[uuid.UUID, int], str] = {}
    latest: dict[uuid.UUID, str] = {}
    for entry_id, number, text, resource_type in sorted(rows, key=lambda r: (r[0], r[1])):
        try:
            resource = orjson.loads(text)
        except orjson.JSONDecodeError:
            resource = {}
        # The patient's own details are "Personal details", not the name they hold.
        title = "" if resource_type in NOT_ITEMS else item_title(resource)
        names[(entry_id, number)] = title or type_name(resource_type)
        latest[entry_id] = names[(entry_id, number)]
    found = {}
    for ref, (entry, number) in wanted.items():
        name = latest.get(entry) if number is None else names.get((entry, number))
        found[ref] = name or "An item no longer held"
    return found


def find_patient(patient_id) -> Patient | None:
    try:
        return Patient.objects.filter(pk=uuid.UUID(str(patient_id))).first()
    except ValueError:
        return None


def _patient_and_glass(actor: Actor, patient_id, now: datetime):
    """The patient and the actor's open break-glass on them, in one query."""
    try:
        patients = Patient.objects.filter(pk=uuid.UUID(str(patient_id)))
    except ValueError:
        return None, None
    if not _may_break_glass(actor):
        return patients.first(), None
    open_glass = _open_glasses(actor, now).filter(patient=OuterRef("pk"))
    patient = patients.annotate(glass_id=Subquery(open_glass.values("pk")[:1])).first()
    if patient is None or patient.glass_id is None:
        return patient, None
    return patient, BreakGlass.objects.get(pk=patient.glass_id)


def open_record(
    actor: Actor, patient_id, *, action: Action = Action.READ_RECORD, now: datetime | None = None
) -> RecordAccess:
    """Fetch a patient's record for an actor: the permitted view, or NotFound (audited)."""
    now = now or timezone.now()
    patient, glass = _patient_and_glass(actor, patient_id, now)
    if patient is None:
        _refuse_as_if_there(actor, action, now)
        decision = AccessDecision(False, "no such patient", "role")
    else:
        decision = decide(actor, action, patient, now=now, glass=glass)
    if not decision:
        audit.record(
            action.value,
            patient=patient,
            outcome="deny",
            reason=decision.reason[:200],
            detail={} if patient else requested(patient_id),
            **actor.audit_fields(),
        )
        raise NotFound
    return RecordAccess(actor, patient, decision, action, permitted_entries(actor, patient, decision))


# The patient a search that names nobody opens (no patient has it), so that it does the
# work, and writes the event, that naming a patient who refused the caller does.
NO_ONE = uuid.UUID(int=0)


def _refuse_as_if_there(actor: Actor, action: Action, now: datetime) -> None:
    """Refusing a patient who does not exist costs what refusing one who does costs, so
    that timing cannot tell whether a patient exists: decide for a stand-in no record
    belongs to, and ask whether the actor's organisation holds any of it, as decide does
    when a patient's choices do not permit that organisation (tests count the queries)."""
    stand_in = Patient(pk=NO_ONE)
    if decide(actor, action, stand_in, now=now, glass=None) and actor.organisation is not None:
        RecordEntry.objects.filter(patient=stand_in, owner=actor.organisation).exists()


def requested(value) -> dict:
    """What a refused attempt asked for, for its audit detail: never anything that looks
    like an NHS number (a caller may put one where an id belongs)."""
    return {"requested": mask_nhs_numbers(str(value))[:64]}


def refused_attempt(actor: Actor, action: Action, requested_id, *, detail: dict | None = None) -> NotFound:
    """Audit an attempt that named nothing the actor may see, for the actor alone: with no
    patient, so that it stays out of the log of whoever the id belongs to, yet counts
    among the actor's refused reads (IG's probing signal). Returns the NotFound to raise."""
    audit.record(
        action.value,
        outcome="deny",
        reason="nothing by this id that the caller may see",
        detail={**(detail or {}), **requested(requested_id)},
        **actor.audit_fields(),
    )
    return NotFound()


def authorise(actor: Actor, action: Action, patient_id) -> tuple[Patient, AccessDecision]:
    """Fetch-and-authorise for metadata actions (consent, audit log): NotFound alike."""
    patient = find_patient(patient_id)
    decision = decide(actor, action, patient) if patient else AccessDecision(False, "no such patient", "role")
    if not decision:
        audit.record(
            action.value,
            patient=patient,
            outcome="deny",
            reason=decision.reason[:200],
            **actor.audit_fields(),
        )
        raise NotFound
    return patient, decision


def may_write(actor: Actor, organisation: Organisation) -> bool:
    """An organisation's system writes only its own organisation's data."""
    return (
        actor.role == ActorRole.SYSTEM
        and actor.organisation is not None
        and actor.organisation.pk == organisation.pk
    )


# --- Copies of clinical text kept outside the record ------------------------------------


def read_copies(
    access: RecordAccess, copied: Iterable[tuple[uuid.UUID, int]], *, detail: dict | None = None
) -> frozenset[uuid.UUID]:
    """Copies of an item's text kept outside the record (a correction request's item name,
    "what it says now" and its thread) are shown only to whom the item itself is shown,
    now: of the copied (entry, version) pairs, the entries this view permits, the
    disclosure audited naming them and a refusal audited too."""
    wanted = {uuid.UUID(str(entry_id)): int(version) for entry_id, version in copied}
    if not wanted:
        return frozenset()
    with _policy_scope():
        permitted = frozenset(access.entries.filter(pk__in=list(wanted)).values_list("pk", flat=True))
    extra = {**(detail or {}), "copies": True}
    if permitted:
        # Named as the version copied, which is what the copy discloses.
        access._audit([f"{pk.hex}:{wanted[pk]}" for pk in sorted(permitted)], extra)
    refused = sorted(pk.hex for pk in wanted.keys() - permitted)
    if refused:
        audit.record(
            access.action.value,
            patient=access.patient,
            outcome="deny",
            reason="copies of items withheld or not permitted",
            purpose=access.decision.purpose,
            detail={**extra, "refused": refused},
            **access.actor.audit_fields(),
        )
    return permitted
