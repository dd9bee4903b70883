"""The parts of an item a patient can point at when something is wrong: what the patient
calls each part, what the staff who decide the request call it, and what it says now in
words. What it says is read through phr.render, the one rendering layer, so that a
request never shows or keeps a FHIR structure, an ISO date or a UCUM code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from phr.columns import human_name
from phr.render.concepts import concepts_words, names
from phr.render.dates import fhir_moment, period_words
from phr.render.dosage import dosage_words
from phr.render.item import CRITICALITY_WORDS, VERIFICATION_WORDS, item_title
from phr.render.person import address_words, contact_words
from phr.render.values import absent_reason, measurement

WHOLE_ITEM = ("", "The whole item")
WHOLE_ITEM_FOR_STAFF = "Whole item"


def value_at(resource: dict, path: str):
    """The value at a simple path like 'dosage[0].text', or None."""
    node = resource
    for part in path.split(".") if path else []:
        name, _, index = part.partition("[")
        node = node.get(name) if isinstance(node, dict) else None
        if index and isinstance(node, list):
            position = int(index.rstrip("]"))
            node = node[position] if position < len(node) else None
        if node is None:
            return None
    return node


def as_recorded(patient: str, recorded: str) -> str:
    """A name in the patient's words and, where the organisation wrote it otherwise, as
    recorded too, as the record pages say it: a correction may be about the wording."""
    if recorded and recorded != patient:
        return f"{patient} (recorded as “{recorded}”)" if patient else recorded
    return patient


def _concept(path: str) -> Callable[[dict], str]:
    def says(resource: dict) -> str:
        concept = value_at(resource, path)
        if isinstance(concept, list):  # Encounter.type, reaction.manifestation
            return concepts_words(concept)
        found = names(concept)
        return as_recorded(found.patient, found.recorded)

    return says


def _moment(path: str, period: str = "") -> Callable[[dict], str]:
    def says(resource: dict) -> str:
        return fhir_moment(resource.get(path)) or period_words(resource.get(period))

    return says


def _text(path: str) -> Callable[[dict], str]:
    def says(resource: dict) -> str:
        value = resource.get(path)
        return value.strip() if isinstance(value, str) else ""

    return says


def _dose(path: str) -> Callable[[dict], str]:
    def says(resource: dict) -> str:
        return dosage_words(value_at(resource, f"{path}[0]"))

    return says


def _coded(path: str, words: dict[str, str]) -> Callable[[dict], str]:
    """A status or code the rendering layer has words for, else the concept's own name."""

    def says(resource: dict) -> str:
        value = resource.get(path)
        if isinstance(value, str):
            return words.get(value, value.replace("-", " ").capitalize())
        codes = [c.get("code") for c in (value or {}).get("coding") or () if isinstance(c, dict)]
        known = next((words[c] for c in codes if c in words), "")
        patient = known or concepts_words(value)
        return patient[:1].upper() + patient[1:]

    return says


def _result(resource: dict) -> str:
    found = measurement(resource)
    return found.text if found else absent_reason(resource)


@dataclass(frozen=True)
class Part:
    path: str  # the FHIR path kept on the request, never shown
    label: str  # the patient's words
    staff: str  # the words of the staff who decide the request
    says: Callable[[dict], str]  # what it says now, in words


PARTS: dict[str, list[Part]] = {
    "MedicationStatement": [
        Part("medicationCodeableConcept", "The medicine", "Medicine", _concept("medicationCodeableConcept")),
        Part("dosage[0].text", "The dose", "Dose", _dose("dosage")),
    ],
    "MedicationRequest": [
        Part("medicationCodeableConcept", "The medicine", "Medicine", _concept("medicationCodeableConcept")),
        Part("dosageInstruction[0].text", "The dose", "Dosage instructions", _dose("dosageInstruction")),
    ],
    "AllergyIntolerance": [
        Part("code", "The substance", "Substance", _concept("code")),
        Part("reaction[0].manifestation", "The reaction", "Reaction", _concept("reaction[0].manifestation")),
        Part("criticality", "How serious it is", "Criticality", _coded("criticality", CRITICALITY_WORDS)),
        Part(
            "verificationStatus",
            "Whether it is confirmed",
            "Verification status",
            _coded("verificationStatus", VERIFICATION_WORDS),
        ),
    ],
    "Condition": [
        Part("code", "The condition", "Condition", _concept("code")),
        Part("clinicalStatus", "Whether it is current", "Clinical status", _coded("clinicalStatus", {})),
        Part("onsetDateTime", "When it started", "Onset date", _moment("onsetDateTime", "onsetPeriod")),
    ],
    "Observation": [
        Part("valueQuantity", "The result", "Result value", _result),
        Part(
            "effectiveDateTime",
            "When it was taken",
            "Date taken",
            _moment("effectiveDateTime", "effectivePeriod"),
        ),
        Part("code", "What was tested", "Test", _concept("code")),
    ],
    "Immunization": [
        Part("vaccineCode", "The vaccine", "Vaccine", _concept("vaccineCode")),
        Part("occurrenceDateTime", "When it was given", "Date given", _moment("occurrenceDateTime")),
    ],
    "Encounter": [
        Part("type", "The kind of appointment or stay", "Encounter type", _concept("type")),
        Part("period", "When it happened", "Dates", lambda r: period_words(r.get("period"))),
    ],
    "Procedure": [
        Part("code", "The procedure", "Procedure", _concept("code")),
        Part(
            "performedDateTime",
            "When it was done",
            "Date performed",
            _moment("performedDateTime", "performedPeriod"),
        ),
    ],
    "DiagnosticReport": [
        Part("code", "The report", "Report type", _concept("code")),
        Part("conclusion", "The conclusion", "Conclusion", _text("conclusion")),
    ],
    "DocumentReference": [
        Part("description", "The description", "Description", _text("description")),
        Part("type", "The kind of document", "Document type", _concept("type")),
    ],
    "Patient": [
        Part("name", "Your name", "Name", lambda r: human_name(r.get("name"))),
        Part("birthDate", "Your date of birth", "Date of birth", _moment("birthDate")),
        Part("address", "Your address", "Address", lambda r: address_words(r.get("address"))),
        Part(
            "telecom",
            "Your phone number or email",
            "Phone or email",
            lambda r: contact_words(r.get("telecom")),
        ),
    ],
}

# resource type -> (FHIR path, plain label), as the record's history names changed parts.
ELEMENTS = {kind: [(part.path, part.label) for part in parts] for kind, parts in PARTS.items()}


def choices_for(resource_type: str) -> list[tuple[str, str]]:
    return [WHOLE_ITEM, *ELEMENTS.get(resource_type, [])]


def label_of(resource_type: str, path: str) -> str | None:
    return dict(choices_for(resource_type)).get(path)


def label_within(resource_type: str, path: str) -> str:
    """The plain label of the part a changed path lies in ("The dose" for
    dosage[0].text, "The condition" for code.coding[0].display), or "" for a part a
    patient cannot point at."""
    for element, label in ELEMENTS.get(resource_type, []):
        if path == element or path.startswith((f"{element}.", f"{element}[")):
            return label
    return ""


def _part(resource_type: str, path: str) -> Part | None:
    return next((part for part in PARTS.get(resource_type, []) if part.path == path), None)


def staff_label(resource_type: str, path: str, stored: str = "") -> str:
    """What staff call the part a request is about ("Address", "Result value"): words,
    never its FHIR path; a part no longer offered keeps the label stored with it."""
    if not path:
        return WHOLE_ITEM_FOR_STAFF
    part = _part(resource_type, path)
    return part.staff if part else (stored or "Part of the item")


def says(resource: dict, path: str) -> str:
    """What one part of an item says now, in words from phr.render ("" for a part it
    does not have, or one no longer offered): never JSON, a FHIR path, an ISO date or
    a UCUM code. The whole item (the empty path) is named as the record names it."""
    if not isinstance(resource, dict):
        return ""
    if not path:
        return item_title(resource)
    part = _part(str(resource.get("resourceType") or ""), path)
    return part.says(resource).strip() if part else ""
