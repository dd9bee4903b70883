"""RelatedPerson at /fhir/: the people who can act, or could act, for a patient
(accounts.ProxyAccess, given under consent.proxies' rules), read-only, and shown to the
patient themself alone (docs/fhir.md).

Who may act for a patient is the patient's business: someone acting for them, staff and
IG officers are answered as if nothing were there, as the portal's own pages answer them
(web/patient/proxies.py). Every answer is audited as a read of the patient's consent
metadata (``consent.read``), refusals too.
"""

from __future__ import annotations

from datetime import datetime

import audit
from accounts.models import ProxyAccess
from consent.policy import Action, Actor, ActorRole, NotFound, authorise, find_patient, refused_attempt
from consent.proxies import grants_for
from phr.columns import parse_fhir_datetime
from phr.models import Patient

from .bundle import response
from .common import caller, fhir_view, no_matches, own_or_given, portal_searchset
from .search import parse_answer, patient_id

RIGHTS_EXTENSION = "https://patient-record-portal.example/StructureDefinition/proxy-rights"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
Relationship = ProxyAccess.Relationship
# HL7 v3 RoleCode where one fits the relationship; someone the patient chose has none.
ROLE_CODES: dict[str, tuple[str, str]] = {
    Relationship.CHILD: ("PRN", "parent"),
    Relationship.YOUNG_PERSON: ("PRN", "parent"),
    Relationship.LASTING_POWER: ("HPOWATT", "healthcare power of attorney"),
}
# The rights in the order the portal names them (ProxyAccess.rights).
RIGHTS_ORDER = ("see", "correct", "share")
AUDIT_DETAIL = {"api": "fhir", "resource": "RelatedPerson"}


PROXY_TAG = {
    "system": "https://patient-record-portal.example/CodeSystem/related-person",
    "code": "proxy",
    "display": "Can act for the patient in the portal",
}


def asks_for_proxies(params) -> bool:
    """A RelatedPerson search for the portal's proxy grants (_tag=proxy, with or without
    the system); any other is a search of what organisations sent."""
    wanted = params.get("_tag", "")
    return wanted in (PROXY_TAG["code"], f"{PROXY_TAG['system']}|{PROXY_TAG['code']}")


def is_grant_id(resource_id: str) -> bool:
    """A proxy grant's id is a whole number; an organisation's RelatedPerson has its own."""
    return resource_id.isdigit()


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def related_person(grant: ProxyAccess) -> dict:
    """One grant as a RelatedPerson: who, in what relationship, what they may do, when."""
    code = ROLE_CODES.get(grant.relationship)
    relationship = {"text": grant.get_relationship_display()}
    if code is not None:
        relationship["coding"] = [{"system": ROLE_CODE, "code": code[0], "display": code[1]}]
    # An ended grant's period ends when it was ended, if that came before its end date.
    end = min(grant.ends_at, grant.ended_at) if grant.ended_at else grant.ends_at
    proxy = grant.proxy
    resource = {
        "resourceType": "RelatedPerson",
        "id": str(grant.pk),
        # Tells a proxy grant from a RelatedPerson an organisation sent (a next of kin).
        "meta": {"tag": [PROXY_TAG]},
        # One per right; none at all (never given, but FHIR allows no empty list) leaves it out.
        "extension": [
            {"url": RIGHTS_EXTENSION, "valueCode": right} for right in RIGHTS_ORDER if right in grant.rights
        ],
        "active": grant.is_active(),
        "patient": {"reference": f"Patient/{grant.patient_id}"},
        "relationship": [relationship],
        "name": [{"text": proxy.get_full_name() or proxy.email}],
        "telecom": [{"system": "email", "value": proxy.email}],
        "period": {"start": _instant(grant.starts_at), "end": _instant(end)},
    }
    if not resource["extension"]:
        del resource["extension"]
    return resource


def _the_patient_themself(actor: Actor) -> bool:
    return actor.role == ActorRole.PATIENT and actor.proxy is None and actor.patient_id is not None


def _authorised(actor: Actor, pid) -> Patient:
    """The patient, if the actor is that patient themself: anyone acting for them, staff
    and IG are refused (NotFound alike, audited against the patient). Audited either way."""
    if not _the_patient_themself(actor) or str(actor.patient_id) != str(pid):
        audit.record(
            Action.READ_CONSENT.value,
            patient=find_patient(pid),
            outcome="deny",
            reason="only the patient sees who may act for them",
            detail=AUDIT_DETAIL,
            **actor.audit_fields(),
        )
        raise NotFound
    patient, decision = authorise(actor, Action.READ_CONSENT, pid)
    audit.record(
        Action.READ_CONSENT.value,
        patient=patient,
        outcome="permit",
        purpose=decision.purpose,
        reason=decision.reason[:200],
        detail=AUDIT_DETAIL,
        **actor.audit_fields(),
    )
    return patient


# A grant is dated by when it starts.
RELATED_PERSON_SORT = {"date": lambda resource: parse_fhir_datetime(resource["period"]["start"])}


@fhir_view
def related_person_search(request):
    """Who can act, or could act, for the patient (?patient=<uuid>, or their own record),
    newest grant first; a count is audited as the search is."""
    actor = caller(request, "RelatedPerson")
    answer = parse_answer(request.GET, frozenset({"patient", "_tag"}), RELATED_PERSON_SORT)
    given = request.GET.get("patient")
    pid = own_or_given(actor, patient_id(given) if given else None)
    try:
        patient = _authorised(actor, pid)
    except NotFound:
        return no_matches(request, answer.page, answer.shape)
    return portal_searchset(request, answer, [related_person(grant) for grant in grants_for(patient.pk)])


@fhir_view
def related_person_read(request, resource_id: str):
    """RelatedPerson/<grant id>: one grant on the patient's own record, as its search
    gives it; anyone else's, or none, is refused for the caller alone."""
    actor = caller(request, "RelatedPerson")
    # A grant id is a whole number a database column holds (bigger ones would overflow it).
    if not _the_patient_themself(actor) or not resource_id.isdigit() or len(resource_id) > 18:
        raise refused_attempt(actor, Action.READ_CONSENT, resource_id, detail=AUDIT_DETAIL)
    grant = (
        ProxyAccess.objects.filter(pk=int(resource_id), patient_id=actor.patient_id)
        .select_related("proxy")
        .first()
    )
    if grant is None:
        raise refused_attempt(actor, Action.READ_CONSENT, resource_id, detail=AUDIT_DETAIL)
    _authorised(actor, grant.patient_id)
    return response(related_person(grant))
