"""Issue 13, in a real browser: the Metformin case. The GP's record says once a day, the
hospital's twice a day. The patient is told on their summary, asks both to correct it in
one click; the GP's clinician finds it among the accuracy checks, is taken to the
patient's request and corrects the dose in its fields; the next check clears it. Every
page passes axe-core's WCAG 2.2 AA checks at 1280 and 375 pixels wide."""

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

from accuracy.checks.engine import run_checks
from accuracy.models import CorrectionRequest, Finding
from phr.models import Patient, RecordEntry
from tests.accuracy.test_checks_engine import NHS, metformin
from tests.e2e.conftest import sign_in
from tests.e2e.test_amend_with_fields import clean_at_both_widths
from tests.feeds import person, send
from tests.personas import PASSWORD, ClinicianFactory, PatientUserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def metformin_case(gp, hospital) -> Patient:
    send(gp, person("p", NHS, "Jones"), metformin("m1", "500mg once daily"))
    send(hospital, person("p", NHS, "Jones"), metformin("h1", "500mg twice daily with meals"))
    patient = Patient.objects.get(nhs_number=NHS)
    run_checks(patient.pk)
    assert Finding.objects.filter(patient=patient, status="open").count() == 1
    return patient


def test_the_patient_asks_both_holders_and_the_gp_corrects_its_dose(
    live_server, browser_page, metformin_case, gp, hospital, axe_violations, screenshot
):
    page = browser_page
    jones = PatientUserFactory(email="jones@example.com", patient=metformin_case)
    EmailAddress.objects.create(user=jones, email=jones.email, verified=True, primary=True)
    page.goto(f"{live_server.url}/record/")
    page.wait_for_url("**/accounts/login/**")
    page.get_by_label("Email").fill(jones.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/record/")
    expect(page.locator("main")).to_contain_text("One thing you may want to check")
    page.get_by_role("link", name="See what to check").click()
    card = page.locator("#finding-1")
    expect(card).to_contain_text("Riverside Surgery's record says: 500mg once daily")
    expect(card).to_contain_text("City Teaching Hospitals's record says: 500mg twice daily with meals")
    clean_at_both_widths(page, axe_violations, screenshot, "checks-patient")
    card.get_by_role("button", name="Ask them to correct it").click()
    expect(page.locator(".nhsuk-notification-banner")).to_contain_text(
        "Your request has been sent to City Teaching Hospitals and Riverside Surgery"
    )
    assert {r.owner for r in CorrectionRequest.objects.all()} == {gp, hospital}

    page.context.clear_cookies()
    doctor = ClinicianFactory(email="dr.gp@riverside.example", organisation=gp)
    EmailAddress.objects.create(user=doctor, email=doctor.email, verified=True, primary=True)
    sign_in(page, f"{live_server.url}/clinician/findings/", doctor)
    expect(page.locator("#finding-1")).to_contain_text("The patient said")
    clean_at_both_widths(page, axe_violations, screenshot, "checks-holder-list")
    # The patient asked: the finding leads to their request, decided with the same fields.
    page.get_by_role("link", name="Correct your item").click()
    expect(page.locator(".nhsuk-notification-banner")).to_contain_text(
        "The patient has asked you to correct this item"
    )
    page.get_by_role("button", name="Start review").click()
    form = page.locator("#amend-fields")
    expect(form.get_by_label("The dose")).to_have_value("500mg once daily")
    clean_at_both_widths(page, axe_violations, screenshot, "checks-holder-correct")
    form.get_by_label("The dose").fill("500mg twice daily with meals")
    page.get_by_role("button", name="Check the correction", exact=True).click()
    expect(page.locator("#amend-changes")).to_contain_text(
        "The dose changes from 500mg once daily to 500mg twice daily with meals"
    )
    clean_at_both_widths(page, axe_violations, screenshot, "checks-holder-preview")
    page.get_by_role("button", name="Confirm and save the correction").click()
    expect(page.locator("#request-status")).to_have_text("Corrected")
    assert RecordEntry.objects.get(owner=gp, fhir_id="m1").version == 2

    run_checks(metformin_case.pk)
    assert not Finding.objects.filter(patient=metformin_case, status="open").exists()
    page.goto(f"{live_server.url}/clinician/findings/")
    expect(page.locator("#no-findings")).to_be_visible()
