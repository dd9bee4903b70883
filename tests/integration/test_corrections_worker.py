"""The deadline sweep and the downstream notices run in a live Celery worker."""

import json

import pytest

from accounts.models import Notification, PatientLink, User
from accuracy import services
from accuracy.models import SweepMark
from accuracy.tasks import deadline_sweep
from consent.policy import actor_for, open_record
from phr.ingest import ingest_documents
from phr.models import Organisation, Patient, RecordEntry
from tests.personas import ClinicianFactory

NHS = "https://fhir.nhs.uk/Id/nhs-number"


@pytest.mark.django_db(transaction=True)
def test_the_sweep_and_the_notices_run_in_the_worker_once(live_worker, wait_for):
    gp = Organisation.objects.create(ods_code="A30001", name="Sweep Surgery", kind="gp_practice")
    trust = Organisation.objects.create(ods_code="RS300", name="Sweep Trust", kind="acute_trust")
    item = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/s1"},
        "code": {"text": "Asthma"},
    }
    person = {"resourceType": "Patient", "id": "s1", "identifier": [{"system": NHS, "value": "9990000034"}]}
    doc = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": person}, {"resource": item}],
    }
    assert ingest_documents([("s", doc)], organisation=gp).rejected == 0
    patient = Patient.objects.get(nhs_number="9990000034")
    owner = User.objects.create_user("sweep-patient@example.com", "pw-for-tests-only", role="patient")
    PatientLink.objects.create(user=owner, patient=patient, method="demo")
    # Staff read records only with a second factor (the personas' clinicians have one).
    doctor = ClinicianFactory(email="sweep-gp@example.com", organisation=gp)
    reader = ClinicianFactory(email="sweep-trust@example.com", organisation=trust)
    open_record(actor_for(reader), patient.pk).read()  # the trust sees version 1
    entry = RecordEntry.objects.get(resource_type="Condition")

    request = services.submit_correction(
        actor=actor_for(owner),
        entry_id=entry.pk,
        element="code",
        proposed="Chronic cough",
        reason="I was never diagnosed with asthma",
        contact_preference="email",
    )
    deadline_day = request.due_on.isoformat()
    for _ in range(2):  # a re-run sends nothing twice
        deadline_sweep.delay(today=deadline_day)

    def sweeps_done():
        lines = live_worker.log_path.read_text().splitlines()
        return sum("deadline_sweep" in line and "succeeded" in line for line in lines) >= 2

    wait_for(sweeps_done, what="both sweeps")
    assert SweepMark.objects.filter(request=request).count() == 1

    request = services.start_review(actor=actor_for(doctor), request_id=request.pk, revision=request.revision)
    fixed = {**item, "code": {"text": "Chronic cough"}}
    services.accept(
        actor=actor_for(doctor),
        request_id=request.pk,
        revision=request.revision,
        resource_json=json.dumps(fixed),
        based_on_version=1,
    )

    note = Notification.objects.get(user=reader, title__contains="corrected")
    wait_for(lambda: Notification.objects.get(pk=note.pk).emailed_at is not None, what="the notice email")
    mails = [p.read_text() for p in live_worker.mail_dir.iterdir()]
    assert sum("sweep-trust@example.com" in m for m in mails) == 1
