"""Patient/$summary as an International Patient Summary 2.0 document (issue 15, part 4),
checked against the profile's rules, not only as R4B: the Bundle and Composition the
IPS asks for, its section codes and how many of each, the required sections always
present (with entries, else an empty reason and a narrative saying why), every entry
referenced from a section of its kind and every reference to the patient resolving in
the document."""

import copy
import json

import pytest

from phr.ingest import ingest_documents
from phr.models import Patient
from tests.api.test_fhir_api import _token, validate
from tests.api.test_fhir_api import net as net  # the shared network, found by name
from tests.personas import PatientUserFactory

pytestmark = pytest.mark.django_db

LOINC = "http://loinc.org"
REQUIRED = {"11450-4", "48765-2", "10160-0"}  # problems, allergies and intolerances, medicines
# Each section's LOINC code, and the resource types its entries may be.
SECTION_TYPES = {
    "11450-4": {"Condition"},
    "48765-2": {"AllergyIntolerance"},
    "10160-0": {"MedicationStatement", "MedicationRequest"},
    "11369-6": {"Immunization"},
    "47519-4": {"Procedure"},
    "30954-2": {"Observation", "DiagnosticReport"},
    "8716-3": {"Observation"},
}


def references(value) -> list[str]:
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == "reference" and isinstance(v, str)] + [
            r for k, v in value.items() if k != "reference" for r in references(v)
        ]
    if isinstance(value, list):
        return [r for v in value for r in references(v)]
    return []


def check_ips(bundle: dict) -> dict[str, dict]:
    """The IPS rules this portal must meet; the sections by code."""
    validate(bundle)
    assert bundle["type"] == "document"
    assert bundle["identifier"]["system"] == "urn:ietf:rfc:3986"
    assert bundle["timestamp"]
    assert bundle["meta"]["profile"] == ["http://hl7.org/fhir/uv/ips/StructureDefinition/Bundle-uv-ips"]
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    composition = bundle["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    assert composition["status"] == "final"
    assert composition["type"]["coding"][0] == {
        "system": LOINC,
        "code": "60591-5",
        "display": "Patient summary Document",
    }
    assert composition["title"]
    assert composition["date"]
    assert composition["author"]
    assert by_url[composition["subject"]["reference"]]["resourceType"] == "Patient"
    patients = [r for r in by_url.values() if r["resourceType"] == "Patient"]
    assert len(patients) == 1

    sections: dict[str, dict] = {}
    referenced = {composition["subject"]["reference"]}
    for section in composition["section"]:
        [coding] = section["code"]["coding"]
        assert coding["system"] == LOINC
        assert coding["code"] in SECTION_TYPES
        assert coding["code"] not in sections, "a section code twice: the IPS allows one of each"
        sections[coding["code"]] = section
        assert section["title"]
        assert section["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
        assert ("entry" in section) != ("emptyReason" in section), "entries or an empty reason, not both"
        for ref in section.get("entry", []):
            assert by_url[ref["reference"]]["resourceType"] in SECTION_TYPES[coding["code"]]
            referenced.add(ref["reference"])
    assert set(sections) >= REQUIRED
    # Every resource in the document is the Composition, the patient, or in a section.
    assert set(by_url) - referenced == {bundle["entry"][0]["fullUrl"]}
    # Every reference to the patient, from any entry, is the patient's entry.
    for resource in by_url.values():
        for ref in references(resource):
            if "Patient" in ref or ref.startswith("urn:uuid:"):
                assert ref in by_url, ref
    return sections


def test_a_synthea_record_makes_a_summary_that_meets_the_ips_rules(samples, gp, client):
    bundle = json.loads(next((samples / "synthea").glob("Clemente_Kreiger_*.json")).read_text())
    assert ingest_documents([("gp", copy.deepcopy(bundle))], organisation=gp).rejected == 0
    [patient] = Patient.objects.all()
    client.force_login(PatientUserFactory(patient=patient))
    answer = client.get(f"/fhir/Patient/{patient.pk}/$summary")
    assert answer.status_code == 200
    summary = json.loads(answer.content)
    sections = check_ips(summary)
    by_url = {e["fullUrl"]: e["resource"] for e in summary["entry"]}
    # Recommended sections appear where the record has data: this one has all four.
    assert {"11369-6", "47519-4", "30954-2", "8716-3"} <= set(sections)
    vital = [by_url[r["reference"]] for r in sections["8716-3"]["entry"]]
    assert all(c["code"] == "vital-signs" for o in vital for cat in o["category"] for c in cat["coding"])
    results = [by_url[r["reference"]] for r in sections["30954-2"]["entry"]]
    assert not any(
        c.get("code") == "vital-signs"
        for o in results
        for cat in o.get("category", [])
        for c in cat["coding"]
    )
    # The narrative names the items, escaped.
    assert "<li>" in sections["11450-4"]["text"]["div"]


def test_a_required_section_with_nothing_held_says_so(client, net):
    """Ada's record has no immunisation and no procedure: those are left out; her
    required sections all have entries here, so an empty one is made by withholding."""
    headers = _token(net, "patient/Patient.read patient/Condition.read")
    answer = client.get(f"/fhir/Patient/{net['ada'].pk}/$summary", **headers)
    sections = check_ips(json.loads(answer.content))
    assert "entry" in sections["11450-4"]
    for code in ("48765-2", "10160-0"):  # not released to this app: withheld, with words
        assert sections[code]["emptyReason"]["coding"][0]["code"] == "withheld"
        assert "Not shared with this app" in sections[code]["text"]["div"]
    assert "11369-6" not in sections
