"""FHIR R4 at /fhir/: thin views over the policy (consent.policy) and the correction
workflow (accuracy.services). Every read of the record goes through open_record and is
audited with exactly the entries it returns; everything is served as stored.

Resource ids. A resource keeps the id its data owner gave it (the stored ``fhir_id``),
served as it is. Ids are unique only per data owner, so a read ``GET /fhir/<Type>/<id>``
resolves the id among the entries the caller may see, and:
- none permitted (or none at all) answers 404, the same for missing and not allowed;
- exactly one permitted answers it;
- two or more permitted (two owners used one id) answers 409 ``multiple-matches`` and
  never guesses; each entry can then be read unambiguously by its entry UUID in place of
  the id (``GET /fhir/<Type>/<entry uuid>``), as ``search`` with ``_id`` and ``patient``
  also tells them apart.
``GET /fhir/<Type>/<id>/_history/<n>`` reads one version the same way. A patient's read
looks only in their own record; a staff read opens only the records the policy lets them
read, so an id reused in someone else's record leaves no refused attempt in their log.
The network patient is ``Patient/<patient uuid>``: one owner's Patient entry that the
caller may see, with its id replaced by that UUID (the only record resource re-encoded).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections import defaultdict
from functools import wraps
from urllib.parse import urlencode

import orjson
from django.db.models import Case, Count, IntegerField, Q, Value, When, Window
from django.db.models import F as Field
from django.http import HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

import audit
from accuracy import fhir as correction_fhir
from accuracy import services as corrections
from accuracy.models import CorrectionRequest
from consent import access_log, ig_queries
from consent.fhir import consent_resource
from consent.policy import Action, Actor, ActorRole, NotFound, authorise, decide, open_record
from phr import fhir as fhir_models
from phr.models import Patient, RecordEntry

from . import capability
from .auth import api_actor, has_scope
from .fhir_bundle import (
    bundle,
    bundle_entry,
    entry_texts,
    instant,
    not_found,
    outcome,
    patient_text,
    resource_bundle,
    response,
)
from .fhir_search import (
    Page,
    SearchError,
    check_known,
    parse_page,
    parse_record_search,
    patient_id,
)

logger = logging.getLogger(__name__)

# Served by their own views below; the generic record views leave them alone.
PORTAL_TYPES = frozenset({"Consent", "AuditEvent", "Provenance", "Task", "Communication"})
# The sections of the $summary document: (title, LOINC code, display, resource types).
SUMMARY_SECTIONS = (
    ("Problems", "11450-4", "Problem list - Reported", ("Condition",)),
    (
        "Medications",
        "10160-0",
        "History of Medication use Narrative",
        ("MedicationStatement", "MedicationRequest"),
    ),
    (
        "Allergies and intolerances",
        "48765-2",
        "Allergies and adverse reactions Document",
        ("AllergyIntolerance",),
    ),
    ("Immunizations", "11369-6", "History of Immunization Narrative", ("Immunization",)),
    (
        "Results",
        "30954-2",
        "Relevant diagnostic tests/laboratory data Narrative",
        ("Observation", "DiagnosticReport"),
    ),
)
SUMMARY_TYPES = frozenset(t for *_, types in SUMMARY_SECTIONS for t in types)
LOINC = "http://loinc.org"


class Unauthenticated(Exception):
    def __init__(self, challenge: str = 'Bearer realm="fhir"'):
        super().__init__(challenge)
        self.challenge = challenge


class MissingScope(Exception):
    def __init__(self, scope: str):
        super().__init__(scope)
        self.scope = scope


def fhir_view(view):
    """GET only, errors as OperationOutcomes, and never an HTML page or a bare 500."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return outcome(405, f"{request.method} is not supported here", code="not-supported")
        try:
            return view(request, *args, **kwargs)
        except Unauthenticated as refused:
            reply = outcome(401, "Sign in or send a valid bearer token", code="login")
            reply["WWW-Authenticate"] = refused.challenge
            return reply
        except MissingScope as missing:
            return outcome(
                403, f"The access token does not carry the scope {missing.scope}", code="forbidden"
            )
        except SearchError as error:
            return outcome(400, error.message, expression=error.parameter)
        except NotFound:
            return not_found()
        except Ambiguous:
            return outcome(
                409,
                "More than one organisation holds a resource of this type with this id: read it by"
                " its entry id, or search with _id and patient",
                code="multiple-matches",
            )
        except Exception:
            logger.exception("FHIR request failed: %s", request.path)
            return outcome(500, "The server could not answer this request", code="exception")

    return wrapper


def caller(request, resource_type: str) -> Actor:
    """The signed-in actor, holding a read scope for ``resource_type``."""
    try:
        actor = api_actor(request)
    except Exception as invalid:
        # api.auth refuses a bad bearer token with an exception carrying its challenge.
        challenge = getattr(invalid, "challenge", None)
        if challenge is None:
            raise
        raise Unauthenticated(challenge) from None
    if actor.role == ActorRole.ANONYMOUS:
        raise Unauthenticated
    context = {ActorRole.PATIENT: "patient", ActorRole.SYSTEM: "system"}.get(actor.role, "user")
    scope = f"{context}/{resource_type}.read"
    if not (has_scope(request, scope) or has_scope(request, f"{context}/*.read")):
        raise MissingScope(scope)
    return actor


def base_url(request) -> str:
    return request.build_absolute_uri(reverse("fhir:metadata")).removesuffix("metadata")


def own_or_given(actor: Actor, given: str | None, parameter: str = "patient") -> str:
    """The patient a search is about: the one given, or a patient's own record."""
    if given:
        return given
    if actor.role == ActorRole.PATIENT and actor.patient_id:
        return str(actor.patient_id)
    raise SearchError(parameter, f"This search needs {parameter}=<patient id>")


def page_links(request, page: Page, returned: int, total: int | None) -> list[tuple[str, str]]:
    """self, and previous/next by _offset; built from the query only (ids, never names)."""
    path = request.build_absolute_uri(request.path)
    params = [(k, v) for k, v in request.GET.lists() for v in v if k not in ("_count", "_offset")]

    def url(offset: int) -> str:
        return f"{path}?{urlencode([*params, ('_count', page.count), ('_offset', offset)])}"

    links = [("self", url(page.offset))]
    if page.offset:
        links.append(("previous", url(max(page.offset - page.count, 0))))
    if total is not None and page.offset + returned < total:
        links.append(("next", url(page.offset + page.count)))
    return links


def counted(rows) -> int | None:
    return rows[0].search_total if rows else None


def with_total(entries):
    """The total of the (permitted, filtered) search on every row: one query, in the read."""
    return entries.annotate(search_total=Window(Count("pk")))


def ordered(entries):
    return entries.order_by(
        Case(When(resource_type="Patient", then=Value(0)), default=Value(1), output_field=IntegerField()),
        "resource_type",
        Field("clinical_date").desc(nulls_last=True),
        "pk",
    )


def network_patient_source(entries):
    """The one owner's Patient entry that stands for the network patient."""
    return entries.filter(resource_type="Patient").order_by("first_received_at", "pk").values("pk")[:1]


def record_parts(base: str, patient, rows: list[RecordEntry], mode: str | None = "match") -> list[str]:
    parts = []
    for entry, text in entry_texts(rows):
        if entry.resource_type == "Patient":
            parts.append(bundle_entry(f"{base}Patient/{patient.pk}", patient_text(patient, entry), mode))
        else:
            parts.append(bundle_entry(f"{base}{entry.resource_type}/{entry.fhir_id}", text, mode))
    return parts


def searchset(request, parts: list[str], page: Page, total: int | None) -> HttpResponse:
    links = page_links(request, page, len(parts), total)
    return response(bundle("searchset", parts, total=total, links=links))


def empty_searchset(request, page: Page) -> HttpResponse:
    return searchset(request, [], page, 0)


# --- metadata ------------------------------------------------------------------------------


@fhir_view
def metadata(request):
    """The CapabilityStatement: what this server really does. No sign-in needed."""
    return response(capability.capability_statement(request, base_url(request)))


# --- The record: read and search --------------------------------------------------------


def known_type(resource_type: str) -> None:
    cls = fhir_models.model_class(resource_type)
    if resource_type in PORTAL_TYPES or cls is None or not fhir_models._is_resource_class(cls):
        raise UnknownType(resource_type)


class UnknownType(NotFound):
    pass


def _unknown_type(resource_type: str) -> HttpResponse:
    return outcome(404, f"This server has no resource type '{resource_type[:64]}'", code="not-supported")


@fhir_view
def search(request, resource_type: str):
    """Search one type of the record: ?patient=&_id=&_lastUpdated=&category=&code=&date=."""
    try:
        known_type(resource_type)
    except UnknownType:
        return _unknown_type(resource_type)
    actor = caller(request, resource_type)
    if resource_type == "Patient":
        return patient_search(request, actor)
    query = parse_record_search(request.GET)
    page = query.page
    try:
        access = open_record(actor, own_or_given(actor, query.patient), action=Action.SEARCH_RECORD)
    except NotFound:
        return empty_searchset(request, page)
    rows = access.read(
        lambda entries: with_total(ordered(query.apply(entries.filter(resource_type=resource_type))))[
            page.offset : page.offset + page.count
        ],
        detail={"api": "fhir", "query": request.GET.urlencode()[:500]},
    )
    total = counted(rows) if rows else (0 if page.offset == 0 else None)
    return searchset(request, record_parts(base_url(request), access.patient, rows), page, total)


def patient_search(request, actor: Actor) -> HttpResponse:
    """The network patient: ?_id=<uuid> (a patient's own when none is given)."""
    check_known(request.GET, frozenset({"_id", "_count", "_offset"}))
    page = parse_page(request.GET)
    given = request.GET.get("_id")
    pid = patient_id(given, "_id") if given else own_or_given(actor, None, "_id")
    try:
        access = open_record(actor, pid, action=Action.SEARCH_RECORD)
    except NotFound:
        return empty_searchset(request, page)
    rows = access.read(
        lambda entries: entries.filter(pk__in=network_patient_source(entries)),
        detail={"api": "fhir", "query": request.GET.urlencode()[:500]},
    )
    parts = [
        bundle_entry(
            f"{base_url(request)}Patient/{pid}", patient_text(access.patient, rows[0] if rows else None)
        )
    ]
    return searchset(request, parts if page.offset == 0 else [], page, 1)


@fhir_view
def read(request, resource_type: str, resource_id: str):
    """One resource by its id (see the module's note on ids), or 404 alike."""
    try:
        known_type(resource_type)
    except UnknownType:
        return _unknown_type(resource_type)
    actor = caller(request, resource_type)
    if resource_type == "Patient":
        access = open_record(actor, resource_id, action=Action.READ_RECORD)
        rows = access.read(
            lambda entries: entries.filter(pk__in=network_patient_source(entries)), detail={"api": "fhir"}
        )
        return response(patient_text(access.patient, rows[0] if rows else None))
    access, pk = resolve(actor, resource_type, resource_id)
    entry = access.read_one(pk, detail={"api": "fhir"})
    return response(entry_texts([entry])[0][1])


class Ambiguous(Exception):
    pass


def resolve(actor: Actor, resource_type: str, resource_id: str):
    """The one permitted entry a read names: (its patient's record, its entry id).

    NotFound when none is permitted, Ambiguous when two owners' entries share the id.
    """
    ids = Q(fhir_id=resource_id)
    with contextlib.suppress(ValueError):  # an entry's own UUID reads it unambiguously
        ids |= Q(pk=uuid.UUID(resource_id))
    candidates = RecordEntry.objects.filter(ids, resource_type=resource_type, patient__isnull=False)
    if actor.role == ActorRole.PATIENT:
        # A patient reads only their own record: another's entry with the same id is
        # not theirs to try, nor should it appear as a refused attempt in its log.
        candidates = candidates.filter(patient_id=actor.patient_id)
    # Only ids and patients here: the content is read through the policy below.
    by_patient = defaultdict(list)
    for pk, pid in candidates.values_list("pk", "patient_id"):
        by_patient[pid].append(pk)
    if len(by_patient) > 1:
        # The id is in several records: open only those the actor may read, so that an
        # id that happens to be reused elsewhere is not logged as an attempt on them.
        allowed = {
            p.pk for p in Patient.objects.filter(pk__in=by_patient) if decide(actor, Action.READ_RECORD, p)
        }
        by_patient = {pid: pks for pid, pks in by_patient.items() if pid in allowed}
    visible, refused = [], None
    for pid, pks in by_patient.items():
        try:
            access = open_record(actor, pid, action=Action.READ_RECORD)
        except NotFound:
            continue
        permitted = list(access.entries.filter(pk__in=pks).values_list("pk", flat=True))
        visible += [(access, pk) for pk in permitted]
        if not permitted:
            refused = (access, pks[0])
    if len(visible) > 1:
        raise Ambiguous
    if not visible:
        if refused:
            refused[0].read_one(refused[1], detail={"api": "fhir"})  # audits the refusal, raises
        raise NotFound
    return visible[0]


@fhir_view
def vread(request, resource_type: str, resource_id: str, version: str):
    """One version of a resource, as it was received or amended (``_history/<n>``)."""
    try:
        known_type(resource_type)
    except UnknownType:
        return _unknown_type(resource_type)
    actor = caller(request, resource_type)
    if resource_type == "Patient":
        raise NotFound
    access, pk = resolve(actor, resource_type, resource_id)
    _, versions = access.history(pk, detail={"api": "fhir", "version": version})
    found = next((v for v in versions if str(v.number) == version), None)
    if found is None:
        raise NotFound
    return response(found.json)


# --- Patient operations --------------------------------------------------------------------


@fhir_view
def everything(request, patient_uuid):
    """Patient/$everything: the whole permitted record, the network Patient first."""
    actor = caller(request, "Patient")
    check_known(request.GET, frozenset({"_count", "_offset"}))
    paged = "_count" in request.GET or "_offset" in request.GET
    page = parse_page(request.GET)
    access = open_record(actor, patient_uuid, action=Action.EXPORT_RECORD)

    def shape(entries):
        chosen = entries.filter(~Q(resource_type="Patient") | Q(pk__in=network_patient_source(entries)))
        chosen = with_total(ordered(chosen))
        return chosen[page.offset : page.offset + page.count] if paged else chosen

    rows = access.read(shape, detail={"api": "fhir", "operation": "everything"})
    total = counted(rows) if rows else (0 if page.offset == 0 else None)
    parts = record_parts(base_url(request), access.patient, rows)
    if not paged:
        return response(
            bundle("searchset", parts, total=total, links=[("self", request.build_absolute_uri())])
        )
    return searchset(request, parts, page, total)


@fhir_view
def summary(request, patient_uuid):
    """Patient/$summary: an International Patient Summary style document Bundle."""
    actor = caller(request, "Patient")
    check_known(request.GET, frozenset())
    access = open_record(actor, patient_uuid, action=Action.EXPORT_RECORD)
    rows = access.read(
        lambda entries: ordered(
            entries.filter(
                Q(resource_type__in=SUMMARY_TYPES, entered_in_error=False)
                | Q(pk__in=network_patient_source(entries))
            )
        ),
        detail={"api": "fhir", "operation": "summary"},
    )
    patient = access.patient
    subject = f"urn:uuid:{patient.pk}"
    parts, sections = [], []
    texts = entry_texts(rows)
    source = next((entry for entry, _ in texts if entry.resource_type == "Patient"), None)
    for title, code, display, types in SUMMARY_SECTIONS:
        refs = [{"reference": f"urn:uuid:{entry.pk}"} for entry, _ in texts if entry.resource_type in types]
        section = {"title": title, "code": {"coding": [{"system": LOINC, "code": code, "display": display}]}}
        if refs:
            section["entry"] = refs
        else:
            section["emptyReason"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                        "code": "unavailable",
                        "display": "Unavailable",
                    }
                ]
            }
        sections.append(section)
    composition = {
        "resourceType": "Composition",
        "id": str(uuid.uuid4()),
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": "60591-5", "display": "Patient summary Document"}]},
        "subject": {"reference": subject},
        "date": instant(),
        "author": [{"display": "Patient Record Portal"}],
        "title": "Patient summary",
        "section": sections,
    }
    parts.append(bundle_entry(f"urn:uuid:{composition['id']}", json.dumps(composition), None))
    parts.append(bundle_entry(subject, patient_text(patient, source), None))
    parts += [
        bundle_entry(f"urn:uuid:{entry.pk}", text, None)
        for entry, text in texts
        if entry.resource_type != "Patient"
    ]
    identifier = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}
    return response(bundle("document", parts, extra={"identifier": identifier}))


# --- Consent, AuditEvent, Provenance ------------------------------------------------------


@fhir_view
def consent_search(request):
    """The patient's sharing choices in force, as one Consent (?patient=<uuid>)."""
    actor = caller(request, "Consent")
    check_known(request.GET, frozenset({"patient", "_count", "_offset"}))
    page = parse_page(request.GET)
    given = request.GET.get("patient")
    pid = own_or_given(actor, patient_id(given) if given else None)
    try:
        patient, decision = authorise(actor, Action.READ_CONSENT, pid)
    except NotFound:
        return empty_searchset(request, page)
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
    resources = [consent] if page.offset == 0 else []
    links = page_links(request, page, len(resources), 1)
    return response(resource_bundle("searchset", resources, base_url(request), total=1, links=links))


@fhir_view
def audit_search(request):
    """Who looked: a patient's own access log (looks by others), or, for an IG officer,
    every event about a patient (?patient=) or about everyone."""
    actor = caller(request, "AuditEvent")
    check_known(request.GET, frozenset({"patient", "_count", "_offset"}))
    page = parse_page(request.GET)
    given = request.GET.get("patient")
    if actor.role == ActorRole.IG_OFFICER and not given:
        patient, events = None, ig_queries.search_events(ig_queries.AuditFilters())
    else:
        pid = own_or_given(actor, patient_id(given) if given else None)
        try:
            patient, _ = authorise(actor, Action.READ_AUDIT, pid)
        except NotFound:
            return empty_searchset(request, page)
        if actor.role == ActorRole.IG_OFFICER:
            events = ig_queries.search_events(ig_queries.AuditFilters(patient=patient))
        else:
            events = access_log.looks(patient, viewer=actor.user, filters=access_log.LogFilters())
    total = events.count()
    shown = list(events[page.offset : page.offset + page.count])
    audit.record(
        "audit.search",
        patient=patient,
        outcome="permit",
        purpose="governance" if actor.role == ActorRole.IG_OFFICER else "patient-access",
        detail={"api": "fhir", "query": request.GET.urlencode()[:500]},
        **actor.audit_fields(),
    )
    resources = [ig_queries.fhir_audit_event(event) for event in shown]
    links = page_links(request, page, len(resources), total)
    return response(resource_bundle("searchset", resources, base_url(request), total=total, links=links))


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


@fhir_view
def provenance_search(request):
    """Amendments: the Provenance stored by the amending owner for targets the caller may
    read (?target=<Type>/<id>, or ?patient=<uuid> for every amended item)."""
    actor = caller(request, "Provenance")
    check_known(request.GET, frozenset({"target", "patient", "_count", "_offset"}))
    page = parse_page(request.GET)
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
        targets = access.entries
        if target:
            targets = targets.filter(resource_type=resource_type, fhir_id=target_id)
        else:
            targets = targets.filter(correction_requests__amended_version__isnull=False)
        accesses.append((access, set(targets.values_list("resource_type", "fhir_id", "owner_id").distinct())))
    parts = []
    for access, targets in accesses:
        if not targets:
            continue
        # Provenance rows have no patient: they are reached through targets the policy
        # permitted above, and this read audits them against the target's patient.
        rows = access.read(
            lambda _, targets=targets: amendments_of(targets),
            detail={"api": "fhir", "query": request.GET.urlencode()[:500]},
        )
        parts += [
            bundle_entry(f"{base_url(request)}Provenance/{entry.fhir_id}", text)
            for entry, text in entry_texts(rows)
        ]
    shown = parts[page.offset : page.offset + page.count]
    return searchset(request, shown, page, len(parts))


# --- Corrections: Task and Communication ------------------------------------------------


def visible_requests(actor: Actor):
    """The correction requests an actor may see, as accuracy.services.request_for decides
    one by one: the patient's own, or those held by the actor's organisation."""
    requests = CorrectionRequest.objects.select_related("entry", "owner").defer(
        "entry__json", "entry__display"
    )
    if actor.role == ActorRole.PATIENT and actor.patient_id:
        return requests.filter(patient_id=actor.patient_id)
    if actor.role in (ActorRole.CLINICIAN, ActorRole.SYSTEM) and actor.organisation is not None:
        return requests.filter(owner=actor.organisation)
    return requests.none()


@fhir_view
def task_read(request, task_id: str):
    actor = caller(request, "Task")
    found = corrections.request_for(actor, task_id)
    reply = response(correction_fhir.task_resource(found))
    reply["ETag"] = f'W/"{found.revision}"'  # If-Match for PUT /fhir/Task/<id> (api.fhir_write)
    return reply


@fhir_view
def task_search(request):
    """Correction requests as Tasks: ?patient=<uuid>, ?owner=<ODS code> (an organisation's queue)."""
    actor = caller(request, "Task")
    check_known(request.GET, frozenset({"patient", "owner", "_count", "_offset"}))
    page = parse_page(request.GET)
    requests = visible_requests(actor).order_by("due_on", "created_at", "pk")
    if request.GET.get("patient"):
        requests = requests.filter(patient_id=patient_id(request.GET["patient"]))
    if request.GET.get("owner"):
        ods = request.GET["owner"].rpartition("|")[2].removeprefix("Organization/")
        requests = requests.filter(owner__ods_code=ods)
    total = requests.count()
    resources = [correction_fhir.task_resource(r) for r in requests[page.offset : page.offset + page.count]]
    links = page_links(request, page, len(resources), total)
    return response(resource_bundle("searchset", resources, base_url(request), total=total, links=links))


@fhir_view
def communication_search(request):
    """A correction request's conversation: ?part-of=Task/<uuid>."""
    actor = caller(request, "Communication")
    check_known(request.GET, frozenset({"part-of", "_count", "_offset"}))
    page = parse_page(request.GET)
    part_of = request.GET.get("part-of")
    if not part_of:
        raise SearchError("part-of", "This search needs part-of=Task/<id>")
    try:
        found = corrections.request_for(actor, part_of.removeprefix("Task/"))
    except NotFound:
        return empty_searchset(request, page)
    messages = list(found.messages.select_related("request__owner").order_by("sent_at", "pk"))
    resources = [correction_fhir.communication_resource(m) for m in messages]
    shown = resources[page.offset : page.offset + page.count]
    links = page_links(request, page, len(shown), len(resources))
    return response(resource_bundle("searchset", shown, base_url(request), total=len(resources), links=links))


@fhir_view
def unknown(request, rest: str = ""):
    """Anything else under /fhir/: an OperationOutcome, never an HTML page."""
    return outcome(404, "This server has no such endpoint", code="not-supported")
