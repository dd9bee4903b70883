"""References to the patient resolve on the portal (issue 15, part 0): each holder names
the patient by its own Patient id, and every reference to it in what the portal serves
names the network patient, ``Patient/<id>``, which a client can read. The stored JSON
keeps what the holder sent."""

import copy
import json

import pytest

from phr.ingest import ingest_documents
from phr.models import Patient, RecordEntry
from tests.personas import PatientUserFactory

pytestmark = pytest.mark.django_db


def synthea(samples, name: str) -> dict:
    return json.loads(next((samples / "synthea").glob(f"{name}_*.json")).read_text())


def references(value) -> list[str]:
    """Every Reference.reference in a resource, however deep."""
    found = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "reference" and isinstance(inner, str):
                found.append(inner)
            else:
                found += references(inner)
    elif isinstance(value, list):
        for inner in value:
            found += references(inner)
    return found


def renamed(bundle: dict, new_id: str) -> dict:
    """The same record as a second holder would send it: its own id for the patient."""
    text = json.dumps(bundle)
    old = next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    return json.loads(text.replace(old, new_id))


@pytest.fixture
def two_holders(samples, gp, hospital, client):
    bundle = synthea(samples, "Clemente_Kreiger")
    assert ingest_documents([("gp", copy.deepcopy(bundle))], organisation=gp).rejected == 0
    second = renamed(bundle, "hospital-number-4471")
    assert ingest_documents([("trust", second)], organisation=hospital).rejected == 0
    [patient] = Patient.objects.all()
    client.force_login(PatientUserFactory(patient=patient))
    return patient


def test_every_reference_to_the_patient_names_the_network_patient_and_resolves(client, two_holders):
    patient = two_holders
    holder_ids = set(
        RecordEntry.objects.filter(patient=patient, resource_type="Patient").values_list("fhir_id", flat=True)
    )
    assert len(holder_ids) == 2
    assert str(patient.pk) not in holder_ids

    served = json.loads(client.get(f"/fhir/Patient/{patient.pk}/$everything").content)
    to_patient = [
        ref
        for entry in served["entry"]
        for ref in references(entry["resource"])
        if ref.startswith("Patient/")
    ]
    assert len(to_patient) > 40  # both holders' items name the patient
    assert set(to_patient) == {f"Patient/{patient.pk}"}
    assert client.get(f"/fhir/{to_patient[0]}").status_code == 200


def test_searches_reads_and_versions_name_the_network_patient_too(client, two_holders):
    patient = two_holders
    wanted = f'"Patient/{patient.pk}"'
    found = json.loads(client.get(f"/fhir/Condition?patient={patient.pk}").content)
    assert found["entry"]
    for entry in found["entry"]:
        assert references(entry["resource"]["subject"]) == [f"Patient/{patient.pk}"]
    condition = RecordEntry.objects.filter(patient=patient, resource_type="Condition").first()
    read = client.get(f"/fhir/Condition/{condition.pk}")
    assert read.status_code == 200
    assert wanted in read.content.decode()
    version = client.get(f"/fhir/Condition/{condition.pk}/_history/1")
    assert version.status_code == 200
    assert wanted in version.content.decode()


def test_the_stored_json_keeps_what_the_holder_sent(client, two_holders, hospital):
    patient = two_holders
    client.get(f"/fhir/Patient/{patient.pk}/$everything")
    stored = RecordEntry.objects.filter(owner=hospital, resource_type="Condition").first().json
    assert '"Patient/hospital-number-4471"' in stored
    assert str(patient.pk) not in stored
