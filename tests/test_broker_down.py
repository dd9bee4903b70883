"""With the task broker unreachable, every action still succeeds: what it owes (an email)
is saved with it, nothing is lost, and once the broker is back each email goes exactly
once. A retried emergency-access declaration opens nothing twice.

The broker here is a real Redis URL on a port where nothing listens (refused at once,
as when Redis is down), not a mock: the publish really fails."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import Notification
from accounts.tasks import outbox_sweep
from accuracy.models import CorrectionRequest
from config.celery import app
from consent.models import BreakGlass, ConsentChoice, Decision, Scope
from phr.models import Patient, RecordEntry
from tests.api.test_fhir_write import patient_token
from tests.corrections.test_patient_corrections import MEDICINE
from tests.feeds import patient_resource, send
from tests.personas import ClinicianFactory, PatientUserFactory

NHS = "9434765919"
ITEM = MEDICINE  # Ada's GP medicine of the patient corrections tests


def use_broker(url: str, *, eager: bool) -> None:
    """Point the Celery app at a broker (eager: tasks run in-process, as in unit tests)."""
    app.conf.task_always_eager = eager
    app.conf.broker_url = app.conf.broker_write_url = app.conf.broker_read_url = url
    app._pool = None  # connections to the old broker are dropped
    app.amqp._producer_pool = None


@pytest.fixture
def broker_unreachable():
    """Nothing listens where the broker should be; afterwards, the broker the suite had
    (the live Redis of the integration run, or none)."""
    before = (app.conf.broker_url, app.conf.task_always_eager)
    use_broker("redis://127.0.0.1:1/0", eager=False)
    yield
    use_broker(before[0], eager=before[1])


@pytest.fixture
def net(gp, hospital):
    send(gp, patient_resource("p1", NHS), ITEM, {**ITEM, "id": "m2"}, {**ITEM, "id": "m3"})
    patient = Patient.objects.get(nhs_number=NHS)
    ConsentChoice.objects.create(patient=patient, scope=Scope.NETWORK, decision=Decision.DENY)
    return {
        "ada": PatientUserFactory(email="ada@example.com", patient=patient),
        "gp_doctor": ClinicianFactory(email="dr.gp@example.com", organisation=gp),
        "trust_doctor": ClinicianFactory(email="dr.trust@example.com", organisation=hospital),
        "patient": patient,
        "items": [RecordEntry.objects.get(fhir_id=f) for f in ("m1", "m2", "m3")],
    }


def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
def test_every_action_succeeds_and_each_email_goes_once_when_the_broker_returns(
    client, net, broker_unreachable, settings
):
    ada, items = net["ada"], net["items"]
    correction = {"proposed": "5mg once daily", "reason": "My GP changed it", "contact_preference": "portal"}

    # The web form.
    page = signed_in(client, ada).post(
        reverse("record:correct", kwargs={"entry_id": items[0].pk}),
        {**correction, "element": "dosage[0].text"},
    )
    assert page.status_code == 302, page.content[:300]
    # The JSON API.
    api = client.post(
        "/api/v1/corrections/",
        json.dumps({**correction, "entry": str(items[1].pk)}),
        content_type="application/json",
    )
    assert api.status_code == 201, api.content[:300]
    assert api["Content-Type"] == "application/json"
    # A patient's app, through FHIR.
    communication = {
        "resourceType": "Communication",
        "status": "in-progress",
        "about": [{"reference": "MedicationStatement/m3"}],
        "payload": [{"contentString": "The dose is wrong"}, {"contentString": "5mg once daily"}],
        "reasonCode": [{"text": "My GP changed it"}],
    }
    fhir = client.post(
        "/fhir/Communication/$correction-request",
        json.dumps(communication),
        content_type="application/fhir+json",
        **patient_token(ada, "patient/*.read patient/Communication.write"),
    )
    assert fhir.status_code == 201, fhir.content[:300]
    # Emergency access, declared and then declared again (a retry after a timeout).
    doctor = signed_in(client, net["trust_doctor"])
    url = reverse("clinician:emergency_access", kwargs={"patient_id": net["patient"].pk})
    reason = {"reason_code": "emergency", "reason_text": "Unconscious on arrival, history needed now"}
    first, retry = doctor.post(url, reason), doctor.post(url, reason)
    assert (first.status_code, retry.status_code) == (302, 302)

    assert CorrectionRequest.objects.count() == 3
    assert BreakGlass.objects.count() == 1  # the retry found the open one
    owed = Notification.objects.filter(email_state=Notification.Email.PENDING)
    assert owed.count() == 4  # the GP's clinician three times, Ada once
    assert mail.outbox == []

    use_broker("memory://", eager=True)  # the broker is back; here the sweep runs in-process
    Notification.objects.update(
        created_at=timezone.now() - timedelta(seconds=settings.OUTBOX_RETRY_SECONDS + 1)
    )
    assert outbox_sweep.delay().get() == {"sent": 4, "not_sent": 0}
    assert outbox_sweep.delay().get() == {"sent": 0, "not_sent": 0}
    keys = sorted(m.extra_headers["Message-ID"] for m in mail.outbox)
    assert len(keys) == len(set(keys)) == 4
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.com"] + ["dr.gp@example.com"] * 3
