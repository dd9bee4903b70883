"""Break-glass tells the patient by email through a live Celery worker, once."""

import pytest

from accounts.models import Notification, PatientLink, User
from consent.models import ConsentChoice, Decision, Scope
from consent.policy import actor_for
from consent.services import declare_break_glass
from phr.ingest import ingest_documents
from phr.models import Organisation, Patient
from tests.personas import ClinicianFactory


@pytest.mark.django_db(transaction=True)
def test_a_break_glass_email_is_sent_by_the_worker_after_commit(live_worker, wait_for):
    gp = Organisation.objects.create(ods_code="A20001", name="Worker Surgery", kind="gp_practice")
    trust = Organisation.objects.create(ods_code="RW200", name="Worker Trust", kind="acute_trust")
    person = {
        "resourceType": "Patient",
        "id": "w1",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000026"}],
    }
    assert ingest_documents([("w", person)], organisation=gp).rejected == 0
    patient = Patient.objects.get(nhs_number="9990000026")
    owner = User.objects.create_user("worker-patient@example.com", "pw-for-tests-only", role="patient")
    PatientLink.objects.create(user=owner, patient=patient, method="demo")
    ConsentChoice.objects.create(patient=patient, scope=Scope.NETWORK, decision=Decision.DENY)
    doctor = ClinicianFactory(email="worker-doctor@example.com", organisation=trust)  # with a second factor

    declare_break_glass(
        actor=actor_for(doctor),
        patient_id=patient.pk,
        reason_code="emergency",
        reason_text="Collapsed in the street, unable to consent",
    )

    note = Notification.objects.get(user=owner)
    wait_for(lambda: Notification.objects.get(pk=note.pk).emailed_at is not None, what="the email task")
    sent = [p.read_text() for p in live_worker.mail_dir.iterdir()]
    mine = [m for m in sent if "worker-patient@example.com" in m]
    assert len(mine) == 1
    assert "emergency access" in mine[0]
    # The email says only that something happened: no reason text, no clinical detail.
    assert "Collapsed" not in mine[0]
