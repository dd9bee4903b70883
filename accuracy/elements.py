"""The parts of an item a patient can point at when something is wrong, in plain words."""

import json

from phr.columns import concept_text

WHOLE_ITEM = ("", "The whole item")

# resource type -> (FHIR path, plain label)
ELEMENTS = {
    "MedicationStatement": [("medicationCodeableConcept", "The medicine"), ("dosage[0].text", "The dose")],
    "MedicationRequest": [
        ("medicationCodeableConcept", "The medicine"),
        ("dosageInstruction[0].text", "The dose"),
    ],
    "AllergyIntolerance": [
        ("code", "The substance"),
        ("reaction[0].manifestation", "The reaction"),
        ("criticality", "How serious it is"),
        ("verificationStatus", "Whether it is confirmed"),
    ],
    "Condition": [
        ("code", "The condition"),
        ("clinicalStatus", "Whether it is current"),
        ("onsetDateTime", "When it started"),
    ],
    "Observation": [
        ("valueQuantity", "The result"),
        ("effectiveDateTime", "When it was taken"),
        ("code", "What was tested"),
    ],
    "Immunization": [("vaccineCode", "The vaccine"), ("occurrenceDateTime", "When it was given")],
    "Encounter": [("type", "The kind of appointment or stay"), ("period", "When it happened")],
    "Procedure": [("code", "The procedure"), ("performedDateTime", "When it was done")],
    "DiagnosticReport": [("code", "The report"), ("conclusion", "The conclusion")],
    "DocumentReference": [("description", "The description"), ("type", "The kind of document")],
    "Patient": [
        ("name", "Your name"),
        ("birthDate", "Your date of birth"),
        ("address", "Your address"),
        ("telecom", "Your phone number or email"),
    ],
}


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


def words(value) -> str:
    """A value in words: text or display for concepts, JSON for anything else."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "text" in value or "coding" in value:
            return concept_text(value)
        if "value" in value:
            return f"{value['value']} {value.get('unit', '')}".strip()
    if isinstance(value, list) and value:
        return "; ".join(words(v) for v in value)
    return json.dumps(value, ensure_ascii=False)
