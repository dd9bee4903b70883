"""FHIR R4 at /fhir/: thin views over the policy (consent.policy) and the correction
workflow (accuracy.services). Every read of the record goes through open_record and is
audited with exactly the entries it returns; everything is served as stored.

Resource ids. A resource keeps the id its data owner gave it (the stored ``fhir_id``),
served as it is. Ids are unique only per data owner, so a read ``GET /fhir/<Type>/<id>``
resolves the id among the entries the caller may see, and:
- none permitted (or none at all) answers 404, the same for missing and not allowed;
- exactly one permitted answers it;
- two or more permitted (two owners used one id) answers, by a rule no sender can game
  (``precedence``): a staff caller's own organisation's entry, else the entry that has
  been in its record longest, so an organisation reusing an id it does not hold never
  displaces or blocks an item already there. Every entry is also read unambiguously by
  its entry UUID in place of the id (``GET /fhir/<Type>/<entry uuid>``), as ``search``
  with ``_id`` and ``patient`` also tells them apart.
``GET /fhir/<Type>/<id>/_history/<n>`` reads one version the same way, and only a version
filed under the record the entry is in now (an item its owner re-filed from another
patient's record shows nothing of what it said there). A patient's read
looks only in their own record; a staff read opens only the records the policy lets them
read, so an id reused in someone else's record leaves no refused attempt in their log.
The network patient is ``Patient/<patient uuid>``: one owner's Patient entry that the
caller may see, with its id replaced by that UUID (the only record resource re-encoded).

The portal's own resources are read by the ids their searches give them, under the same
rules: ``Consent/<patient uuid>`` (the choices in force), ``AuditEvent/<uuid from the
event's hash>``, ``Provenance/<id>`` (as ``?target=`` finds it), ``Communication/<id>``
(a correction conversation's message or statement of disagreement, or a correction notice
to the caller's organisation).

No NHS number or name ever goes in a URL: ``GET /fhir/Patient?identifier=`` (or name,
family, given, birthdate) is refused with 400, pointing to ``POST /fhir/Patient/_search``
with the parameters in an application/x-www-form-urlencoded body. Any search may be
POSTed that way. A POSTed search's Bundle links only to ``<Type>/_search`` itself, with no
parameters and no previous/next links: a client pages by POSTing again with ``_offset``.
Audit details name such parameters but never carry their values.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from urllib.parse import urlencode

import orjson
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When, Window
from django.db.models import F as Field
from django.db.models.functions import Coalesce, Concat
from django.db.models.lookups import Contains
from django.http import HttpResponse, QueryDict
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import Resolver404, reverse
from django.urls import resolve as resolve_url
from django.views.decorators.csrf import csrf_exempt

import audit
from accuracy import fhir as correction_fhir
from accuracy import record_display
from accuracy import services as corrections
from accuracy.models import CorrectionRequest, DownstreamNotice, Message, Statement
from accuracy.selectors import release_copies, visible_requests
from audit.models import AuditEvent
from consent import access_log, ig_queries
from consent.fhir import consent_resource
from consent.policy import (
    NO_ONE,
    SECOND_FACTOR_NEEDED,
    Action,
    Actor,
    ActorRole,
    NotFound,
    authorise,
    decide,
    open_record,
    refused_attempt,
)
from phr import fhir as fhir_models
from phr.columns import parse_fhir_datetime
from phr.models import Patient, RecordEntry
from phr.nhs_number import normalise

from . import capability
from .auth import api_actor, bearer_token, has_scope
from .fhir_bundle import (
    NHS_NUMBER,
    bundle,
    bundle_entry,
    entry_texts,
    instant,
    not_found,
    outcome,
    patient_text,
    response,
    subsetted,
)
from .fhir_search import (
    IGNORED,
    SHAPE_PARAMS,
    Answer,
    Page,
    SearchError,
    Shape,
    check_known,
    parse_answer,
    parse_date,
    parse_page,
    parse_record_search,
    parse_shape,
    patient_id,
    sort_items,
    sort_rows,
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
# Patient search parameters that carry an NHS number, a name or a birth date: POST only.
DEMOGRAPHIC_PARAMS = ("identifier", "name", "family", "given", "birthdate")
PATIENT_PARAMS = frozenset({"_id", *DEMOGRAPHIC_PARAMS, "_count", "_offset", *SHAPE_PARAMS})
# A name search must narrow itself with a birth date: it is not a way to browse people.
NAME_PARAMS = ("name", "family", "given")
# The most patients one demographic search may name (each is opened, and audited).
MAX_NAMED = 100
FORM = "application/x-www-form-urlencoded"


class Unauthenticated(Exception):
    def __init__(self, challenge: str = 'Bearer realm="fhir"'):
        super().__init__(challenge)
        self.challenge = challenge


class MissingScope(Exception):
    def __init__(self, scope: str):
        super().__init__(scope)
        self.scope = scope


class SecondFactorMissing(Exception):
    """Staff without a second factor set up: the policy refuses them every record and
    audit trail; the FHIR answer says why instead of a bare 404."""


def fhir_view(view):
    """GET (or a POSTed search, see post_search), errors as OperationOutcomes, and never an
    HTML page or a bare 500."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD") and not posted(request):
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
        except SecondFactorMissing:
            return outcome(403, SECOND_FACTOR_NEEDED, code="forbidden")
        except SearchError as error:
            return outcome(400, error.message, code=error.code, expression=error.parameter)
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


def posted(request) -> bool:
    """Whether this is a search POSTed to <Type>/_search, its parameters in request.GET."""
    return getattr(request, "posted_search", False)


def signed_in(request) -> Actor:
    """The signed-in actor (a session or a valid bearer token), or Unauthenticated."""
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
    if actor.second_factor_missing:
        raise SecondFactorMissing
    return actor


def caller(request, resource_type: str) -> Actor:
    """The signed-in actor, holding a read scope for ``resource_type``."""
    actor = signed_in(request)
    context = {ActorRole.PATIENT: "patient", ActorRole.SYSTEM: "system"}.get(actor.role, "user")
    scope = f"{context}/{resource_type}.read"
    if not (has_scope(request, scope) or has_scope(request, f"{context}/*.read")):
        raise MissingScope(scope)
    return actor


def record_reader(request) -> Actor:
    """The signed-in actor, releasing at least one resource type of the record: an
    operation over the whole record ($everything, $summary) answers the types it
    releases (the policy filters the entries), and a token that releases none is refused."""
    actor = signed_in(request)
    if actor.readable_types is not None and not actor.readable_types:
        context = {ActorRole.PATIENT: "patient", ActorRole.SYSTEM: "system"}.get(actor.role, "user")
        raise MissingScope(f"{context}/*.read")
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
    """self, and previous/next by _offset; built from the query only (ids, never names).
    A POSTed search's parameters stay out of URLs: it links only to itself, bare."""
    path = request.build_absolute_uri(request.path)
    if posted(request):
        return [("self", path)]
    params = [(k, v) for k, v in request.GET.lists() for v in v if k not in ("_count", "_offset")]

    def url(offset: int) -> str:
        return f"{path}?{urlencode([*params, ('_count', page.count), ('_offset', offset)])}"

    links = [("self", url(page.offset))]
    if page.offset:
        links.append(("previous", url(max(page.offset - page.count, 0))))
    if total is not None and page.offset + returned < total:
        links.append(("next", url(page.offset + page.count)))
    return links


def query_detail(request) -> str:
    """The search for the audit trail: parameter names always, values only where they can
    carry no NHS number, name or birth date."""
    parts = [
        (name, "-" if name in DEMOGRAPHIC_PARAMS else value)
        for name, values in request.GET.lists()
        for value in values
    ]
    return urlencode(parts)[:500]


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


def record_parts(
    base: str, patient, rows: list[RecordEntry], mode: str | None = "match", shape: Shape | None = None
) -> list[str]:
    parts = []
    for entry, text in entry_texts(rows):
        if entry.resource_type == "Patient":
            parts.append(
                bundle_entry(f"{base}Patient/{patient.pk}", shaped(patient_text(patient, entry), shape), mode)
            )
        else:
            parts.append(
                bundle_entry(f"{base}{entry.resource_type}/{entry.fhir_id}", shaped(text, shape), mode)
            )
    return parts


def searchset(request, parts: list[str], page: Page, total: int | None) -> HttpResponse:
    links = page_links(request, page, len(parts), total)
    return response(bundle("searchset", parts, total=total, links=links))


def empty_searchset(request, page: Page) -> HttpResponse:
    return searchset(request, [], page, 0)


def total_only(request, total: int) -> HttpResponse:
    """_summary=count: the total, no entries, and a self link."""
    return response(bundle("searchset", [], total=total, links=page_links(request, Page(), 0, None)[:1]))


def no_matches(request, page: Page, shape: Shape) -> HttpResponse:
    """A search that finds nothing the caller may see, answered as asked (a count or not)."""
    return total_only(request, 0) if shape.count_only else empty_searchset(request, page)


def shaped(text: str, shape: Shape | None) -> str:
    """A resource's text as a search answers it: subsetted when _elements asks."""
    return subsetted(text, shape.elements) if shape and shape.elements else text


def portal_searchset(
    request,
    answer: Answer,
    found: QuerySet | list[dict],
    to_resource: Callable[..., dict] | None = None,
    *,
    to_resources: Callable[[list], list[dict]] | None = None,
) -> HttpResponse:
    """A search of the portal's own resources answered as asked: the total alone, or one
    page in _sort's order, each resource shaped by _elements. ``found`` is either rows the
    caller may see (counted, sorted and paged in the database, and made resources by
    ``to_resource`` one row at a time, or by ``to_resources`` given the page's rows) or a
    list of the resources already built."""
    rows = isinstance(found, QuerySet)
    total = found.count() if rows else len(found)
    if answer.shape.count_only:
        return total_only(request, total)
    chosen = answer.page.of(sort_rows(found, answer.sort) if rows else sort_items(found, answer.sort))
    if rows:
        chosen = to_resources(list(chosen)) if to_resources else map(to_resource, chosen)
    base = base_url(request)
    parts = [
        bundle_entry(
            f"{base}{resource['resourceType']}/{resource['id']}",
            shaped(json.dumps(resource, ensure_ascii=False), answer.shape),
        )
        for resource in chosen
    ]
    return searchset(request, parts, answer.page, total)


def dated_by(element: str):
    """A _sort key for a resource the portal builds: the date in one of its elements."""
    return lambda resource: parse_fhir_datetime(resource.get(element))


@csrf_exempt
def post_search(request, resource_type: str):
    """POST <Type>/_search: the same search as GET <Type>, its parameters in a form body.

    The GET view answers it, with request.GET replaced by the body's parameters; nothing
    of the body reaches a URL (see page_links) or the audit trail's values (query_detail).
    """
    if request.method != "POST":
        return outcome(405, "Search with GET <Type>, or POST the parameters here", code="not-supported")
    content_type = request.META.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if content_type not in ("", FORM):
        return outcome(415, f"Send the search parameters as {FORM}", code="not-supported")
    in_url = [name for name in request.GET if name not in IGNORED]
    if in_url:
        return outcome(400, "Send every search parameter in the body, none in the URL", expression=in_url[0])
    if bearer_token(request) is None:
        check = CsrfViewMiddleware(lambda _: None)
        check.process_request(request)
        if check.process_view(request, None, (), {}) is not None:
            return outcome(403, "The CSRF check failed: send the portal's CSRF token", code="forbidden")
    try:
        params = request.POST if content_type == FORM else QueryDict()
    except RequestDataTooBig:
        return outcome(413, "The search is too large", code="too-costly")
    except TooManyFieldsSent:
        return outcome(400, "The search has too many parameters", code="too-costly")
    try:
        match = resolve_url(reverse("fhir:search", kwargs={"resource_type": resource_type}))
    except Resolver404:
        return outcome(404, "This server has no such endpoint", code="not-supported")
    request.GET = params
    request.posted_search = True
    return match.func(request, *match.args, **match.kwargs)


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
    """Search one type of the record: ?patient=&_id=&_lastUpdated=&category=&code=&date=,
    ordered by _sort, answered in full, as a count (_summary) or in part (_elements)."""
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
        return no_matches(request, page, query.shape)
    if query.shape.count_only:
        # Only a number leaves: the policy counts the permitted entries and audits a
        # search that disclosed none.
        total = access.count(
            lambda entries: query.apply(entries.filter(resource_type=resource_type)),
            detail={"api": "fhir", "query": query_detail(request)},
        )
        return total_only(request, total)
    order = query.sorted if query.sort else ordered
    rows = access.read(
        lambda entries: with_total(
            order(
                record_display.with_dispute_flags(
                    query.apply(entries.filter(resource_type=resource_type)), access.patient.pk
                )
            )
        )[page.offset : page.offset + page.count],
        detail={"api": "fhir", "query": query_detail(request)},
    )
    total = counted(rows) if rows else (0 if page.offset == 0 else None)
    parts = record_parts(base_url(request), access.patient, rows, shape=query.shape)
    return searchset(request, parts, page, total)


def patient_search(request, actor: Actor) -> HttpResponse:
    """The network patients the caller may see among those the search names: ?_id=<uuid>
    (a patient's own when nothing is given), or, POSTed only, ?identifier= (an NHS number,
    ``https://fhir.nhs.uk/Id/nhs-number|<n>``, or another identifier a member organisation
    knows the patient by), ?birthdate= and a name (?family=, ?given=, ?name=)."""
    params = request.GET
    if not posted(request):
        for name in DEMOGRAPHIC_PARAMS:
            if name in params:
                raise SearchError(
                    name,
                    f"{name} may not be sent in a URL: POST /fhir/Patient/_search with the parameters"
                    f" in an {FORM} body",
                )
    check_known(params, PATIENT_PARAMS)
    page = parse_page(params)
    shape = parse_shape(params)
    if any(name in params for name in DEMOGRAPHIC_PARAMS):
        # A search that names nobody opens NO_ONE, refused as a patient who refused the
        # caller is: the same work and the same event, so timing tells nothing.
        candidates = [str(pk) for pk in named_patients(params)] or [str(NO_ONE)]
    else:
        given = params.get("_id")
        candidates = [patient_id(given, "_id") if given else own_or_given(actor, None, "_id")]
    # Each patient the search names is opened through the policy (a refusal is audited);
    # one the caller may not see is left out as if it did not exist.
    accesses = []
    for pid in candidates:
        with contextlib.suppress(NotFound):
            accesses.append(open_record(actor, pid, action=Action.SEARCH_RECORD))
    if shape.count_only:
        for access in accesses:
            access.read(
                lambda entries: entries.none(), detail={"api": "fhir", "query": query_detail(request)}
            )
        return total_only(request, len(accesses))
    parts = []
    for access in accesses[page.offset : page.offset + page.count]:
        rows = access.read(
            lambda entries: entries.filter(pk__in=network_patient_source(entries)),
            detail={"api": "fhir", "query": query_detail(request)},
        )
        text = patient_text(access.patient, rows[0] if rows else None)
        parts.append(bundle_entry(f"{base_url(request)}Patient/{access.patient.pk}", shaped(text, shape)))
    return searchset(request, parts, page, len(accesses))


def named_patients(params) -> list:
    """The ids of the patients whose identifier, birth date and name match every parameter
    given, from the portal's demographics (never from a record); SearchError naming the
    first parameter when it names more than MAX_NAMED people."""
    given = [name for name in DEMOGRAPHIC_PARAMS if name in params]
    named = next((name for name in given if name in NAME_PARAMS), None)
    if named and "birthdate" not in params:
        raise SearchError(named, f"A search by {named} needs birthdate too")
    found = Patient.objects.all()
    if params.get("_id"):
        found = found.filter(pk=patient_id(params["_id"], "_id"))
    for value in params.getlist("identifier"):
        found = found.filter(identified_by(value))
    for value in params.getlist("birthdate"):
        prefix, start, end = parse_date("birthdate", value)
        if prefix != "eq" or end - start != timedelta(days=1):
            raise SearchError("birthdate", "birthdate must be one day, such as 1970-01-31")
        found = found.filter(birth_date=start.date())
    for value in params.getlist("family"):
        found = found.filter(family_name__istartswith=value)
    for value in params.getlist("given"):
        found = found.filter(given_names__icontains=value)
    for value in params.getlist("name"):
        found = found.filter(Q(family_name__icontains=value) | Q(given_names__icontains=value))
    pks = list(found.order_by("pk").values_list("pk", flat=True)[: MAX_NAMED + 1])
    if len(pks) > MAX_NAMED:
        raise SearchError(given[0], "This search matches too many patients: narrow it", code="too-costly")
    return pks


def identified_by(value: str) -> Q:
    """An identifier token: ``<system>|<value>`` or ``<value>`` (the NHS number, or any)."""
    system, bar, code = value.partition("|")
    if not bar:
        system, code = "", value
    if not code:
        raise SearchError("identifier", "identifier must be <system>|<value> or <value>")
    match = Q(identifiers__system=system, identifiers__value=code) if system else Q(identifiers__value=code)
    if system in ("", NHS_NUMBER):
        match |= Q(nhs_number=normalise(code))
    return Q(pk__in=Patient.objects.filter(match).values("pk"))


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

    NotFound when none is permitted; when several are (two owners used one id), the
    first by ``precedence``, never one the caller may not see.
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
    if not by_patient:  # nothing to open: the refusal is the actor's alone, in no patient's log
        raise refused_attempt(
            actor, Action.READ_RECORD, resource_id, detail={"api": "fhir", "type": resource_type}
        )
    visible, refused = [], None
    for pid, pks in by_patient.items():
        try:
            access = open_record(actor, pid, action=Action.READ_RECORD)
        except NotFound:
            continue
        permitted = list(
            access.entries.filter(pk__in=pks)
            .with_time_in_record()
            .values_list("pk", "owner_id", "in_record_since")
        )
        visible += [(access, pk, owner, since) for pk, owner, since in permitted]
        if not permitted:
            refused = (access, pks[0])
    if not visible:
        if refused:
            refused[0].read_one(refused[1], detail={"api": "fhir"})  # audits the refusal, raises
        raise NotFound
    access, pk, *_ = min(visible, key=lambda seen: precedence(actor, resource_id, *seen[1:]))
    return access, pk


def precedence(actor: Actor, resource_id: str, pk: uuid.UUID, owner_id: int, since) -> tuple:
    """Which of several permitted entries a read by id answers, first to last: the entry
    whose UUID it is; a clinician's or system's own organisation's entry (one per owner);
    then the entry in its record longest. Only the owner writes its entries and a sender
    cannot make an entry older in a record than the moment it put it there, so no
    organisation reusing an id it does not hold can displace, or block, an item already
    there; its own stays readable by its entry UUID."""
    own = actor.role != ActorRole.PATIENT and actor.organisation is not None
    named = None
    with contextlib.suppress(ValueError):
        named = uuid.UUID(resource_id)
    return (
        pk != named,
        not (own and owner_id == actor.organisation.pk),
        since,
        str(pk),
    )


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
    # The policy releases (and audits) only that version, and only if it was filed under
    # this patient's record.
    _, (found,) = access.history(pk, version=int(version), detail={"api": "fhir"})
    return response(found.json)


# --- Patient operations --------------------------------------------------------------------


@fhir_view
def everything(request, patient_uuid):
    """Patient/$everything: the whole permitted record, the network Patient first; for a
    token, only the resource types its scopes release."""
    actor = record_reader(request)
    check_known(request.GET, frozenset({"_count", "_offset"}))
    paged = "_count" in request.GET or "_offset" in request.GET
    page = parse_page(request.GET)
    access = open_record(actor, patient_uuid, action=Action.EXPORT_RECORD)

    def shape(entries):
        chosen = entries.filter(~Q(resource_type="Patient") | Q(pk__in=network_patient_source(entries)))
        chosen = record_display.with_dispute_flags(chosen, access.patient.pk)
        if not paged:  # the whole record: its length is the total, no count needed
            return ordered(chosen)
        return with_total(ordered(chosen))[page.offset : page.offset + page.count]

    rows = access.read(shape, detail={"api": "fhir", "operation": "everything"})
    parts = record_parts(base_url(request), access.patient, rows)
    if not paged:
        return response(
            bundle("searchset", parts, total=len(rows), links=[("self", request.build_absolute_uri())])
        )
    return searchset(request, parts, page, counted(rows) if rows else (0 if page.offset == 0 else None))


@fhir_view
def summary(request, patient_uuid):
    """Patient/$summary: an International Patient Summary style document Bundle, with
    the sections of the resource types the caller's credentials release."""
    actor = record_reader(request)
    check_known(request.GET, frozenset())
    access = open_record(actor, patient_uuid, action=Action.EXPORT_RECORD)
    rows = access.read(
        lambda entries: ordered(
            record_display.with_dispute_flags(
                entries.filter(
                    Q(resource_type__in=SUMMARY_TYPES, entered_in_error=False)
                    | Q(pk__in=network_patient_source(entries))
                ),
                access.patient.pk,
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
        if not any(actor.releases(t) for t in types):
            continue  # not released: no section, rather than one that looks empty
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
    # The subject's details only when the credentials release Patient: else its id alone.
    subject_text = (
        patient_text(patient, source)
        if actor.releases("Patient")
        else json.dumps({"resourceType": "Patient", "id": str(patient.pk)})
    )
    parts.append(bundle_entry(subject, subject_text, None))
    parts += [
        bundle_entry(f"urn:uuid:{entry.pk}", text, None)
        for entry, text in texts
        if entry.resource_type != "Patient"
    ]
    identifier = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}
    return response(bundle("document", parts, extra={"identifier": identifier}))


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
        targets = access.entries
        if target:
            targets = targets.filter(resource_type=resource_type, fhir_id=target_id)
        else:
            targets = targets.filter(correction_requests__amended_version__isnull=False)
        targets = set(targets.values_list("resource_type", "fhir_id", "owner_id").distinct())
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


# --- Corrections: Task and Communication ------------------------------------------------


# A conversation's Communication ids: <first 24 hex digits of the request>-m<message pk>
# or -s<statement pk> (accuracy.fhir).
CONVERSATION_ID = re.compile(r"([0-9a-f]{24})-([ms])([0-9]{1,18})")
CONVERSATION_KINDS = {
    "m": (Message, correction_fhir.communication_resource),
    "s": (Statement, correction_fhir.statement_resource),
}


def released_tasks(actor: Actor, found: list) -> list[dict]:
    """Requests as Tasks, their texts as the policy releases them to the actor (audited)."""
    copies = release_copies(actor, found, detail={"api": "fhir"})
    for_patient = actor.role == ActorRole.PATIENT
    return [correction_fhir.task_resource(r, copies[r.pk], for_patient=for_patient) for r in found]


@fhir_view
def task_read(request, task_id: str):
    actor = caller(request, "Task")
    found = corrections.request_for(actor, task_id)
    reply = response(released_tasks(actor, [found])[0])
    reply["ETag"] = f'W/"{found.revision}"'  # If-Match for PUT /fhir/Task/<id> (api.fhir_write)
    return reply


# A Task's date is when it was authored; it was last updated when it was last modified
# (decided), as its lastModified says: the request keeps no other time of change.
TASK_SORT = {"date": "created_at", "_lastUpdated": Coalesce("decided_at", "created_at")}


@fhir_view
def task_search(request):
    """Correction requests as Tasks: ?patient=<uuid>, ?owner=<ODS code> (an organisation's
    queue), in the order of the actor's list (accuracy.selectors: the queue's, for an
    organisation) unless _sort says otherwise."""
    actor = caller(request, "Task")
    answer = parse_answer(request.GET, frozenset({"patient", "owner"}), TASK_SORT)
    requests = visible_requests(actor)
    if request.GET.get("patient"):
        requests = requests.filter(patient_id=patient_id(request.GET["patient"]))
    if request.GET.get("owner"):
        ods = request.GET["owner"].rpartition("|")[2].removeprefix("Organization/")
        requests = requests.filter(owner__ods_code=ods)
    return portal_searchset(
        request, answer, requests, to_resources=lambda found: released_tasks(actor, found)
    )


COMMUNICATION_SORT = {"date": dated_by("sent")}


def released_conversation(actor: Actor, found):
    """A request's thread, its words as the policy releases them to the actor (audited)."""
    return release_copies(actor, [found], thread=True, detail={"api": "fhir"})[found.pk]


@fhir_view
def communication_search(request):
    """A correction request's conversation: ?part-of=Task/<uuid>, its messages and
    statements of disagreement in the order they were written (or _sort's, by sent)."""
    actor = caller(request, "Communication")
    answer = parse_answer(request.GET, frozenset({"part-of"}), COMMUNICATION_SORT)
    part_of = request.GET.get("part-of")
    if not part_of:
        raise SearchError("part-of", "This search needs part-of=Task/<id>")
    try:
        found = corrections.request_for(actor, part_of.removeprefix("Task/"))
    except NotFound:
        return no_matches(request, answer.page, answer.shape)
    conversation = correction_fhir.conversation(released_conversation(actor, found))
    return portal_searchset(request, answer, conversation)


@fhir_view
def communication_read(request, resource_id: str):
    """Communication/<id>: a message (``<request>-m<n>``) or a statement of disagreement or
    the owner's response (``<request>-s<n>``) of a correction request the caller may see,
    or a correction notice to their organisation (``notice-...``); else 404 alike."""
    actor = caller(request, "Communication")
    if resource_id.startswith("notice-"):
        return response(notice_text(actor, resource_id))
    match = CONVERSATION_ID.fullmatch(resource_id)
    if match is None:
        raise NotFound
    prefix, kind, number = match.groups()
    model, render = CONVERSATION_KINDS[kind]
    # Only which request it belongs to here: its words are released below.
    request_id = model.objects.filter(pk=int(number)).values_list("request_id", flat=True).first()
    if request_id is None or request_id.hex[:24] != prefix:
        raise NotFound
    found = corrections.request_for(actor, request_id)  # NotFound alike when not theirs
    copies = released_conversation(actor, found)
    said = copies.messages if model is Message else copies.statements
    item, text = next(pair for pair in said if pair[0].pk == int(number))
    return response(render(item, text))


def notice_text(actor: Actor, resource_id: str) -> str:
    """The stored correction notice ``notice-<request prefix>-<organisation>`` if it was
    sent to the actor's organisation, audited as the notices search is."""
    prefix, _, organisation_id = resource_id.removeprefix("notice-").rpartition("-")
    organisation = actor.organisation if actor.role in (ActorRole.SYSTEM, ActorRole.CLINICIAN) else None
    if organisation is None or organisation_id != str(organisation.pk) or len(prefix) != 24:
        raise NotFound
    try:
        # The id holds the first 24 hex digits of the request's UUID: every UUID between.
        low, high = uuid.UUID(prefix + "0" * 8), uuid.UUID(prefix + "f" * 8)
    except ValueError:
        raise NotFound from None
    text = (
        DownstreamNotice.objects.filter(organisation=organisation, request_id__gte=low, request_id__lte=high)
        .order_by("sent_at", "id")
        .values_list("communication", flat=True)
        .first()
    )
    if text is None:
        raise NotFound
    audit.record(
        "correction.notice.read",
        outcome="permit",
        purpose="correction",
        detail={"api": "fhir", "notices": 1},
        **actor.audit_fields(),
    )
    return text


@fhir_view
def unknown(request, rest: str = ""):
    """Anything else under /fhir/: an OperationOutcome, never an HTML page."""
    return outcome(404, "This server has no such endpoint", code="not-supported")
