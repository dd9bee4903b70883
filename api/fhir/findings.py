"""What the portal's accuracy checks found, as FHIR R4 DetectedIssue at /fhir/DetectedIssue
(docs/fhir.md): one DetectedIssue per finding (accuracy.models.Finding), its id the
finding's.

Who sees which is accuracy.findings' one rule, never restated here: the patient's side (a
patient's app, or a proxy's app for the patient it acts for) sees what for_patient gives
it, an organisation's system or clinician what for_holder gives it (findings about its
organisation's items), each only while it may see every item a finding is about. Unlike
the portal's pages, which list what is still to be answered, FHIR serves the findings'
record: open ones (status ``final``), those already answered (each answer a mitigation)
and those a later version resolved (status ``amended``, with a mitigation saying so).

A finding names the items it is about and says what each holder's copy says: serving one
discloses clinical words about those item versions, so every search and read is audited
as a look at the record (``record.search`` / ``record.read``, with the versions it is
about), against the patient's record, as the Consent read is (authorise, then record).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict

import audit
from accuracy import findings as visibility
from accuracy.checks import load_rules
from accuracy.checks.base import RULES
from accuracy.models import Finding, FindingResponse
from consent.policy import Action, Actor, ActorRole, NotFound, authorise, refused_attempt
from phr.models import RecordEntry
from phr.vocabulary import type_name

from .bundle import bundle_entry, response
from .common import (
    base_url,
    caller,
    dated_by,
    fhir_view,
    no_matches,
    own_or_given,
    query_detail,
    searchset,
    shaped,
    total_only,
)
from .reference import STAFF_PREFIX
from .search import SearchError, parse_answer, patient_id, sort_items

RESOURCE = "DetectedIssue"
# The portal's own code system: the accuracy checks' rule ids (accuracy.checks.base).
CHECK_SYSTEM = "https://patient-record-portal.example/CodeSystem/accuracy-check"
# How a finding was answered (accuracy.models.FindingResponse.Outcome), and resolved.
RESPONSE_SYSTEM = "https://patient-record-portal.example/CodeSystem/accuracy-finding-response"
RESOLVED = ("resolved", "Resolved by a later version")
SEVERITY = {"high": "high", "medium": "moderate", "low": "low"}
SEARCH_PARAMS = frozenset({"patient", "code"})
# identifiedDateTime is when the check found it; newest first without _sort.
SORT = {"date": dated_by("identifiedDateTime")}
# The findings about an organisation's items one search looks through (for_holder's limit).
HOLDER_LIMIT = 1000


# --- The resource --------------------------------------------------------------------------


def _rule_title(rule_id: str) -> str:
    if not RULES:
        load_rules()
    rule = RULES.get(rule_id)
    return rule.title if rule else rule_id


def _author(response: FindingResponse) -> dict:
    """Who answered, by role and name only: never an email address (by_label may be one)."""
    if response.organisation_id is None:
        acting_for = "acting for the patient" in response.by_label
        return {"display": "Someone acting for the patient" if acting_for else "The patient"}
    user = response.by
    name = " ".join(part for part in (user.first_name, user.last_name) if part) or "A clinician"
    return {
        "reference": f"Practitioner/{STAFF_PREFIX}{user.pk}",
        "display": f"{name}, {response.organisation.name}",
    }


def _mitigation(response: FindingResponse) -> dict:
    label = FindingResponse.Outcome(response.outcome).label
    action = {
        "coding": [{"system": RESPONSE_SYSTEM, "code": response.outcome, "display": label}],
        "text": f"{label}: {response.note}" if response.note else label,
    }
    return {"action": action, "date": response.at.isoformat(), "author": _author(response)}


def _references(findings: list[Finding]) -> dict:
    """entry id -> (resource type, FHIR id) of every item the findings are about: ids only,
    no content (which the finding's own words carry)."""
    ids = {row.entry_id for finding in findings for row in finding.implicated.all()}
    rows = RecordEntry.objects.filter(pk__in=ids).values_list("pk", "resource_type", "fhir_id")
    return {pk: (resource_type, fhir_id) for pk, resource_type, fhir_id in rows}


def _implicated(finding: Finding, references: dict) -> list[dict]:
    said = {str(one.entry_id): one.words for one in visibility.what_each_says(finding)}
    implicated = []
    for row in sorted(finding.implicated.all(), key=lambda r: (r.owner.name, str(r.entry_id))):
        resource_type, fhir_id = references.get(row.entry_id, ("", ""))
        if not resource_type:
            continue
        if resource_type == "Patient":
            # The patient's details are read as the network patient, not by an owner's id.
            reference = f"Patient/{finding.patient_id}"
        else:
            reference = f"{resource_type}/{fhir_id}/_history/{row.version}"
        display = f"{row.owner.name}'s {type_name(resource_type).lower()}"
        words = said.get(str(row.entry_id))
        implicated.append({"reference": reference, "display": f"{display}: {words}" if words else display})
    return implicated


def _detail(finding: Finding) -> str:
    """The explanation, then what each holder's copy says (as the patient's page shows it)."""
    said = visibility.what_each_says(finding)
    return " ".join(
        [finding.explanation, *(f"{o.holder.name}'s record says: {o.words}." for o in said if o.words)]
    )


def detected_issue(finding: Finding, references: dict, responses: list[FindingResponse]) -> dict:
    """One finding as an R4 DetectedIssue."""
    resolved = finding.status == Finding.Status.RESOLVED
    resource = {
        "resourceType": RESOURCE,
        "id": str(finding.pk),
        "status": "amended" if resolved else "final",
        "code": {
            "coding": [{"system": CHECK_SYSTEM, "code": finding.rule, "display": _rule_title(finding.rule)}],
            "text": _rule_title(finding.rule),
        },
        "severity": SEVERITY.get(finding.severity, "moderate"),
        "patient": {"reference": f"Patient/{finding.patient_id}"},
        "identifiedDateTime": finding.found_at.isoformat(),
        "detail": _detail(finding),
    }
    implicated = _implicated(finding, references)
    if implicated:
        resource["implicated"] = implicated
    mitigation = [_mitigation(r) for r in responses]
    if resolved:
        code, label = RESOLVED
        done = {
            "action": {"coding": [{"system": RESPONSE_SYSTEM, "code": code, "display": label}], "text": label}
        }
        if finding.resolved_at:
            done["date"] = finding.resolved_at.isoformat()
        mitigation.append(done)
    if mitigation:
        resource["mitigation"] = mitigation
    return resource


def detected_issues(findings: list[Finding]) -> list[tuple[Finding, dict]]:
    references = _references(findings)
    answers = defaultdict(list)
    for one in (
        FindingResponse.objects.filter(finding__in=[f.pk for f in findings])
        .select_related("by", "organisation")
        .order_by("at", "id")
    ):
        answers[one.finding_id].append(one)
    return [(f, detected_issue(f, references, answers[f.pk])) for f in findings]


# --- Who sees what, and the audit -----------------------------------------------------------


def visible(actor: Actor, pid: uuid.UUID | None) -> list[Finding]:
    """The findings the actor may see (of one patient's record, if given), answered and
    resolved ones too, by accuracy.findings' rule."""
    if actor.role == ActorRole.PATIENT:
        if pid is None or actor.patient_id != pid:
            return []
        return list(visibility.for_patient(actor, pid, settled=True))
    found = visibility.for_holder(actor, limit=HOLDER_LIMIT, settled=True)
    return [f for f in found if pid is None or f.patient_id == pid]


def looked(actor: Actor, action: Action, patient_id, findings: list[Finding], detail: dict) -> None:
    """Audit a disclosure of findings about one patient's record: a look at the item
    versions they are about (the patient's access log shows it; a later correction's
    notice reaches whoever saw them). NotFound (audited) if the policy refuses it."""
    patient, decision = authorise(actor, action, patient_id)
    audit.record(
        action.value,
        entries=[f"{row.entry_id.hex}:{row.version}" for f in findings for row in f.implicated.all()],
        patient=patient,
        outcome="permit",
        purpose=decision.purpose,
        reason=decision.reason[:200],
        detail={"api": "fhir", "type": RESOURCE, "findings": [str(f.pk) for f in findings][:50], **detail},
        **actor.audit_fields(),
    )


def _codes(params) -> set[str] | None:
    """The rule ids ``code`` asks for (``<code>`` or ``<system>|<code>``, comma-separated
    for any; every code= given must match), or None without one."""
    wanted = None
    for value in params.getlist("code"):
        codes = set()
        for token in value.split(","):
            system, bar, code = token.rpartition("|")
            if not code:
                raise SearchError("code", "code must be a rule id, or <system>|<rule id>")
            if not bar or system in ("", CHECK_SYSTEM):
                codes.add(code)
        wanted = codes if wanted is None else wanted & codes
    return wanted


# --- The views ------------------------------------------------------------------------------


@fhir_view
def search(request):
    """DetectedIssue?patient=<uuid>&code=<rule id>: the findings the caller may see; a
    patient's app without patient= its own record's, an organisation's system without it
    those about its organisation's items in every record. Paged, sorted by date (when
    found), counted with _summary=count; every answer audited against each record."""
    actor = caller(request, RESOURCE)
    answer = parse_answer(request.GET, SEARCH_PARAMS, SORT)
    codes = _codes(request.GET)
    given = request.GET.get("patient")
    pid = patient_id(given) if given else None
    if actor.role == ActorRole.PATIENT:
        pid = own_or_given(actor, pid)
    pid = uuid.UUID(pid) if pid else None  # the policy compares the record's UUID
    detail = {"query": query_detail(request)}
    if pid is not None:
        # Refused (and audited) like any read of the record, whatever it would find.
        try:
            authorise(actor, Action.SEARCH_RECORD, pid)
        except NotFound:
            return no_matches(request, answer.page, answer.shape)
    found = [f for f in visible(actor, pid) if codes is None or f.rule in codes]
    built = detected_issues(found)
    by_id = {resource["id"]: finding for finding, resource in built}
    chosen = [] if answer.shape.count_only else answer.page.of(sort_items([r for _, r in built], answer.sort))
    # Audited before anything leaves: per record, the findings served (none for a count).
    served = defaultdict(list)
    for resource in chosen:
        finding = by_id[resource["id"]]
        served[finding.patient_id].append(finding)
    # A count speaks of every record it counted; a page of the records it shows.
    counted = {f.patient_id for f in found} if answer.shape.count_only else set(served)
    patients = counted | ({pid} if pid else set())
    for patient in patients:
        extra = {"summary": "count"} if answer.shape.count_only else {}
        try:
            looked(actor, Action.SEARCH_RECORD, patient, served.get(patient, []), {**detail, **extra})
        except NotFound:
            return no_matches(request, answer.page, answer.shape)
    if answer.shape.count_only:
        return total_only(request, len(found))
    base = base_url(request)
    parts = [
        bundle_entry(
            f"{base}{RESOURCE}/{resource['id']}",
            shaped(json.dumps(resource, ensure_ascii=False), answer.shape),
        )
        for resource in chosen
    ]
    return searchset(request, parts, answer.page, len(found))


@fhir_view
def read(request, resource_id: str):
    """DetectedIssue/<finding uuid>: one the caller's search would find, or 404 alike (the
    refusal audited for the caller alone, as a read of an id nothing answers is)."""
    actor = caller(request, RESOURCE)
    try:
        finding = visibility.visible_to(actor, uuid.UUID(resource_id), settled=True)
    except (ValueError, NotFound):
        raise refused_attempt(
            actor, Action.READ_RECORD, resource_id, detail={"api": "fhir", "type": RESOURCE}
        ) from None
    ((_, resource),) = detected_issues([finding])
    looked(actor, Action.READ_RECORD, finding.patient_id, [finding], {})
    return response(resource)
