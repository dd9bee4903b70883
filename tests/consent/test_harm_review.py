"""Issue 12 part 2: harm review before the patient sees. Safeguarding items always, items
labelled as about someone else, and (when the deployment asks) new results wait for the
holder's clinicians; until then they reach no patient, share link or patient app, the
patient is told only that some wait, and each decision is audited once."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from consent import harm_review
from consent.models import HarmReview, Withholding
from consent.policy import NotFound, actor_for, open_record
from consent.share_links import create_share_link, open_shared_record
from phr.models import RecordEntry
from tests.feeds import patient_resource, send
from tests.personas import ClinicianFactory, PatientUserFactory

pytestmark = pytest.mark.django_db

NHS = "9990000018"
SNOMED = "http://snomed.info/sct"


def condition(cid: str, text: str, *, label: str | None = None) -> dict:
    resource = {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": SNOMED, "code": "38341003", "display": text}], "text": text},
    }
    if label:
        resource["meta"] = {"security": [{"code": label}]}
    return resource


def result(oid: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": "Patient/p"},
        "code": {"text": "Serum potassium"},
        "valueQuantity": {"value": 6.1, "unit": "mmol/L"},
    }


@pytest.fixture
def world(gp, hospital):
    send(
        gp,
        patient_resource("p", NHS),
        condition("plain", "Hypertensive disorder"),
        condition("safe", "Adult at risk", label="SDV"),
        condition("other", "Father's heart disease", label="THIRDPARTY"),
        result("k"),
    )
    entries = {e.fhir_id: e for e in RecordEntry.objects.all()}
    patient = entries["plain"].patient
    return {
        "entries": entries,
        "patient": patient,
        "ada": PatientUserFactory(email="ada@example.com", patient=patient),
        "dr_gp": ClinicianFactory(email="dr.gp@example.com", organisation=gp),
        "dr_hospital": ClinicianFactory(email="dr.h@example.com", organisation=hospital),
    }


def seen_by(user, patient) -> set[str]:
    return {
        e.fhir_id for e in open_record(actor_for(user), patient.pk).read() if e.resource_type != "Patient"
    }


def test_safeguarding_and_third_party_items_wait_and_the_holder_still_sees_them(world):
    assert seen_by(world["ada"], world["patient"]) == {"plain", "k"}
    assert seen_by(world["dr_gp"], world["patient"]) == {"plain", "safe", "other", "k"}
    assert harm_review.waiting_for_patient(world["patient"]) == 2


def test_held_items_reach_no_share_link(world):
    created = create_share_link(actor=actor_for(world["ada"]), label="Holiday", scope="full", days=1)
    created.link.refresh_from_db()
    access = open_shared_record(link=created.link, source_address=None)
    assert {e.fhir_id for e in access.read()} & {"safe", "other"} == set()


def test_new_results_wait_only_while_the_deployment_asks(world, settings):
    settings.RESULTS_REVIEW_DAYS = 3
    assert "k" not in seen_by(world["ada"], world["patient"])
    with time_machine.travel(timezone.now() + timedelta(days=4)):
        assert "k" in seen_by(world["ada"], world["patient"])
    settings.RESULTS_REVIEW_DAYS = 0
    assert "k" in seen_by(world["ada"], world["patient"])


def test_the_patient_is_told_that_some_wait_and_nothing_more(world, client):
    client.force_login(world["ada"])
    page = client.get(reverse("record:summary")).content.decode()
    assert "Some items are waiting for your care team to review" in page
    assert "Adult at risk" not in page
    assert "Father" not in page


def test_the_queue_lists_the_organisations_waiting_items_with_the_patient(world, client):
    client.force_login(world["dr_gp"])
    page = client.get(reverse("clinician:reviews")).content.decode()
    assert page.count('class="nhsuk-card review-item"') == 2
    assert "Safeguarding information" in page
    assert "Information about someone else" in page
    assert "NHS number 999 000 0018" in page
    client.force_login(world["dr_hospital"])
    assert "Nothing is waiting for review" in client.get(reverse("clinician:reviews")).content.decode()


def decide_url(entry, decision: str) -> str:
    return reverse("clinician:review_decide", kwargs={"entry_id": entry.pk, "decision": decision})


def test_releasing_shows_the_item_to_the_patient_and_is_audited(world, client):
    safe = world["entries"]["safe"]
    client.force_login(world["dr_gp"])
    assert client.post(decide_url(safe, "release")).status_code == 302
    assert "safe" in seen_by(world["ada"], world["patient"])
    event = AuditEvent.objects.filter(action="record.release").last()
    assert (event.actor_id, event.patient_id, event.detail["harm_review"]) == (
        world["dr_gp"].pk,
        world["patient"].pk,
        HarmReview.objects.get(entry=safe).pk,
    )


def test_keeping_withheld_needs_a_reason_and_leaves_a_withholding(world, client):
    other = world["entries"]["other"]
    client.force_login(world["dr_gp"])
    prefix = f"keep-{other.pk.hex}-reason"
    refused = client.post(decide_url(other, "keep"), {prefix: "no"})
    assert refused.status_code == 400
    assert "Give the reason in at least 10 characters" in refused.content.decode()
    assert not HarmReview.objects.exists()
    kept = client.post(
        decide_url(other, "keep"), {prefix: "About the patient's father, who has not consented"}
    )
    assert kept.status_code == 302
    assert Withholding.objects.get(entry=other).reason.startswith("About the patient's father")
    assert "other" not in seen_by(world["ada"], world["patient"])
    assert harm_review.waiting_for_patient(world["patient"]) == 1
    assert AuditEvent.objects.filter(action="record.withhold").count() == 1


def test_a_second_decision_changes_nothing(world, client):
    safe = world["entries"]["safe"]
    client.force_login(world["dr_gp"])
    client.post(decide_url(safe, "release"))
    response = client.post(
        decide_url(safe, "keep"), {f"keep-{safe.pk.hex}-reason": "Changed my mind entirely"}
    )
    assert response.status_code == 302
    assert HarmReview.objects.get(entry=safe).decision == "released"
    assert not Withholding.objects.exists()


def test_another_organisation_an_ordinary_item_or_a_guess_is_not_found(world, client):
    client.force_login(world["dr_hospital"])
    assert client.post(decide_url(world["entries"]["safe"], "release")).status_code == 404
    client.force_login(world["dr_gp"])
    assert client.post(decide_url(world["entries"]["plain"], "release")).status_code == 404
    assert client.post(decide_url(world["entries"]["safe"], "publish")).status_code == 404
    guess = reverse(
        "clinician:review_decide",
        kwargs={"entry_id": "00000000-0000-0000-0000-000000000000", "decision": "release"},
    )
    assert client.post(guess).status_code == 404
    assert not HarmReview.objects.exists()


def test_patients_and_staff_without_a_second_factor_have_no_queue(world):
    with pytest.raises(NotFound):
        harm_review.pending(actor_for(world["ada"]))


@pytest.mark.parametrize("channel", ["fhir-search", "fhir-read", "json-export"])
def test_no_patient_channel_carries_a_held_item(world, client, channel):
    """The patient's own FHIR searches and reads, and the download of their record."""
    client.force_login(world["ada"])
    safe = world["entries"]["safe"]
    if channel == "fhir-search":
        body = client.get("/fhir/Condition", {"patient": str(world["patient"].pk)}).content.decode()
        assert "Hypertensive disorder" in body
    elif channel == "fhir-read":
        assert client.get(f"/fhir/Condition/{world['entries']['plain'].pk}").status_code == 200
        response = client.get(f"/fhir/Condition/{safe.pk}")
        assert response.status_code == 404
        body = response.content.decode()
    else:
        body = client.get(reverse("record:download")).content.decode()
        assert "Hypertensive disorder" in body
    assert "Adult at risk" not in body
    assert "Father" not in body
