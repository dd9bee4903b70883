"""Issue 13: the accuracy checks run in the live Celery worker after an ingest commits:
the Metformin case is found once, and a later version that agrees resolves it."""

import pytest

from accuracy.models import Finding, PendingCheck
from phr.ingest import ingest_documents
from phr.models import Organisation, Patient

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def feed(dose: str, mid: str) -> dict:
    person = {"resourceType": "Patient", "id": "w1", "identifier": [{"system": NHS, "value": "9990000042"}]}
    medicine = {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/w1"},
        "medicationCodeableConcept": {"text": "Metformin 500mg tablets"},
        "authoredOn": "2026-11-01",
        "dosageInstruction": [{"text": dose}],
    }
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": person}, {"resource": medicine}],
    }


@pytest.mark.django_db(transaction=True)
def test_the_worker_finds_the_metformin_case_and_resolves_it(live_worker, wait_for):
    gp = Organisation.objects.create(ods_code="A40001", name="Check Surgery", kind="gp_practice")
    trust = Organisation.objects.create(ods_code="RS400", name="Check Trust", kind="acute_trust")
    assert ingest_documents([("gp", feed("500mg once daily", "m1"))], organisation=gp).rejected == 0
    assert ingest_documents([("trust", feed("500mg twice daily", "h1"))], organisation=trust).rejected == 0
    patient = Patient.objects.get(nhs_number="9990000042")

    found = wait_for(
        lambda: Finding.objects.filter(
            patient=patient, rule="medicine-dose-disagrees", status="open"
        ).first(),
        what="the worker to check the record",
    )
    assert "how often to take it" in found.explanation
    wait_for(
        lambda: not PendingCheck.objects.filter(patient=patient).exists(), what="the pending check to go"
    )

    assert ingest_documents([("trust", feed("500mg once daily", "h1"))], organisation=trust).rejected == 0
    wait_for(
        lambda: Finding.objects.filter(pk=found.pk, status="resolved").exists(),
        what="the worker to resolve the finding",
    )
    assert Finding.objects.filter(patient=patient).count() == 1
