"""Which organisation holds each item, from FHIR alone (issue 15, part 2): every served
item's meta.source names its holder as an Organization that resolves here; what the
holder sent in meta (profiles, tags) stays, and so do its decimals."""

import copy
import json

import pytest
from django.conf import settings

from phr.ingest import ingest_documents
from phr.models import Patient, RecordEntry
from tests.api.test_references_resolve import renamed, synthea
from tests.personas import PatientUserFactory

pytestmark = pytest.mark.django_db
UK_CORE_CONDITION = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Condition"


@pytest.fixture
def patient(samples, gp, hospital, client):
    bundle = synthea(samples, "Clemente_Kreiger")
    first = copy.deepcopy(bundle)
    condition = next(e["resource"] for e in first["entry"] if e["resource"]["resourceType"] == "Condition")
    condition["meta"] = {
        "profile": [UK_CORE_CONDITION],
        "tag": [{"system": "https://gp.example/tags", "code": "reviewed"}],
    }
    assert ingest_documents([("gp", first)], organisation=gp).rejected == 0
    second = renamed(bundle, "hospital-number-4471")
    second["entry"] = second["entry"][:20]  # the hospital holds some of it
    assert ingest_documents([("trust", second)], organisation=hospital).rejected == 0
    [one] = Patient.objects.all()
    client.force_login(PatientUserFactory(patient=one))
    return one


def test_every_item_names_its_holder_and_the_holder_resolves(client, patient, gp, hospital):
    served = json.loads(client.get(f"/fhir/Patient/{patient.pk}/$everything").content)
    holders = {}
    for entry in served["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            continue
        source = resource["meta"]["source"]
        holders.setdefault(source, 0)
        holders[source] += 1
    expected = {f"{settings.PORTAL_URL}/fhir/Organization/{org.ods_code}" for org in (gp, hospital)}
    assert set(holders) == expected
    for source in holders:
        organization = client.get(source.removeprefix(settings.PORTAL_URL)).json()
        assert organization["resourceType"] == "Organization"
        assert source.endswith(f"/{organization['id']}")


def test_what_the_holder_put_in_meta_stays_and_the_stored_json_is_untouched(client, patient, gp):
    with_meta = next(
        e
        for e in RecordEntry.objects.filter(patient=patient, owner=gp, resource_type="Condition")
        if '"meta":{' in e.json
    )
    stored = json.loads(with_meta.json)
    assert stored["meta"]["profile"] == [UK_CORE_CONDITION]
    read = client.get(f"/fhir/{with_meta.resource_type}/{with_meta.pk}").json()
    assert read["meta"] == {
        **stored["meta"],
        "source": f"{settings.PORTAL_URL}/fhir/Organization/{gp.ods_code}",
    }
    assert "source" not in json.loads(RecordEntry.objects.get(pk=with_meta.pk).json)["meta"]


@pytest.mark.parametrize(
    "stored",
    [
        '{"id":"o1","resourceType":"Observation","valueQuantity":{"value":72.50}}',
        '{"id":"o1","meta":{},"resourceType":"Observation","valueQuantity":{"value":72.50}}',
        '{"id":"o1","meta":{"versionId":"3"},"resourceType":"Observation","valueQuantity":{"value":72.50}}',
        # Decoded and encoded again: contained resources (their own meta), or a source of the sender's.
        '{"contained":[{"id":"m","meta":{"versionId":"1"},"resourceType":"Medication"}],"id":"o1",'
        '"meta":{"versionId":"3"},"resourceType":"Observation","valueQuantity":{"value":72.50}}',
        '{"id":"o1","meta":{"source":"https://sender.example/ehr"},"resourceType":"Observation",'
        '"valueQuantity":{"value":72.50}}',
        # A resource holding a whole resource outside "contained": its meta is not the holder's.
        '{"id":"o1","meta":{"versionId":"3"},"part":[{"resource":{"meta":{"versionId":"1"},'
        '"resourceType":"Patient"}}],"resourceType":"Parameters","valueQuantity":{"value":72.50}}',
    ],
)
def test_the_source_is_written_in_without_losing_anything(stored, gp):
    from api.fhir.bundle import with_source

    served = with_source(stored, gp.ods_code)
    resource, original = json.loads(served), json.loads(stored)
    assert resource["meta"]["source"] == f"{settings.PORTAL_URL}/fhir/Organization/{gp.ods_code}"
    assert '"value":72.50' in served  # the holder's decimals, as written
    for name, value in original.get("meta", {}).items():
        if name != "source":
            assert resource["meta"][name] == value
    assert {k: v for k, v in resource.items() if k != "meta"} == {
        k: v for k, v in original.items() if k != "meta"
    }
    if "contained" in original:
        assert "source" not in resource["contained"][0]["meta"]
    if "part" in original:
        assert "source" not in resource["part"][0]["resource"]["meta"]
