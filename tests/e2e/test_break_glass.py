"""A clinician signs in with a password and an authenticator code, finds a patient who
has refused their organisation, declares emergency access and reads the record; every
page passes axe-core's WCAG 2.2 AA checks."""

import re

import pytest
from playwright.sync_api import expect

from consent.models import BreakGlass, Decision, Scope
from consent.policy import actor_for
from consent.services import change_consent
from tests.clinician.network import NHS_NUMBER, build_record
from tests.e2e.conftest import sign_in
from tests.personas import PatientUserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def refusing_patient(gp, hospital, mental_health_trust):
    ada = build_record(gp, hospital)
    change_consent(
        actor=actor_for(PatientUserFactory(email="ada@example.com", patient=ada)),
        patient_id=ada.pk,
        scope=Scope.ORGANISATION,
        decision=Decision.DENY,
        organisation=mental_health_trust,
    )
    return ada


def test_a_clinician_uses_emergency_access_to_a_refused_record(
    live_server, browser_page, refusing_patient, dr_moss, axe_violations, screenshot
):
    page = browser_page
    sign_in(page, live_server.url + "/clinician/", dr_moss)
    expect(page.get_by_role("heading", level=1)).to_have_text("Find a patient")
    assert axe_violations() == []
    screenshot("clinician-find-patient")

    page.get_by_label("NHS number").fill("123")
    page.get_by_role("button", name="Find patient").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("10 digits long")
    expect(page.locator('.nhsuk-error-summary a[href="#id_nhs_number"]')).to_have_count(1)
    assert axe_violations() == []
    screenshot("clinician-find-patient-error")

    page.get_by_label("NHS number").fill("943 476 5919")
    page.get_by_role("button", name="Find patient").click()
    page.wait_for_url(re.compile(rf".*/clinician/patients/{refusing_patient.pk}/$"))
    assert NHS_NUMBER not in page.url
    expect(page.get_by_role("heading", level=1)).to_have_text("You cannot see this record")
    expect(page.locator("main")).not_to_contain_text("Okafor")
    assert axe_violations() == []
    screenshot("clinician-refused")

    page.get_by_role("button", name="Emergency access").click()
    page.wait_for_url("**/emergency-access/")
    expect(page.locator(".nhsuk-warning-callout")).to_contain_text("information governance will be told")
    assert axe_violations() == []
    screenshot("clinician-emergency-access")

    page.get_by_role("button", name="Open the record in an emergency").click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("Choose the reason for emergency access")
    expect(summary.locator('a[href="#id_reason_code"]')).to_have_count(1)
    assert axe_violations() == []
    screenshot("clinician-emergency-access-error")

    page.get_by_label("Emergency care: the patient cannot consent").check()
    page.get_by_label("Explain the emergency").fill("Brought in unconscious; need medicines and history now.")
    page.get_by_role("button", name="Open the record in an emergency").click()

    page.wait_for_url(re.compile(rf".*/clinician/patients/{refusing_patient.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Patient record")
    banner = page.locator("#emergency-access-banner")
    expect(banner).to_contain_text("Emergency access is open")
    expect(banner).to_contain_text("Brought in unconscious")
    main = page.locator("main")
    expect(main).to_contain_text("OKAFOR, Ada")
    expect(main).to_contain_text("943 476 5919")
    expect(main).to_contain_text("Depressive disorder")
    expect(main).to_contain_text("Entered in error")
    assert BreakGlass.objects.filter(clinician=dr_moss, patient=refusing_patient).count() == 1
    assert axe_violations() == []
    screenshot("clinician-record-emergency")

    page.get_by_role("link", name="Fracture of wrist").click()
    page.wait_for_url("**/entries/**")
    expect(page.locator("pre")).to_contain_text('"resourceType": "Condition"')
    expect(page.locator("#emergency-access-banner")).to_be_visible()
    assert axe_violations() == []
    screenshot("clinician-entry")
