"""A clinician under emergency access finds the allergies first: the record in clinical
sections under the patient banner, each item in words with its FHIR a click away, a
"Social care" tag inside its column, axe-core clean (WCAG 2.2 AA) at 1280 px and 375 px,
and emergency access ended from its own banner."""

import re

import pytest
from playwright.sync_api import expect

from consent.models import Decision, Scope
from consent.policy import actor_for
from consent.services import change_consent
from phr.ingest import ingest_documents
from phr.models import Organisation, OrganisationKind
from tests.clinician.network import NHS_NUMBER, NHS_SYSTEM, build_record
from tests.clinician.test_clinical_view import more_of_the_record
from tests.e2e.conftest import sign_in
from tests.personas import PatientUserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDE, NARROW = {"width": 1280, "height": 900}, {"width": 375, "height": 800}
# For each tag in a table cell: does it stay inside its cell?
TAGS_OVERFLOWING = """() => [...document.querySelectorAll('td .nhsuk-tag')].filter(tag => {
    const cell = tag.closest('td').getBoundingClientRect(), box = tag.getBoundingClientRect();
    return box.left < cell.left - 1 || box.right > cell.right + 1;
}).map(tag => tag.textContent)"""


def social_care_item() -> None:
    council = Organisation.objects.create(
        ods_code="SC100", name="City Council Adult Social Care", kind=OrganisationKind.SOCIAL_CARE
    )
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": NHS_SYSTEM, "value": NHS_NUMBER}],
    }
    assessment = {
        "resourceType": "Condition",
        "id": "s1",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "Needs help with washing and dressing after a fall"},
        "recordedDate": "2025-02-03",
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient}, {"resource": assessment}],
    }
    ingest_documents([("council.json", bundle)], organisation=council)


@pytest.fixture
def refusing_patient(gp, hospital, mental_health_trust):
    ada = build_record(gp, hospital)
    more_of_the_record(hospital)
    social_care_item()
    change_consent(
        actor=actor_for(PatientUserFactory(email="ada@example.com", patient=ada)),
        patient_id=ada.pk,
        scope=Scope.ORGANISATION,
        decision=Decision.DENY,
        organisation=mental_health_trust,
    )
    return ada


def test_under_emergency_access_the_allergies_come_first(
    live_server, browser_page, refusing_patient, dr_moss, axe_violations, screenshot
):
    page = browser_page
    sign_in(page, live_server.url + "/clinician/", dr_moss)
    record = re.compile(rf".*/clinician/patients/{refusing_patient.pk}/$")

    page.goto(f"{live_server.url}/clinician/patients/{refusing_patient.pk}/emergency-access/")
    page.get_by_label("Emergency care: the patient cannot consent").check()
    page.get_by_label("Explain the emergency").fill(
        "Brought in unconscious; need allergies and medicines now."
    )
    page.get_by_role("button", name="Open the record in an emergency").click()
    page.wait_for_url(record)

    banner = page.locator("#patient-banner")
    expect(banner).to_contain_text("OKAFOR, Ada")
    expect(banner).to_contain_text("4 March 1971")
    expect(banner).to_contain_text("943 476 5919")
    sections = page.locator("main h2.nhsuk-heading-m")
    expect(sections.first).to_have_text("Allergies and adverse reactions")
    allergies = page.locator("#section-allergies")
    expect(allergies).to_contain_text("Penicillin")
    expect(allergies).to_contain_text("Anaphylaxis")
    # On the first screen, under the two banners: no scrolling to find it.
    assert allergies.bounding_box()["y"] < WIDE["height"]

    allergies.get_by_text("Show the FHIR resource").click()
    expect(allergies.locator("pre")).to_be_visible()
    expect(allergies.locator("pre")).to_contain_text('"resourceType": "AllergyIntolerance"')
    expect(page.locator("main")).to_contain_text("Social care")
    assert page.evaluate(TAGS_OVERFLOWING) == []
    assert axe_violations() == []
    screenshot("clinician-record-allergies-first-1280")

    page.set_viewport_size(NARROW)
    expect(sections.first).to_have_text("Allergies and adverse reactions")
    assert page.evaluate(TAGS_OVERFLOWING) == []
    assert axe_violations() == []
    screenshot("clinician-record-allergies-first-375")

    page.set_viewport_size(WIDE)
    page.get_by_role("button", name="End emergency access now").click()
    page.wait_for_url(record)
    expect(page.get_by_role("heading", level=1)).to_have_text("You cannot see this record")
    expect(page.locator("main")).not_to_contain_text("Penicillin")
    assert axe_violations() == []
