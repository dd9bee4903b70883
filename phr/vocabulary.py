"""One vocabulary for the kinds of record item: what the record's pages, the sharing
preview, the access log and the API call them. It lives here, in the lowest domain
layer, so that every layer above says the same words (accuracy.record_display adds how
a page selects each kind; consent.sharing_text counts them in sentences)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class KindWords:
    slug: str
    title: str  # a heading: "Medicines"
    description: str  # one line for the record summary
    one: str  # "medicine", in "1 medicine"
    many: str  # "medicines", in "5 medicines"
    resource_types: tuple[str, ...] = ()  # empty: everything no other kind takes


KIND_WORDS: tuple[KindWords, ...] = (
    KindWords(
        "problems",
        "Health problems",
        "Illnesses and conditions recorded about you",
        "health problem",
        "health problems",
        ("Condition",),
    ),
    KindWords(
        "medications",
        "Medicines",
        "Medicines you take or have been prescribed",
        "medicine",
        "medicines",
        ("MedicationStatement", "MedicationRequest"),
    ),
    KindWords(
        "allergies",
        "Allergies and reactions",
        "Things you react badly to",
        "allergy or reaction",
        "allergies and reactions",
        ("AllergyIntolerance",),
    ),
    KindWords(
        "test-results",
        "Test results",
        "Blood tests, measurements and reports",
        "test result",
        "test results",
        ("Observation", "DiagnosticReport"),
    ),
    KindWords(
        "encounters",
        "Appointments and stays",
        "Visits, appointments and hospital stays",
        "appointment or stay",
        "appointments and stays",
        ("Encounter",),
    ),
    KindWords(
        "immunisations",
        "Vaccinations",
        "Vaccines you have had",
        "vaccination",
        "vaccinations",
        ("Immunization",),
    ),
    KindWords(
        "documents",
        "Letters and documents",
        "Letters, discharge summaries and other documents",
        "letter or document",
        "letters and documents",
        ("DocumentReference",),
    ),
    KindWords(
        "other",
        "Other items",
        "Everything else on your record, such as care plans and procedures",
        "other item",
        "other items",
    ),
)
NAMED_TYPES = frozenset(t for kind in KIND_WORDS for t in kind.resource_types)
# Each organisation's copy of the patient's own details is not an item of the record: it
# is counted nowhere as an item, but a read of it is still named ("personal details").
NOT_ITEMS = frozenset({"Patient"})
PERSONAL_DETAILS = ("set of personal details", "sets of personal details")

# What one item of each FHIR type is called.
TYPE_NAMES = {
    "Condition": "Health problem",
    "MedicationStatement": "Medicine",
    "MedicationRequest": "Prescription",
    "AllergyIntolerance": "Allergy or reaction",
    "Observation": "Test result or measurement",
    "DiagnosticReport": "Test report",
    "Encounter": "Appointment or stay",
    "Immunization": "Vaccination",
    "DocumentReference": "Letter or document",
    "Procedure": "Procedure or operation",
    "CarePlan": "Care plan",
    "Goal": "Goal",
    "ImagingStudy": "Scan or X-ray",
    "Patient": "Personal details",
}


def kind_words_of(resource_type: str) -> KindWords:
    """The kind an item of this FHIR type belongs to ("other" for the rest)."""
    for kind in KIND_WORDS:
        if resource_type in kind.resource_types:
            return kind
    return KIND_WORDS[-1]


def type_name(resource_type: str) -> str:
    """What one item of a FHIR type is called in plain words ("Other item" if unnamed)."""
    return TYPE_NAMES.get(resource_type, "Other item")


def counted_words(resource_types: Iterable[str]) -> list[str]:
    """How many of each kind, in the kinds' order: "1 health problem", "5 medicines";
    the patient's personal details, when among them, last."""
    types = list(resource_types)
    by_kind = Counter(kind_words_of(t).slug for t in types if t not in NOT_ITEMS)
    found = [
        f"{by_kind[kind.slug]} {kind.one if by_kind[kind.slug] == 1 else kind.many}"
        for kind in KIND_WORDS
        if by_kind[kind.slug]
    ]
    details = sum(t in NOT_ITEMS for t in types)
    if details:
        found.append(f"{details} {PERSONAL_DETAILS[0] if details == 1 else PERSONAL_DETAILS[1]}")
    return found
