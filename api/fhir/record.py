"""The record at /fhir/: read by id, vread, the search of one type, the Patient search
(by NHS number or name only POSTed), Patient/$everything and $summary. Every read goes
through open_record and is audited with exactly the entries it returns; everything is
served as stored. How an id is resolved, and which of two entries with one id a read
answers: docs/fhir.md, "Resource ids"."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import defaultdict
from datetime import timedelta
from html import escape

from django.db.models import Case, Count, IntegerField, Q, Value, When, Window
from django.db.models import F as Field
from django.http import HttpResponse

from accuracy import record_display
from consent.policy import NO_ONE, Action, Actor, ActorRole, NotFound, decide, open_record, refused_attempt
from phr import fhir as fhir_models
from phr.models import Patient, RecordEntry
from phr.nhs_number import normalise

from .bundle import (
    NHS_NUMBER,
    as_network_patient,
    bundle,
    bundle_entry,
    entry_texts,
    holders_names_for,
    instant,
    outcome,
    patient_text,
    response,
)
from .common import (
    DEMOGRAPHIC_PARAMS,
    FORM,
    base_url,
    caller,
    fhir_view,
    no_matches,
    own_or_given,
    posted,
    query_detail,
    record_reader,
    searchset,
    shaped,
    total_only,
)
from .search import (
    SHAPE_PARAMS,
    SearchError,
    Shape,
    check_known,
    parse_date,
    parse_page,
    parse_record_search,
    parse_shape,
    patient_id,
)

# Served by their own views below; the generic record views leave them alone.
PORTAL_TYPES = frozenset({"Consent", "AuditEvent", "Provenance", "Task", "Communication", "DetectedIssue"})
# The sections of the $summary document: (title, LOINC code, display, resource types).
# The International Patient Summary 2.0's sections, by LOINC code: the three it requires
# (always present: with entries, else an empty reason), then those it recommends, present
# when there are entries. An Observation goes under vital signs when its category says so,
# else under results. (key, title, code, display, resource types, required)
SUMMARY_SECTIONS = (
    ("problems", "Problems", "11450-4", "Problem list - Reported", ("Condition",), True),
    (
        "allergies",
        "Allergies and intolerances",
        "48765-2",
        "Allergies and adverse reactions Document",
        ("AllergyIntolerance",),
        True,
    ),
    (
        "medications",
        "Medications",
        "10160-0",
        "History of Medication use Narrative",
        ("MedicationStatement", "MedicationRequest"),
        True,
    ),
    (
        "immunizations",
        "Immunizations",
        "11369-6",
        "History of Immunization Narrative",
        ("Immunization",),
        False,
    ),
    ("procedures", "Procedures", "47519-4", "History of Procedures Document", ("Procedure",), False),
    (
        "results",
        "Results",
        "30954-2",
        "Relevant diagnostic tests/laboratory data Narrative",
        ("Observation", "DiagnosticReport"),
        False,
    ),
    ("vital-signs", "Vital signs", "8716-3", "Vital signs", ("Observation",), False),
)
IPS_BUNDLE = "http://hl7.org/fhir/uv/ips/StructureDefinition/Bundle-uv-ips"
IPS_COMPOSITION = "http://hl7.org/fhir/uv/ips/StructureDefinition/Composition-uv-ips"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
# An Observation of the vital-signs category, as the stored (canonical) text says it.
VITAL_SIGNS = '"code":"vital-signs"'
SUMMARY_TYPES = frozenset(t for *_, types, _ in SUMMARY_SECTIONS for t in types)
LOINC = "http://loinc.org"
PATIENT_PARAMS = frozenset({"_id", *DEMOGRAPHIC_PARAMS, "_count", "_offset", *SHAPE_PARAMS})
# A name search must narrow itself with a birth date: it is not a way to browse people.
NAME_PARAMS = ("name", "family", "given")
# The most patients one demographic search may name (each is opened, and audited).
MAX_NAMED = 100


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


# --- The record: read and search --------------------------------------------------------


def known_type(resource_type: str) -> None:
    cls = fhir_models.model_class(resource_type)
    if resource_type in PORTAL_TYPES or cls is None or not fhir_models._is_resource_class(cls):
        raise UnknownType(resource_type)


class UnknownType(NotFound):
    pass


def _unknown_type(resource_type: str) -> HttpResponse:
    if resource_type in PORTAL_TYPES:
        # The portal's own resources (DetectedIssue, Consent, Task...) are read and searched
        # on their own routes, without a version history.
        return outcome(
            404,
            f"The portal keeps no version history of {resource_type}: read it by its id",
            code="not-supported",
        )
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
    """One resource by its id (docs/fhir.md, "Resource ids"), or 404 alike."""
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
        permitted = access.locate(
            lambda entries, pks=pks: (
                entries.filter(pk__in=pks)
                .with_time_in_record()
                .values_list("pk", "owner_id", "in_record_since")
            )
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
    entry, (found,) = access.history(pk, version=int(version), detail={"api": "fhir"})
    names = holders_names_for([entry.patient_id]).get((entry.patient_id, entry.owner_id), ())
    return response(as_network_patient(found.json, names, entry.patient_id))


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
    # In the document the patient is its entry, by its fullUrl.
    texts = [
        (entry, text.replace(f'"Patient/{patient.pk}"', f'"{subject}"')) for entry, text in entry_texts(rows)
    ]
    source = next((entry for entry, _ in texts if entry.resource_type == "Patient"), None)
    sections = [section for row in SUMMARY_SECTIONS if (section := _ips_section(actor, texts, *row))]
    composition = {
        "resourceType": "Composition",
        "id": str(uuid.uuid4()),
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": "60591-5", "display": "Patient summary Document"}]},
        "subject": {"reference": subject},
        "meta": {"profile": [IPS_COMPOSITION]},
        "date": instant(),
        "author": [{"display": "Patient Record Portal"}],
        "title": "Patient summary",
        "section": sections,
    }
    parts = [bundle_entry(f"urn:uuid:{composition['id']}", json.dumps(composition), None)]
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
    extra = {"meta": {"profile": [IPS_BUNDLE]}, "identifier": identifier}
    return response(bundle("document", parts, extra=extra))


def _ips_section(actor, texts, key, title, code, display, types, required) -> dict | None:
    """One IPS section: its entries (by fullUrl) with a narrative listing them; a
    required one with none says why (withheld when the credentials do not release its
    types, else unavailable here); a recommended one with none is left out."""
    released = any(actor.releases(t) for t in types)
    chosen = [
        entry
        for entry, text in texts
        if released and entry.resource_type in types and _in_section(key, entry, text)
    ]
    if not chosen and not required:
        return None
    section = {"title": title, "code": {"coding": [{"system": LOINC, "code": code, "display": display}]}}
    if chosen:
        items = "".join(f"<li>{escape(record_display.patient_title(entry))}</li>" for entry in chosen)
        section["text"] = {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><ul>{items}</ul></div>',
        }
        section["entry"] = [{"reference": f"urn:uuid:{entry.pk}"} for entry in chosen]
        return section
    reason, words = ("withheld", "Information Withheld") if not released else ("unavailable", "Unavailable")
    said = "Not shared with this app." if not released else "None held in the shared record."
    section["text"] = {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{said}</p></div>',
    }
    section["emptyReason"] = {"coding": [{"system": EMPTY_REASON, "code": reason, "display": words}]}
    return section


def _in_section(key: str, entry: RecordEntry, text: str) -> bool:
    if entry.resource_type != "Observation":
        return True
    return (VITAL_SIGNS in text) == (key == "vital-signs")
