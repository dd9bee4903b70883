"""The columns pages and searches need, read once from a resource when it is stored:
display text, the clinical date, status, entered-in-error and the sensitivity category."""

from datetime import UTC, datetime

from .models import Category, OrganisationKind

V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# meta.security codes (HL7 v3 ActCode sensitivity labels) and our own category codes.
SECURITY_LABEL_CATEGORY = {
    "PSY": Category.MENTAL_HEALTH,
    "PSYTHPN": Category.MENTAL_HEALTH,
    "ETH": Category.MENTAL_HEALTH,  # substance use services sit with mental health here
    "SUD": Category.MENTAL_HEALTH,
    "SEX": Category.SEXUAL_HEALTH,
    "STD": Category.SEXUAL_HEALTH,
    "HIV": Category.SEXUAL_HEALTH,
    "SOC": Category.SOCIAL_CARE,
    "SDV": Category.SAFEGUARDING,
    "CHILD": Category.SAFEGUARDING,
    **{c.value: c for c in Category if c != Category.GENERAL},
}

SNOMED = "http://snomed.info/sct"
SNOMED_CATEGORY = {
    # mental health
    "35489007": Category.MENTAL_HEALTH,  # depressive disorder
    "370143000": Category.MENTAL_HEALTH,  # major depressive disorder
    "36923009": Category.MENTAL_HEALTH,  # major depression, single episode
    "197480006": Category.MENTAL_HEALTH,  # anxiety disorder
    "58214004": Category.MENTAL_HEALTH,  # schizophrenia
    "13746004": Category.MENTAL_HEALTH,  # bipolar disorder
    "47505003": Category.MENTAL_HEALTH,  # post-traumatic stress disorder
    "191736004": Category.MENTAL_HEALTH,  # obsessive-compulsive disorder
    "69322001": Category.MENTAL_HEALTH,  # psychotic disorder
    "74732009": Category.MENTAL_HEALTH,  # mental disorder
    # assisted conception (HFE Act 1990 s.33A)
    "58533008": Category.ASSISTED_CONCEPTION,  # artificial insemination
    "304023008": Category.ASSISTED_CONCEPTION,  # in vitro fertilisation
    # gender identity (Gender Recognition Act 2004 s.22)
    "93461009": Category.GENDER_IDENTITY,  # gender dysphoria
    # sexual health
    "105629000": Category.SEXUAL_HEALTH,  # chlamydial infection
    "15628003": Category.SEXUAL_HEALTH,  # gonorrhoea
    "76272004": Category.SEXUAL_HEALTH,  # syphilis
    "86406008": Category.SEXUAL_HEALTH,  # HIV infection
    "33839006": Category.SEXUAL_HEALTH,  # genital herpes simplex
}
ICD10_SYSTEMS = {"http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-uk"}

# ICD-10 A50-A64 (infections with a predominantly sexual mode of transmission), B20-B24 (HIV)
# Z31 procreative management: .1 artificial insemination, .2 in vitro fertilisation,
# .3 other assisted fertilisation methods (written Z31.2 or Z312).
ICD10_ASSISTED_CONCEPTION = frozenset("123")
ICD10_SEXUAL_HEALTH = frozenset({f"A{n}" for n in range(50, 65)} | {f"B{n}" for n in range(20, 25)})

OWNER_KIND_CATEGORY = {
    OrganisationKind.MENTAL_HEALTH_TRUST: Category.MENTAL_HEALTH,
    OrganisationKind.SOCIAL_CARE: Category.SOCIAL_CARE,
}

# Where each type keeps the date a patient would recognise, first found wins.
DATE_PATHS = {
    "Condition": ("recordedDate", "onsetDateTime", "onsetPeriod.start"),
    "Observation": ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
    "MedicationRequest": ("authoredOn",),
    "MedicationStatement": ("effectiveDateTime", "effectivePeriod.start", "dateAsserted"),
    "Encounter": ("period.start",),
    "Immunization": ("occurrenceDateTime", "recorded"),
    "Procedure": ("performedDateTime", "performedPeriod.start"),
    "AllergyIntolerance": ("recordedDate", "onsetDateTime"),
    "DiagnosticReport": ("effectiveDateTime", "effectivePeriod.start", "issued"),
    "DocumentReference": ("date", "context.period.start"),
    "CarePlan": ("period.start", "created"),
    "Goal": ("startDate", "statusDate"),
    "Claim": ("created", "billablePeriod.start"),
    "ExplanationOfBenefit": ("created", "billablePeriod.start"),
    "ImagingStudy": ("started",),
}
FALLBACK_DATE_PATHS = ("effectiveDateTime", "date", "recordedDate", "authoredOn", "period.start", "created")

CONCEPT_FIELDS = {
    "MedicationRequest": "medicationCodeableConcept",
    "MedicationStatement": "medicationCodeableConcept",
    "Immunization": "vaccineCode",
}


def _get(resource: dict, path: str):
    value = resource
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def concept_text(concept) -> str:
    """A CodeableConcept in words: its text, else its first coding's display or code.
    The one reading of a concept that the columns, the pages and the API share."""
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return ""


def chosen_name(names) -> dict:
    """The one of a FHIR HumanName list to show: the official name, else the first."""
    found = [name for name in names or () if isinstance(name, dict)]
    return next((name for name in found if name.get("use") == "official"), found[0] if found else {})


def human_name(names) -> str:
    """A HumanName list in words, the official name first: its text, else its prefix,
    given names and family name ("Mrs Ada Okafor")."""
    found = [name for name in names or () if isinstance(name, dict)]
    found.sort(key=lambda name: name.get("use") != "official")
    for name in found:
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("prefix") or ()), *(name.get("given") or ()), name.get("family") or ""]
        text = " ".join(str(p) for p in parts if p)
        if text:
            return text
    return ""


def display_text(resource: dict) -> str:
    """A short human label for the item, as a patient would read it in a list."""
    rtype = resource.get("resourceType", "")
    text = ""
    if rtype in CONCEPT_FIELDS:
        text = concept_text(resource.get(CONCEPT_FIELDS[rtype]))
        if not text:
            text = str(_get(resource, "medicationReference.display") or "")
    elif rtype in ("Patient", "Practitioner", "RelatedPerson"):
        text = human_name(resource.get("name"))
    elif rtype == "Encounter":
        types = resource.get("type") or [None]
        text = concept_text(types[0]) or str(
            _get(resource, "class.display") or _get(resource, "class.code") or ""
        )
    elif rtype == "DocumentReference":
        text = str(resource.get("description") or "") or concept_text(resource.get("type"))
    if not text and isinstance(resource.get("name"), str):
        text = resource["name"]
    if not text:
        text = concept_text(resource.get("code"))
    if not text and rtype == "Observation" and resource.get("valueString"):
        text = str(resource["valueString"])
    return (text or rtype)[:255]


def parse_fhir_datetime(value) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime; partial dates take the first day."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) == 4:
            return datetime(int(value), 1, 1, tzinfo=UTC)
        if len(value) == 7:
            return datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def clinical_date(resource: dict) -> datetime | None:
    for path in DATE_PATHS.get(resource.get("resourceType", ""), FALLBACK_DATE_PATHS):
        found = parse_fhir_datetime(_get(resource, path))
        if found:
            return found
    return None


def _first_code(concept) -> str:
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict) and coding.get("code"):
                return str(coding["code"])
    return ""


def clinical_status(resource: dict) -> str:
    return (_first_code(resource.get("clinicalStatus")) or str(resource.get("status") or ""))[:40]


def is_entered_in_error(resource: dict) -> bool:
    return (
        resource.get("status") == "entered-in-error"
        or _first_code(resource.get("verificationStatus")) == "entered-in-error"
    )


def _codings(resource: dict):
    for field in ("code", "reasonCode", "type", "category"):
        value = resource.get(field)
        for concept in value if isinstance(value, list) else [value]:
            if isinstance(concept, dict):
                yield from (c for c in concept.get("coding") or () if isinstance(c, dict))


# Security label codes a sender uses to mark information about a third party (someone
# other than the patient). HL7 has no code for it; these are the ones the portal reads.
THIRD_PARTY_LABELS = frozenset({"THIRDPARTY", "3RDPARTY", "third_party"})


def third_party(resource: dict) -> bool:
    """Whether the sender labelled the item as information about someone else."""
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return False
    return any(
        isinstance(label, dict) and label.get("code") in THIRD_PARTY_LABELS
        for label in meta.get("security") or ()
    )


def category(resource: dict, owner_kind: str) -> str:
    """The sensitivity category: an explicit security label wins, then a sensitive code,
    then the kind of organisation that owns the item, else general."""
    meta = resource.get("meta")
    if isinstance(meta, dict):
        for label in meta.get("security") or ():
            if isinstance(label, dict) and label.get("code") in SECURITY_LABEL_CATEGORY:
                return SECURITY_LABEL_CATEGORY[label["code"]]
    for coding in _codings(resource):
        system, code = coding.get("system"), str(coding.get("code") or "")
        if system == SNOMED and code in SNOMED_CATEGORY:
            return SNOMED_CATEGORY[code]
        if system in ICD10_SYSTEMS:
            if code[:3] == "F64":  # gender identity disorders, before the rest of F
                return Category.GENDER_IDENTITY
            if code[:3] == "Z31" and code.replace(".", "")[3:4] in ICD10_ASSISTED_CONCEPTION:
                return Category.ASSISTED_CONCEPTION
            if code.startswith("F"):
                return Category.MENTAL_HEALTH
            if code[:3] in ICD10_SEXUAL_HEALTH:
                return Category.SEXUAL_HEALTH
    return OWNER_KIND_CATEGORY.get(owner_kind, Category.GENERAL)
