"""The portal's own resources at /fhir/: Consent (a patient's choices in force),
AuditEvent (who looked) and Provenance (amendments), each read by the id its search gives
it, and only what the policy lets the caller see (docs/fhir.md)."""

from __future__ import annotations

import contextlib
import uuid

import orjson
from django.db.models import Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Concat
from django.db.models.lookups import Contains

import audit
from accuracy.models import CorrectionRequest
from audit.models import AuditEvent
from consent import access_log, ig_queries
from consent.fhir import consent_resource
from consent.policy import Action, Actor, ActorRole, NotFound, authorise, open_record
from phr.columns import parse_fhir_datetime
from phr.models import RecordEntry

from .bundle import bundle_entry, entry_texts, response
from .common import (
    Ambiguous,
    Problem,
    base_url,
    caller,
    dated_by,
    fhir_view,
    no_matches,
    own_or_given,
    portal_searchset,
    query_detail,
    searchset,
    shaped,
    total_only,
)
from .search import SearchError, parse_answer, patient_id, sort_items

# --- Consent, AuditEvent, Provenance ------------------------------------------------------


def patient_consent(actor: Actor, pid) -> dict:
    """The Consent of one patient's choices in force, if the policy lets the actor read it
    (audited either way); NotFound alike for a patient missing or not permitted."""
    patient, decision = authorise(actor, Action.READ_CONSENT, pid)
    audit.record(
        Action.READ_CONSENT.value,
        patient=patient,
        outcome="permit",
        purpose=decision.purpose,
        reason=decision.reason[:200],
        detail={"api": "fhir"},
        **actor.audit_fields(),
    )
    consent = consent_resource(patient)
    consent.setdefault("id", str(patient.pk))  # one Consent per patient: the choices in force
    return consent


@fhir_view
def consent_read(request, resource_id: str):
    """Consent/<patient uuid>: the Consent its search gives that patient."""
    actor = caller(request, "Consent")
    try:
        pid = patient_id(resource_id)
    except SearchError:
        raise NotFound from None
    return response(patient_consent(actor, pid))


# A patient's one Consent is dated when they last changed their choices.
CONSENT_SORT = {"date": dated_by("dateTime"), "_lastUpdated": dated_by("dateTime")}


@fhir_view
def consent_search(request):
    """The patient's sharing choices in force, as one Consent (?patient=<uuid>); even a
    count reads them, and is audited as the read is."""
    actor = caller(request, "Consent")
    answer = parse_answer(request.GET, frozenset({"patient"}), CONSENT_SORT)
    given = request.GET.get("patient")
    pid = own_or_given(actor, patient_id(given) if given else None)
    try:
        consent = patient_consent(actor, pid)
    except NotFound:
        return no_matches(request, answer.page, answer.shape)
    return portal_searchset(request, answer, [consent])


def audit_trail(actor: Actor, pid):
    """(patient, events) the actor may see: for an IG officer every event (about the
    patient, if one is given); for the patient, the looks at their record by others.
    NotFound alike (and audited) when the policy refuses the patient's trail."""
    if actor.role == ActorRole.IG_OFFICER and pid is None:
        return None, ig_queries.search_events(ig_queries.AuditFilters())
    patient, _ = authorise(actor, Action.READ_AUDIT, pid)
    if actor.role == ActorRole.IG_OFFICER:
        return patient, ig_queries.search_events(ig_queries.AuditFilters(patient=patient))
    return patient, access_log.looks(patient, viewer=actor.user, filters=access_log.LogFilters())


def audit_looked(actor: Actor, patient, action: str, detail: dict) -> None:
    audit.record(
        action,
        patient=patient,
        outcome="permit",
        purpose="governance" if actor.role == ActorRole.IG_OFFICER else "patient-access",
        detail=detail,
        **actor.audit_fields(),
    )


def with_fhir_id(events: QuerySet[AuditEvent], prefix: str) -> QuerySet[AuditEvent]:
    """The event (one at most, in practice) whose FHIR id is ``prefix``, the first 32 hex
    digits of its hash, found through the audit_hash index."""
    # Every hash that starts with the prefix lies in [prefix, prefix + "g") ("g" sorts
    # after every hex digit): a range the index serves on SQLite and PostgreSQL, where
    # LIKE alone would not. Unordered, as first() would sort by pk and might walk that.
    return events.filter(hash__gte=prefix, hash__lt=f"{prefix}g", hash__startswith=prefix).order_by()[:1]


@fhir_view
def audit_read(request, resource_id: str):
    """AuditEvent/<id>: an event its search would show the actor (the id is the UUID made
    from the event's hash, ig_queries.fhir_id)."""
    actor = caller(request, "AuditEvent")
    try:
        prefix = uuid.UUID(resource_id).hex
    except ValueError:
        raise NotFound from None
    # Staff other than IG never see the trail; a patient sees only their own record's.
    if actor.role not in (ActorRole.IG_OFFICER, ActorRole.PATIENT) or (
        actor.role == ActorRole.PATIENT and not actor.patient_id
    ):
        raise NotFound
    patient, events = audit_trail(actor, None if actor.role == ActorRole.IG_OFFICER else actor.patient_id)
    event = next(iter(with_fhir_id(events, prefix)), None)
    if event is None:
        raise NotFound
    audit_looked(actor, patient, Action.READ_AUDIT.value, {"api": "fhir", "event": resource_id})
    return response(ig_queries.fhir_audit_event(event))


# An AuditEvent is recorded when its event occurred; newest first without _sort.
AUDIT_SORT = {"date": "occurred_at"}
# Who looked at a record is the patient's alone (as /sharing/access-log/ and the JSON
# access log, a 404 there): someone acting for them is refused, not shown an empty log
# an app would read as "nobody looked". The refusal is audited against the record.
NOT_FOR_PROXIES = "Only the patient themself may see who has looked at their record"


@fhir_view
def audit_search(request):
    """Who looked: a patient's own access log (looks by others), or, for an IG officer,
    every event about a patient (?patient=) or about everyone. A count is audited as the
    search is."""
    actor = caller(request, "AuditEvent")
    answer = parse_answer(request.GET, frozenset({"patient"}), AUDIT_SORT)
    given = request.GET.get("patient")
    if given:
        pid = patient_id(given)
    else:
        pid = None if actor.role == ActorRole.IG_OFFICER else own_or_given(actor, None)
    try:
        patient, events = audit_trail(actor, pid)
    except NotFound:
        if actor.proxy is not None:
            raise Problem(403, NOT_FOR_PROXIES, code="forbidden") from None
        return no_matches(request, answer.page, answer.shape)
    # Answered (and so counted) before this search's own event is written, then audited
    # before anything leaves.
    reply = portal_searchset(request, answer, events, ig_queries.fhir_audit_event)
    audit_looked(actor, patient, "audit.search", {"api": "fhir", "query": query_detail(request)})
    return reply


def _reference_parts(value: str) -> tuple[str, str]:
    parts = value.split("/")
    if (
        len(parts) not in (2, 4)
        or not parts[0]
        or not parts[1]
        or (len(parts) == 4 and parts[2] != "_history")
    ):
        raise SearchError("target", "target must be a reference such as Condition/<id>")
    return parts[0], parts[1]


def amendments_of(targets: set[tuple[str, str, int]]):
    """The Provenance each target's owner stored about it (any version of it)."""
    match = Q()
    for resource_type, fhir_id, owner_id in targets:
        ref = orjson.dumps(f"{resource_type}/{fhir_id}").decode()
        any_version = Q(json__contains=f'"reference":{ref}') | Q(
            json__contains=f'"reference":{ref[:-1]}/_history/'
        )
        match |= Q(owner_id=owner_id) & any_version
    return RecordEntry.objects.filter(match, resource_type="Provenance").order_by("last_updated_at", "pk")


def recorded(found: tuple[RecordEntry, str]):
    """A _sort key for a stored Provenance (and its text): when it says it was recorded."""
    return parse_fhir_datetime(orjson.loads(found[0].json).get("recorded"))


# Provenance has no clinical date column: date is the stored resource's own recorded.
PROVENANCE_SORT = {"date": recorded, "_lastUpdated": lambda found: found[0].last_updated_at}


@fhir_view
def provenance_search(request):
    """Amendments: the Provenance stored by the amending owner for targets the caller may
    read (?target=<Type>/<id>, or ?patient=<uuid> for every amended item). A count reads
    no Provenance out: each record's policy counts them and audits a search that
    disclosed none."""
    actor = caller(request, "Provenance")
    answer = parse_answer(request.GET, frozenset({"target", "patient"}), PROVENANCE_SORT)
    target = request.GET.get("target")
    given = request.GET.get("patient")
    accesses = []
    if target:
        resource_type, target_id = _reference_parts(target)
        found = RecordEntry.objects.filter(
            resource_type=resource_type, fhir_id=target_id, patient__isnull=False
        )
        if given:
            found = found.filter(patient_id=patient_id(given))
        patients = set(found.values_list("patient_id", flat=True))
    else:
        patients = {own_or_given(actor, patient_id(given) if given else None)}
    for pid in patients:
        try:
            access = open_record(actor, pid, action=Action.SEARCH_RECORD)
        except NotFound:
            continue

        def amended(entries):
            if target:
                entries = entries.filter(resource_type=resource_type, fhir_id=target_id)
            else:
                entries = entries.filter(correction_requests__amended_version__isnull=False)
            return entries.values_list("resource_type", "fhir_id", "owner_id").distinct()

        targets = set(access.locate(amended))
        if targets:
            accesses.append((access, targets))
    detail = {"api": "fhir", "query": query_detail(request)}
    # Provenance rows have no patient: they are reached through targets the policy
    # permitted above, and are counted or read (and audited) against the target's patient.
    if answer.shape.count_only:
        total = 0
        for access, targets in accesses:
            total += access.count(lambda _, t=targets: amendments_of(t), detail=detail)
        return total_only(request, total)
    found = []
    for access, targets in accesses:
        found += entry_texts(access.read(lambda _, t=targets: amendments_of(t), detail=detail))
    base = base_url(request)
    parts = [
        bundle_entry(f"{base}Provenance/{entry.fhir_id}", shaped(text, answer.shape))
        for entry, text in answer.page.of(sort_items(found, answer.sort))
    ]
    return searchset(request, parts, answer.page, len(found))


def targeted_by_outer(entries):
    """Those of the entries that the outer Provenance row's owner names as its target (any
    version), matched in the stored text exactly as amendments_of matches them."""
    reference = Concat(Value('"reference":"'), "resource_type", Value("/"), "fhir_id")
    return entries.filter(owner_id=OuterRef("owner_id")).filter(
        Q(Contains(OuterRef("json"), Concat(reference, Value('"'))))
        | Q(Contains(OuterRef("json"), Concat(reference, Value("/_history/"))))
    )


def target_patients(candidates) -> set:
    """The patients whose record each of these Provenance rows belongs to, routed by ids
    alone: the portal stores only its own amendment Provenance (organisations may not send
    one, phr.ingest.PORTAL_OWNED_TYPES), with the id ``correction-<request uuid>``, and the
    request names its patient. Nothing of a Provenance is read before the policy decides."""
    requests = set()
    for fhir_id in candidates.values_list("fhir_id", flat=True):
        with contextlib.suppress(ValueError):
            requests.add(uuid.UUID(fhir_id.removeprefix("correction-")))
    return set(CorrectionRequest.objects.filter(pk__in=requests).values_list("patient_id", flat=True))


@fhir_view
def provenance_read(request, resource_id: str):
    """Provenance/<id> (or its entry UUID): the one ``?target=`` finds for an item the
    caller may read. A patient's read looks in their own record; staff reach it through
    the patient of the items it names as targets (an amendment the portal recorded: no
    organisation may send a Provenance, see phr.ingest), and the policy decides on that
    record."""
    actor = caller(request, "Provenance")
    named = Q(fhir_id=resource_id)
    with contextlib.suppress(ValueError):
        named |= Q(pk=uuid.UUID(resource_id))
    candidates = RecordEntry.objects.filter(named, resource_type="Provenance", patient__isnull=True)
    found = list(candidates.values_list("owner_id", "fhir_id"))  # ids only, no content
    if actor.role == ActorRole.PATIENT:
        patients = {actor.patient_id} if found and actor.patient_id else set()
    else:
        patients = target_patients(candidates)
    shown = []
    for pid in patients:
        try:
            access = open_record(actor, pid, action=Action.READ_RECORD)
        except NotFound:
            continue
        # Provenance rows have no patient: this read returns those whose target the
        # policy permits in this record, and audits them against its patient.
        shown += access.read(
            lambda entries: candidates.filter(Exists(targeted_by_outer(entries))), detail={"api": "fhir"}
        )
    if len(shown) > 1:
        raise Ambiguous
    if not shown:
        raise NotFound
    return response(entry_texts(shown)[0][1])
