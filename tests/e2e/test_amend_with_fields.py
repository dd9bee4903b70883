"""A clinician corrects a dose, a status and a date with form fields only, checks each
change in words and confirms it; the patient then reads the new version in words. Every
page passes axe-core's WCAG 2.2 AA checks at 1280 and 375 pixels wide."""

import re

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

from accuracy import services
from accuracy.models import BusinessStatus, CorrectionRequest
from consent.policy import actor_for
from phr.ingest import ingest_documents
from phr.models import RecordEntry
from tests.clinician.network import build_record
from tests.e2e.conftest import sign_in
from tests.personas import PASSWORD, ClinicianFactory, PatientUserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SUBJECT = {"reference": "Patient/p1"}
MEDICINE = {
    "resourceType": "MedicationStatement",
    "id": "m1",
    "status": "active",
    "subject": SUBJECT,
    "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
    "dosage": [
        {"text": "50mg once daily", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}
    ],
}
VACCINE = {
    "resourceType": "Immunization",
    "id": "i1",
    "status": "completed",
    "patient": SUBJECT,
    "vaccineCode": {"text": "Influenza vaccine"},
    "occurrenceDateTime": "2024-10-01",
}


@pytest.fixture
def flagged(gp, hospital):
    """Ada asks Riverside Surgery to correct her dose and the date of her flu vaccine."""
    patient = build_record(gp, hospital)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": MEDICINE}, {"resource": VACCINE}],
    }
    ingest_documents([("gp-medicines.json", bundle)], organisation=gp)
    ada = PatientUserFactory(email="ada@example.com", patient=patient)
    EmailAddress.objects.create(user=ada, email=ada.email, verified=True, primary=True)
    requests = {}
    for fhir_id, element in (("m1", "dosage[0].text"), ("i1", "occurrenceDateTime")):
        requests[fhir_id] = services.submit_correction(
            actor=actor_for(ada),
            entry_id=RecordEntry.objects.get(owner=gp, fhir_id=fhir_id).pk,
            element=element,
            proposed="It is wrong",
            reason="The surgery wrote it down wrongly",
            contact_preference="portal",
        )
    return {"ada": ada, "requests": requests}


def clean_at_both_widths(page, axe_violations, screenshot, name: str) -> None:
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        assert axe_violations() == [], f"{name} at {width}px"
        screenshot(f"{name}-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_a_clinician_corrects_with_fields_and_the_patient_reads_the_new_version(
    live_server, browser_page, flagged, gp, axe_violations, screenshot
):
    page = browser_page
    doctor = ClinicianFactory(email="dr.gp@riverside.example", organisation=gp)
    EmailAddress.objects.create(user=doctor, email=doctor.email, verified=True, primary=True)
    medicine_url = f"{live_server.url}/clinician/corrections/{flagged['requests']['m1'].pk}/"
    sign_in(page, medicine_url, doctor)
    page.get_by_role("button", name="Start review").click()
    expect(page.locator("#request-status")).to_have_text("In review")

    form = page.locator("#amend-fields")
    expect(form.get_by_label("The dose")).to_have_value("50mg once daily")
    expect(page.get_by_label("The corrected item (FHIR R4 JSON)")).to_be_hidden()  # behind a disclosure
    clean_at_both_widths(page, axe_violations, screenshot, "amend-fields-form")

    # A mistake first: the error summary names the part and what to fix.
    form.get_by_label("How many times").fill("lots")
    page.get_by_role("button", name="Check the correction", exact=True).click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("Enter how many times as a whole number")
    clean_at_both_widths(page, axe_violations, screenshot, "amend-fields-error")

    form = page.locator("#amend-fields")
    form.get_by_label("The dose").fill("5mg once daily")
    form.get_by_label("How many times").fill("1")
    form.get_by_text("Change another part of the item").click()
    form.get_by_label("Stopped").check()
    page.get_by_role("button", name="Check the correction", exact=True).click()
    changes = page.locator("#amend-changes")
    expect(changes).to_contain_text("The dose changes from 50mg once daily to 5mg once daily")
    expect(changes).to_contain_text("The status changes from active to stopped")
    clean_at_both_widths(page, axe_violations, screenshot, "amend-fields-preview")
    page.get_by_role("button", name="Confirm and save the correction").click()
    expect(page.locator(".nhsuk-notification-banner")).to_contain_text("The item has been corrected")
    expect(page.locator("#request-status")).to_have_text("Corrected")

    page.goto(f"{live_server.url}/clinician/corrections/{flagged['requests']['i1'].pk}/")
    page.get_by_role("button", name="Start review").click()
    form = page.locator("#amend-fields")
    expect(form.get_by_label("Day")).to_have_value("1")
    form.get_by_label("Day").fill("8")
    page.get_by_role("button", name="Check the correction", exact=True).click()
    expect(page.locator("#amend-changes")).to_contain_text(
        "When it was given changes from 1 October 2024 to 8 October 2024"
    )
    page.get_by_role("button", name="Confirm and save the correction").click()
    expect(page.locator("#request-status")).to_have_text("Corrected")
    assert {r.business_status for r in CorrectionRequest.objects.all()} == {BusinessStatus.AMENDED}

    page.context.clear_cookies()
    medicine = RecordEntry.objects.get(owner=gp, fhir_id="m1")
    item_url = f"{live_server.url}/record/items/{medicine.pk}/"
    page.goto(item_url)
    page.wait_for_url("**/accounts/login/**")
    page.get_by_label("Email").fill(flagged["ada"].email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(item_url)
    main = page.locator("main")
    expect(main).to_contain_text("5mg once daily")
    expect(main).not_to_contain_text("dosage[0]")
    expect(main).not_to_contain_text(re.compile(r"\{\s*\""))
    clean_at_both_widths(page, axe_violations, screenshot, "amend-fields-patient-item")
