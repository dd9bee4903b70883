"""What a coded thing is called. The recorded name is the coding's display (SNOMED CT,
dm+d, LOINC, in that order), then the concept's text: what the organisation wrote. A
patient reads a short consumer name where the team has written one ("Heart rate", not
"Heart rate [Beats/time] by Pulse oximetry"), and otherwise the recorded name tidied of
terminology scaffolding: SNOMED's "(disorder)" tags and LOINC's "[Mass/volume]" axes."""

from __future__ import annotations

import re
from dataclasses import dataclass

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
DMD = "https://dmd.nhs.uk"
PREFERRED_SYSTEMS = (SNOMED, DMD, LOINC)
SYSTEM_NAMES = {SNOMED: "SNOMED CT", DMD: "dm+d", LOINC: "LOINC"}

# Short names a patient would recognise, keyed by (system, code). The recorded name is
# never lost: names() returns both.
CONSUMER_NAMES = {
    # LOINC: measurements and blood tests
    (LOINC, "8867-4"): "Heart rate",
    (LOINC, "8310-5"): "Body temperature",
    (LOINC, "8331-1"): "Body temperature",
    (LOINC, "29463-7"): "Body weight",
    (LOINC, "8302-2"): "Height",
    (LOINC, "39156-5"): "Body mass index (BMI)",
    (LOINC, "85354-9"): "Blood pressure",
    (LOINC, "55284-4"): "Blood pressure",
    (LOINC, "8480-6"): "Systolic blood pressure",
    (LOINC, "8462-4"): "Diastolic blood pressure",
    (LOINC, "9279-1"): "Breathing rate",
    (LOINC, "59408-5"): "Oxygen saturation",
    (LOINC, "2708-6"): "Oxygen saturation",
    (LOINC, "72514-3"): "Pain score",
    (LOINC, "72166-2"): "Smoking status",
    (LOINC, "2339-0"): "Blood glucose",
    (LOINC, "2345-7"): "Blood glucose",
    (LOINC, "4548-4"): "HbA1c (average blood sugar)",
    (LOINC, "2093-3"): "Cholesterol",
    (LOINC, "2571-8"): "Triglycerides",
    (LOINC, "2085-9"): "HDL cholesterol",
    (LOINC, "18262-6"): "LDL cholesterol",
    (LOINC, "13457-7"): "LDL cholesterol",
    (LOINC, "2160-0"): "Creatinine",
    (LOINC, "38483-4"): "Creatinine",
    (LOINC, "14682-9"): "Creatinine",
    (LOINC, "33914-3"): "eGFR (kidney function)",
    (LOINC, "62238-1"): "eGFR (kidney function)",
    (LOINC, "6299-2"): "Urea",
    (LOINC, "6298-4"): "Potassium",
    (LOINC, "2823-3"): "Potassium",
    (LOINC, "2951-2"): "Sodium",
    (LOINC, "2947-0"): "Sodium",
    (LOINC, "2069-3"): "Chloride",
    (LOINC, "20565-8"): "Bicarbonate",
    (LOINC, "49765-1"): "Calcium",
    (LOINC, "718-7"): "Haemoglobin",
    (LOINC, "4544-3"): "Haematocrit",
    (LOINC, "6690-2"): "White blood cells",
    (LOINC, "789-8"): "Red blood cells",
    (LOINC, "777-3"): "Platelets",
    (LOINC, "787-2"): "Red cell size (MCV)",
    (LOINC, "58410-2"): "Full blood count",
    (LOINC, "1751-7"): "Albumin",
    (LOINC, "1975-2"): "Bilirubin",
    (LOINC, "1742-6"): "ALT (liver test)",
    (LOINC, "14959-1"): "Urine albumin to creatinine ratio",
    (LOINC, "2857-1"): "PSA (prostate test)",
    (LOINC, "10230-1"): "Ejection fraction (how well the heart pumps)",
    # SNOMED CT: observables, conditions and procedures
    (SNOMED, "75367002"): "Blood pressure",
    (SNOMED, "1000821000000103"): "Albumin",
    (SNOMED, "38341003"): "High blood pressure",
    (SNOMED, "44054006"): "Type 2 diabetes",
    (SNOMED, "195967001"): "Asthma",
    (SNOMED, "13645005"): "COPD (chronic obstructive pulmonary disease)",
    (SNOMED, "49436004"): "Atrial fibrillation",
    (SNOMED, "84114007"): "Heart failure",
    (SNOMED, "88805009"): "Heart failure",
    (SNOMED, "396275006"): "Osteoarthritis",
    (SNOMED, "40930008"): "Underactive thyroid",
    (SNOMED, "709044004"): "Chronic kidney disease",
    (SNOMED, "55822004"): "High cholesterol",
    (SNOMED, "35489007"): "Depression",
    (SNOMED, "197480006"): "Anxiety",
    (SNOMED, "15777000"): "Prediabetes",
    (SNOMED, "162864005"): "Obesity",
    (SNOMED, "271737000"): "Anaemia",
    (SNOMED, "53741008"): "Coronary heart disease",
    (SNOMED, "444814009"): "Sinusitis (viral)",
    (SNOMED, "195662009"): "Sore throat (viral)",
    (SNOMED, "91936005"): "Penicillin allergy",
    (SNOMED, "91935009"): "Peanut allergy",
    (SNOMED, "80146002"): "Appendix removed",
    (SNOMED, "52734007"): "Hip replacement",
    (SNOMED, "399208008"): "Chest X-ray",
    (SNOMED, "77477000"): "CT scan",
    (SNOMED, "16310003"): "Ultrasound scan",
}

_SEMANTIC_TAG = re.compile(
    r"\s*\((?:disorder|finding|procedure|situation|qualifier value|observable entity|substance|"
    r"morphologic abnormality|body structure|regime/therapy|event|product|medicinal product|"
    r"clinical drug|physical object|environment|record artifact)\)$"
)
_LOINC_AXIS = re.compile(r"\s*\[[^\]]*\]")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


@dataclass(frozen=True)
class ConceptName:
    """A concept's name for a patient and as it was recorded (the same when no consumer
    name is written for it)."""

    patient: str
    recorded: str


def _codings(concept) -> list[dict]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or () if isinstance(c, dict)]


def _clean(text) -> str:
    return " ".join(str(text or "").translate(_INVISIBLE).split())


def recorded_name(concept) -> str:
    """The concept as the organisation recorded it: a display from SNOMED CT, dm+d or
    LOINC, then the text, then any display; a bare code says which terminology it is in."""
    codings = _codings(concept)
    for system in PREFERRED_SYSTEMS:
        for coding in codings:
            if coding.get("system") == system and _clean(coding.get("display")):
                return _clean(coding["display"])
    if isinstance(concept, dict) and _clean(concept.get("text")):
        return _clean(concept["text"])
    for coding in codings:
        if _clean(coding.get("display")):
            return _clean(coding["display"])
    for coding in codings:
        if _clean(coding.get("code")):
            system = SYSTEM_NAMES.get(coding.get("system"))
            code = _clean(coding["code"])
            return f"{system} code {code}" if system else code
    return ""


def consumer_name(concept) -> str:
    """The team's short name for this concept, or "" when none is written."""
    for coding in _codings(concept):
        found = CONSUMER_NAMES.get((coding.get("system"), str(coding.get("code") or "").strip()))
        if found:
            return found
    return ""


def tidy(name: str) -> str:
    """A recorded name without SNOMED's semantic tag or LOINC's bracketed axes."""
    name = _SEMANTIC_TAG.sub("", _clean(name))
    return " ".join(_LOINC_AXIS.sub("", name).split())


def names(concept) -> ConceptName:
    recorded = recorded_name(concept)
    return ConceptName(consumer_name(concept) or tidy(recorded), recorded)


def concept_words(concept) -> str:
    """What a patient reads for a concept: the consumer name, else the recorded one tidied."""
    return names(concept).patient


def concepts_words(values) -> str:
    """Several concepts (a list, or one) in a patient's words, joined by commas, each once."""
    if isinstance(values, dict):
        values = [values]
    found: list[str] = []
    for value in values if isinstance(values, list) else ():
        words = concept_words(value)
        if words and words not in found:
            found.append(words)
    return ", ".join(found)
