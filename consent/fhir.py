"""A patient's sharing choices as a FHIR R4 Consent resource.

One Consent states the choices in force now. The top-level provision sets the context:
sharing for direct care (purpose TREAT), permitted under the deployment's opt-out model
and denied under opt-in. Each choice in force is one nested provision, a permit or deny
exception to that default: the network-wide choice has no actor; a choice for one
organisation names it (by ODS code) as the information recipient; a choice for one kind
of information names the kind by a security label and by our own category code.

The nested provisions are listed from the least to the most specific. FHIR R4 does not
say how overlapping nested rules combine; ours is consent.policy.sharing_for: the most
specific choice wins, and at equal specificity deny wins.

Plain dicts only: validation against fhir.resources lives in phr.fhir.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from phr.models import Category, Patient
from phr.nhs_number import ODS_SYSTEM as ODS_CODE

from .models import ConsentChoice, Scope
from .policy import current_choices, kept_to_holder

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
LOINC = "http://loinc.org"
CATEGORY_SYSTEM = "https://patient-record-portal.example/CodeSystem/category"

# The deployment's default, as the policy the nested provisions are exceptions to.
POLICY_RULES = {
    "opt-out": {"system": ACT_CODE, "code": "OPTOUT", "display": "opt-out"},
    "opt-in": {"system": ACT_CODE, "code": "OPTIN", "display": "opt-in"},
}

# Our sensitivity categories as HL7 v3 information sensitivity policy codes
# (ActInformationSensitivityPolicy, in v3-ActCode):
#   mental health -> PSY (psychiatry disorder information sensitivity): the code most
#                    receivers know; MH is newer and narrower in some profiles.
#   sexual health -> SEX (sexuality and reproductive health information sensitivity).
#   social care   -> SOC (social services information sensitivity).
#   safeguarding  -> SDV (sexual assault, abuse, or domestic violence information
#                    sensitivity): the nearest HL7 code; safeguarding is wider (neglect,
#                    exploitation), so the exact category travels in `code` as well.
#   assisted conception, gender identity -> SEX as well (reproductive health; sexuality):
#                    HL7 has no narrower code, so the exact category travels in `code`.
#   general       -> no label: general information carries no sensitivity policy.
SECURITY_LABELS = {
    Category.MENTAL_HEALTH: ("PSY", "psychiatry disorder information sensitivity"),
    Category.SEXUAL_HEALTH: ("SEX", "sexuality and reproductive health information sensitivity"),
    Category.SOCIAL_CARE: ("SOC", "social services information sensitivity"),
    Category.SAFEGUARDING: ("SDV", "sexual assault, abuse, or domestic violence information sensitivity"),
    Category.ASSISTED_CONCEPTION: ("SEX", "sexuality and reproductive health information sensitivity"),
    Category.GENDER_IDENTITY: ("SEX", "sexuality and reproductive health information sensitivity"),
}

# Least specific first, the order in which consent.policy.sharing_for lets them yield.
SPECIFICITY = {Scope.NETWORK: 0, Scope.CATEGORY: 1, Scope.ORGANISATION: 2, Scope.ORGANISATION_CATEGORY: 3}


def consent_resource(patient: Patient, *, now: datetime | None = None) -> dict:
    """The patient's sharing choices in force now, as one FHIR R4 Consent resource."""
    now = now or timezone.now()
    choices = sorted(current_choices(patient, now=now).values(), key=_order)
    # When the patient last changed their choices, withdrawals included.
    changed = ConsentChoice.objects.filter(patient=patient, recorded_at__lte=now).aggregate(
        last=Max("recorded_at")
    )["last"]
    default = "permit" if settings.CONSENT_MODEL == "opt-out" else "deny"
    provision: dict = {
        "type": default,
        "purpose": [{"system": ACT_REASON, "code": "TREAT", "display": "treatment"}],
    }
    # The deployment's categories kept to their holder: exceptions to the default until
    # the patient shares them by name (their own choices, listed after, say so).
    kept = [
        {"type": "deny", **_category_parts(category)}
        for category in Category.values
        if kept_to_holder(category) and default == "permit"
    ]
    if choices or kept:
        provision["provision"] = kept + [_provision(choice) for choice in choices]
    patient_ref = {"reference": f"Patient/{patient.pk}"}
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy", "display": "Privacy Consent"}]
        },
        "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": patient_ref,
        "dateTime": _instant(changed or now),
        "performer": [patient_ref],
        "policyRule": {
            "coding": [POLICY_RULES[settings.CONSENT_MODEL]],
            "text": f"Shared for direct care unless the patient says otherwise ({settings.CONSENT_MODEL})"
            if default == "permit"
            else f"Shared only where the patient agrees ({settings.CONSENT_MODEL})",
        },
        "provision": provision,
    }


def _order(choice: ConsentChoice) -> tuple:
    ods = choice.organisation.ods_code if choice.organisation_id else ""
    return (SPECIFICITY[choice.scope], ods, choice.category)


def _provision(choice: ConsentChoice) -> dict:
    """One choice as a nested provision: an exception to the top-level default."""
    rule: dict = {"type": choice.decision}
    period = {"start": _instant(choice.recorded_at)}
    if choice.until is not None:
        period["end"] = _instant(choice.until)
    rule["period"] = period
    if choice.organisation_id:
        org = choice.organisation
        rule["actor"] = [
            {
                "role": {
                    "coding": [
                        {"system": PARTICIPATION_TYPE, "code": "IRCP", "display": "information recipient"}
                    ]
                },
                "reference": {
                    "type": "Organization",
                    "identifier": {"system": ODS_CODE, "value": org.ods_code},
                    "display": org.name,
                },
            }
        ]
    if choice.category:
        rule.update(_category_parts(choice.category))
    return rule


def _category_parts(category: str) -> dict:
    """A category in a provision: its security label (where HL7 has one) and its code."""
    parts: dict = {}
    label = SECURITY_LABELS.get(category)
    if label is not None:
        parts["securityLabel"] = [{"system": ACT_CODE, "code": label[0], "display": label[1]}]
    parts["code"] = [
        {"coding": [{"system": CATEGORY_SYSTEM, "code": category, "display": Category(category).label}]}
    ]
    return parts


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
