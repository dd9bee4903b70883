"""One item of a record in plain words: the rows (label, words) a page, a share view, a
printout or a letter shows for it. Each kind of resource names the parts a patient would
look for; anything else stays in the FHIR resource behind it. People and organisations
appear by the name the resource gives them, never by a reference: a reference is an id."""

from __future__ import annotations

from collections.abc import Callable

from phr.columns import human_name  # one reading of a HumanName, shared with the columns

from .concepts import concept_words, concepts_words, tidy
from .dates import fhir_moment, period_words
from .dosage import dosages_words
from .values import absent_reason, measurement, quantity_words

CRITICALITY_WORDS = {"high": "High risk", "low": "Low risk", "unable-to-assess": "Not known"}
SEVERITY_WORDS = {"mild": "Mild", "moderate": "Moderate", "severe": "Severe"}
VERIFICATION_WORDS = {
    "unconfirmed": "Not confirmed",
    "provisional": "Not confirmed yet",
    "differential": "One of several possible diagnoses",
    "refuted": "Ruled out",
    "entered-in-error": "Entered in error",
}
ALLERGY_TYPES = {"allergy": "Allergy", "intolerance": "Intolerance (not an allergy)"}
ALLERGY_CATEGORIES = {
    "food": "Food",
    "medication": "Medicine",
    "environment": "Something in the surroundings",
    "biologic": "Biological product",
}
IMMUNISATION_STATUS = {"completed": "Given", "not-done": "Not given", "entered-in-error": "Entered in error"}
GOAL_STATUS = {
    "proposed": "Suggested",
    "planned": "Planned",
    "accepted": "Agreed",
    "active": "Working towards it",
    "on-hold": "Paused",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "rejected": "Not taken up",
}
GOAL_PROGRESS = {
    "in-progress": "In progress",
    "improving": "Improving",
    "worsening": "Getting worse",
    "no-change": "No change",
    "achieved": "Achieved",
    "sustaining": "Keeping it up",
    "not-achieved": "Not achieved",
    "no-progress": "No progress",
    "not-attainable": "Not possible",
}
# Encounter.class (HL7 v3 ActCode), which often arrives with a code and no display.
ENCOUNTER_CLASSES = {
    "AMB": "Appointment",
    "EMER": "Emergency",
    "IMP": "Hospital stay",
    "ACUTE": "Hospital stay",
    "NONAC": "Hospital stay",
    "OBSENC": "Observation",
    "SS": "Day case",
    "HH": "Home visit",
    "VR": "Video or phone appointment",
    "PRENC": "Pre-admission appointment",
    "FLD": "Visit outside a hospital or surgery",
}
IMAGING_MODALITIES = {
    "CT": "CT scan",
    "MR": "MRI scan",
    "US": "Ultrasound scan",
    "DX": "X-ray",
    "CR": "X-ray",
    "XA": "X-ray of blood vessels",
    "MG": "Mammogram",
    "NM": "Nuclear medicine scan",
    "PT": "PET scan",
}

Rows = list[tuple[str, str]]


def _first_code(concept) -> str:
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict) and coding.get("code"):
                return str(coding["code"])
    return ""


def name_of(reference) -> str:
    """Who or what a Reference points to, by the name it carries; never the id itself."""
    return tidy(reference.get("display") or "") if isinstance(reference, dict) else ""


def names_of(references) -> str:
    """The names in a list of References, or of participants and performers, which hold
    theirs under actor or individual."""
    if isinstance(references, dict):
        references = [references]
    names = [
        name_of(r.get("actor") or r.get("individual") or r)
        for r in (references if isinstance(references, list) else ())
        if isinstance(r, dict)
    ]
    return _joined(names)


def _joined(words) -> str:
    """Words joined by commas, each once, in the order they came."""
    return ", ".join(dict.fromkeys(w for w in words if w))


def _verification(resource: dict) -> str:
    return VERIFICATION_WORDS.get(_first_code(resource.get("verificationStatus")), "")


def _allergy(r: dict, add: Callable) -> None:
    add("Substance", concept_words(r.get("code")))
    reactions, severities = [], []
    for reaction in r.get("reaction") or ():
        if not isinstance(reaction, dict):
            continue
        reactions.append(
            concepts_words(reaction.get("manifestation")) or str(reaction.get("description") or "")
        )
        severity = SEVERITY_WORDS.get(str(reaction.get("severity") or ""))
        if severity and severity not in severities:
            severities.append(severity)
    add("Reaction", ", ".join(r for r in reactions if r))
    add("How severe", ", ".join(severities))
    add("Risk of a serious reaction", CRITICALITY_WORDS.get(str(r.get("criticality") or "")))
    add("Type", ALLERGY_TYPES.get(str(r.get("type") or "")))
    categories = [ALLERGY_CATEGORIES.get(str(c), "") for c in r.get("category") or ()]
    add("Caused by", _joined(categories))
    add("Certainty", _verification(r))
    add("Started", fhir_moment(r.get("onsetDateTime")) or period_words(r.get("onsetPeriod")))
    add("Last reaction", fhir_moment(r.get("lastOccurrence")))
    add("Recorded by", name_of(r.get("recorder")))


def _medicine(r: dict, add: Callable) -> None:
    add(
        "Medicine", concept_words(r.get("medicationCodeableConcept")) or name_of(r.get("medicationReference"))
    )
    add("How to take it", dosages_words(r))
    add("Why", concepts_words(r.get("reasonCode")) or names_of(r.get("reasonReference")))
    add("When", period_words(r.get("effectivePeriod")))
    add("Prescribed by", name_of(r.get("requester")))


def _observation(r: dict, add: Callable) -> None:
    add("Test or measurement", concept_words(r.get("code")))
    result = measurement(r)
    if result:
        add("Result", result.text)
        add("Normal range", result.range)
        add("What the result means", result.flag)
    else:
        add("Result", absent_reason(r))
    add("Where in the body", concept_words(r.get("bodySite")))
    add("Done by", names_of(r.get("performer")))


def _report(r: dict, add: Callable) -> None:
    add("Report", concept_words(r.get("code")))
    add("Conclusion", r.get("conclusion"))
    add("Findings", concepts_words(r.get("conclusionCode")))
    add("Tests in this report", names_of(r.get("result")))
    add("Done by", names_of(r.get("performer")))


def _condition(r: dict, add: Callable) -> None:
    add("Condition", concept_words(r.get("code")))
    add("How severe", concept_words(r.get("severity")))
    add("Where in the body", concepts_words(r.get("bodySite")))
    add(
        "Started",
        fhir_moment(r.get("onsetDateTime")) or period_words(r.get("onsetPeriod")) or r.get("onsetString"),
    )
    add("Ended", fhir_moment(r.get("abatementDateTime")) or period_words(r.get("abatementPeriod")))
    add("Certainty", _verification(r))
    add("Recorded by", name_of(r.get("recorder")))


def _immunisation(r: dict, add: Callable) -> None:
    add("Vaccine", concept_words(r.get("vaccineCode")))
    status = str(r.get("status") or "")
    if status != "completed":
        add("Given", IMMUNISATION_STATUS.get(status))
        add("Why not", concept_words(r.get("statusReason")))
    add("Dose", quantity_words(r.get("doseQuantity")))
    add("Where in the body", concept_words(r.get("site")))
    add("Batch number", r.get("lotNumber"))
    add("Given by", names_of(r.get("performer")))


def _encounter(r: dict, add: Callable) -> None:
    kind = r.get("class") if isinstance(r.get("class"), dict) else {}
    add(
        "Type",
        concepts_words(r.get("type"))
        or ENCOUNTER_CLASSES.get(str(kind.get("code") or ""))
        or str(kind.get("display") or "").capitalize(),
    )
    add("When", period_words(r.get("period")))
    add("Why", concepts_words(r.get("reasonCode")) or names_of(r.get("reasonReference")))
    add("Where", name_of(r.get("serviceProvider")))
    places = [name_of(p.get("location")) for p in r.get("location") or () if isinstance(p, dict)]
    add("Place", _joined(places))
    add("Seen by", names_of(r.get("participant")))


def _document(r: dict, add: Callable) -> None:
    add("Type of document", concept_words(r.get("type")))
    add("Description", r.get("description"))
    add("Written by", names_of(r.get("author")))


def _procedure(r: dict, add: Callable) -> None:
    add("Procedure", concept_words(r.get("code")))
    add("When", fhir_moment(r.get("performedDateTime")) or period_words(r.get("performedPeriod")))
    add("Why", concepts_words(r.get("reasonCode")) or names_of(r.get("reasonReference")))
    add("Where in the body", concepts_words(r.get("bodySite")))
    add("Outcome", concept_words(r.get("outcome")))
    add("Done by", names_of(r.get("performer")))


def _care_plan(r: dict, add: Callable) -> None:
    add("Plan", r.get("title") or concepts_words(r.get("category")))
    add("Description", r.get("description"))
    add("What it covers", names_of(r.get("addresses")))
    activities = [
        concept_words(a["detail"].get("code"))
        for a in r.get("activity") or ()
        if isinstance(a, dict) and isinstance(a.get("detail"), dict)
    ]
    add("Activities", _joined(activities))
    add("When", period_words(r.get("period")))


def _goal(r: dict, add: Callable) -> None:
    add("Goal", concept_words(r.get("description")))
    add("Status", GOAL_STATUS.get(str(r.get("lifecycleStatus") or "")))
    progress = r.get("achievementStatus")
    add("Progress", GOAL_PROGRESS.get(_first_code(progress)) or concept_words(progress))
    add("Start", fhir_moment(r.get("startDate")))


def _imaging(r: dict, add: Callable) -> None:
    kinds, parts = [], []
    for series in r.get("series") or ():
        if not isinstance(series, dict):
            continue
        modality = series.get("modality") if isinstance(series.get("modality"), dict) else {}
        kinds.append(
            IMAGING_MODALITIES.get(str(modality.get("code") or "")) or str(modality.get("display") or "")
        )
        body = series.get("bodySite") if isinstance(series.get("bodySite"), dict) else {}
        parts.append(str(body.get("display") or ""))
    add("Type of scan", _joined(kinds))
    add("Part of the body", _joined(parts))
    add("When", fhir_moment(r.get("started")))
    add("Number of images", r.get("numberOfInstances"))


def _claim(r: dict, add: Callable) -> None:
    services = [concept_words(i.get("productOrService")) for i in r.get("item") or () if isinstance(i, dict)]
    add("What it was for", _joined(services))
    add("When", period_words(r.get("billablePeriod")))


def _person(r: dict, add: Callable) -> None:
    add("Name", human_name(r.get("name")))
    add("Date of birth", fhir_moment(r.get("birthDate")))


def _place(r: dict, add: Callable) -> None:
    add("Name", r.get("name"))


def _medication(r: dict, add: Callable) -> None:
    add("Medicine", concept_words(r.get("code")))
    add("Form", concept_words(r.get("form")))


def _role(r: dict, add: Callable) -> None:
    add("Role", concepts_words(r.get("code")))
    add("Speciality", concepts_words(r.get("specialty")))
    add("Person", name_of(r.get("practitioner")))
    add("Organisation", name_of(r.get("organization")))


RENDERERS: dict[str, Callable[[dict, Callable], None]] = {
    "AllergyIntolerance": _allergy,
    "MedicationStatement": _medicine,
    "MedicationRequest": _medicine,
    "Observation": _observation,
    "DiagnosticReport": _report,
    "Condition": _condition,
    "Immunization": _immunisation,
    "Encounter": _encounter,
    "DocumentReference": _document,
    "Procedure": _procedure,
    "CarePlan": _care_plan,
    "Goal": _goal,
    "ImagingStudy": _imaging,
    "Claim": _claim,
    "ExplanationOfBenefit": _claim,
    "Patient": _person,
    "Practitioner": _person,
    "RelatedPerson": _person,
    "Organization": _place,
    "Location": _place,
    "Medication": _medication,
    "PractitionerRole": _role,
}

# Where each type keeps the concept that names it, for item_title.
TITLE_FIELDS = {
    "MedicationRequest": "medicationCodeableConcept",
    "MedicationStatement": "medicationCodeableConcept",
    "Immunization": "vaccineCode",
    "Encounter": "type",
    "DocumentReference": "type",
    "Goal": "description",
    "CarePlan": "category",
}


def item_details(resource) -> Rows:
    """The parts of a FHIR resource a patient would want to read, each as (label, words),
    in the order a patient reads them; rows with nothing to say are left out."""
    if not isinstance(resource, dict):
        return []
    rows: Rows = []

    def add(label: str, value) -> None:
        if value not in (None, "") and str(value).strip():
            rows.append((label, str(value).strip()))

    render = RENDERERS.get(str(resource.get("resourceType") or ""))
    if render:
        render(resource, add)
    notes = [str(n["text"]) for n in resource.get("note") or () if isinstance(n, dict) and n.get("text")]
    add("Notes", " / ".join(notes))
    return rows


def item_title(resource) -> str:
    """What a patient calls the item ("High blood pressure", "Amlodipine 5mg tablets"), or
    "" when it names nothing (the caller then says what kind of item it is)."""
    if not isinstance(resource, dict):
        return ""
    rtype = str(resource.get("resourceType") or "")
    if rtype == "DocumentReference" and str(resource.get("description") or "").strip():
        return str(resource["description"]).strip()
    if rtype in ("Patient", "Practitioner", "RelatedPerson"):
        return human_name(resource.get("name"))
    concept = resource.get(TITLE_FIELDS.get(rtype, "code"))
    words = concepts_words(concept) if isinstance(concept, list) else concept_words(concept)
    if not words and rtype.startswith("Medication"):
        words = name_of(resource.get("medicationReference"))
    return words or str(resource.get("title") or resource.get("name") or "").strip()
