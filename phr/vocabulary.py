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
    clinical: str  # the heading of the clinician's section: "Current medicines"
    resource_types: tuple[str, ...] = ()  # empty: everything no other kind takes


KIND_WORDS: tuple[KindWords, ...] = (
    KindWords(
        "problems",
        "Health problems",
        "Illnesses and conditions recorded about you",
        "health problem",
        "health problems",
        "Problems",
        ("Condition",),
    ),
    KindWords(
        "medications",
        "Medicines",
        "Medicines you take or have been prescribed",
        "medicine",
        "medicines",
        "Current medicines",
        ("MedicationStatement", "MedicationRequest"),
    ),
    KindWords(
        "allergies",
        "Allergies and reactions",
        "Things you react badly to",
        "allergy or reaction",
        "allergies and reactions",
        "Allergies and adverse reactions",
        ("AllergyIntolerance",),
    ),
    KindWords(
        "test-results",
        "Test results",
        "Blood tests, measurements and reports",
        "test result",
        "test results",
        "Recent results",
        ("Observation", "DiagnosticReport"),
    ),
    KindWords(
        "encounters",
        "Appointments and stays",
        "Visits, appointments and hospital stays",
        "appointment or stay",
        "appointments and stays",
        "Encounters",
        ("Encounter",),
    ),
    KindWords(
        "immunisations",
        "Vaccinations",
        "Vaccines you have had",
        "vaccination",
        "vaccinations",
        "Vaccinations",
        ("Immunization",),
    ),
    KindWords(
        "documents",
        "Letters and documents",
        "Letters, discharge summaries and other documents",
        "letter or document",
        "letters and documents",
        "Letters and documents",
        ("DocumentReference",),
    ),
    KindWords(
        "other",
        "Other items",
        "Everything else on your record, such as care plans and procedures",
        "other item",
        "other items",
        "Other",
    ),
)
NAMED_TYPES = frozenset(t for kind in KIND_WORDS for t in kind.resource_types)
# Each organisation's copy of the patient's own details is not an item of the record: it
# is counted nowhere as an item, but a read of it is still named ("personal details").
NOT_ITEMS = frozenset({"Patient"})
PERSONAL_DETAILS = ("set of personal details", "sets of personal details")

# What one item of each FHIR type is called, and many of them.
TYPE_NAMES: dict[str, tuple[str, str]] = {
    "Condition": ("Health problem", "health problems"),
    "MedicationStatement": ("Medicine", "medicines"),
    "MedicationRequest": ("Prescription", "prescriptions"),
    "AllergyIntolerance": ("Allergy or reaction", "allergies and reactions"),
    "Observation": ("Test result or measurement", "test results and measurements"),
    "DiagnosticReport": ("Test report", "test reports"),
    "Encounter": ("Appointment or stay", "appointments and stays"),
    "Immunization": ("Vaccination", "vaccinations"),
    "DocumentReference": ("Letter or document", "letters and documents"),
    "Procedure": ("Procedure or operation", "procedures and operations"),
    "CarePlan": ("Care plan", "care plans"),
    "Goal": ("Goal", "goals"),
    "ImagingStudy": ("Scan or X-ray", "scans and X-rays"),
    "Patient": ("Personal details", "personal details"),
}


def kind_words_of(resource_type: str) -> KindWords:
    """The kind an item of this FHIR type belongs to ("other" for the rest)."""
    for kind in KIND_WORDS:
        if resource_type in kind.resource_types:
            return kind
    return KIND_WORDS[-1]


def type_name(resource_type: str) -> str:
    """What one item of a FHIR type is called in plain words ("Other item" if unnamed)."""
    return TYPE_NAMES.get(resource_type, ("Other item",))[0]


def type_name_plural(resource_type: str) -> str:
    """What many items of a FHIR type are called, in a sentence: "test reports"."""
    return TYPE_NAMES.get(resource_type, ("", "other items"))[1]


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
