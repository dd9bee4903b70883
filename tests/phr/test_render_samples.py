"""The renderer over every resource in ../shared/fhir-samples and the demo network:
what a patient reads never shows a code system, a UCUM code, a FHIR path, JSON,
template syntax, an id or an ISO date, and every measured value shows its unit."""

import json
import re
from decimal import Decimal
from pathlib import Path

from demo.network import build_network
from phr.render.item import RENDERERS, item_details, item_title
from phr.render.units import unit_words
from phr.render.values import number_words

FORBIDDEN = {
    "a code system URL": re.compile(r"https?://|urn:"),
    "a raw UCUM code": re.compile(r"\bCel\b|mm\[Hg\]|kg/m2|\[degF\]|10\*\d"),
    "curly braces (UCUM annotation, JSON or template syntax)": re.compile(r"[{}]"),
    "square brackets (UCUM code or element path)": re.compile(r"[\[\]]"),
    "a FHIR element path": re.compile(r"\w+\[\d+\]\.|valueQuantity|dosageInstruction|resourceType"),
    "JSON": re.compile(r'":'),
    "a UUID": re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    "an ISO date": re.compile(r"\d{4}-\d{2}-\d{2}"),
}
# Quantities whose unit is only a count or a score: a number alone is right for them.
DIMENSIONLESS = frozenset({"{score}", "{count}", "1", "{ratio}"})


def _resources(document: dict):
    if document.get("resourceType") == "Bundle":
        for entry in document.get("entry") or ():
            if isinstance(entry.get("resource"), dict):
                yield entry["resource"]
    else:
        yield document


def _sample_resources(folder: Path) -> list[dict]:
    found = []
    for path in sorted(folder.rglob("*.json")):
        found.extend(_resources(json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)))
    for path in sorted(folder.rglob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                found.extend(_resources(json.loads(line, parse_float=Decimal)))
    return found


def _problems(resource: dict) -> list[str]:
    rows = item_details(resource)
    texts = [item_title(resource), *(f"{label}: {words}" for label, words in rows)]
    problems = [
        f"{resource['resourceType']} shows {what}: {text!r}"
        for text in texts
        for what, pattern in FORBIDDEN.items()
        if pattern.search(text)
    ]
    if resource["resourceType"] in RENDERERS and not rows:
        problems.append(f"{resource['resourceType']} has nothing in words")
    if resource["resourceType"] == "Observation":
        result = dict(rows).get("Result", "")
        quantities = [resource.get("valueQuantity")]
        quantities += [c.get("valueQuantity") for c in resource.get("component") or () if isinstance(c, dict)]
        for quantity in (q for q in quantities if isinstance(q, dict) and q.get("value") is not None):
            unit = unit_words(quantity)
            if number_words(quantity["value"]) not in result:
                problems.append(f"Observation result {result!r} lacks its value ({quantity})")
            if quantity.get("code") not in DIMENSIONLESS and (not unit or unit not in result):
                problems.append(f"Observation result {result!r} lacks its unit ({quantity})")
    return problems


def test_every_sample_resource_reads_in_plain_words(samples):
    resources = _sample_resources(samples)
    assert len(resources) > 4000
    problems = [p for r in resources for p in _problems(r)]
    assert problems == []
    types = {r["resourceType"] for r in resources}
    assert types >= {
        "Observation",
        "Condition",
        "MedicationRequest",
        "MedicationStatement",
        "AllergyIntolerance",
        "Immunization",
        "Encounter",
        "Procedure",
        "DiagnosticReport",
        "CarePlan",
        "Goal",
        "ImagingStudy",
        "Claim",
        "ExplanationOfBenefit",
        "Patient",
    }


def test_every_demo_resource_reads_in_plain_words():
    resources = list(build_network().resources())
    problems = [p for r in resources for p in _problems(r)]
    assert problems == []
    types = {r["resourceType"] for r in resources}
    assert types >= {
        "Observation",
        "Condition",
        "MedicationRequest",
        "MedicationStatement",
        "AllergyIntolerance",
        "Immunization",
        "Encounter",
        "Procedure",
        "DiagnosticReport",
        "DocumentReference",
        "Patient",
    }


def test_the_checks_catch_what_they_look_for():
    """The checks themselves can fail: a raw resource's own strings trip them."""
    raw = {
        "resourceType": "Observation",
        "code": {"text": "dosageInstruction[0].text"},
        "valueQuantity": {"value": 36.7, "unit": "Cel"},
        "note": [{"text": 'Sent 2024-05-12 by urn:uuid:8f14e45f-ceea-467f-a0e7-3a1b2c3d4e5f {"a": 1}'}],
    }
    found = " ".join(_problems(raw))
    for what in ("a FHIR element path", "a code system URL", "a UUID", "an ISO date", "JSON"):
        assert what in found
