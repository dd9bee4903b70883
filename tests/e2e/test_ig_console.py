"""An IG officer signs in with a password and an authenticator code, searches the audit
trail by NHS number, reads a patient's consent and access history, reviews an emergency
access and looks at the unusual-access signals; every page passes axe-core's WCAG 2.2
AA checks."""

import re

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP
from playwright.sync_api import expect

from accounts.models import Membership, PatientLink, User
from consent.models import BreakGlassReview
from consent.policy import actor_for, open_record
from consent.services import change_consent, declare_break_glass
from demo.totp import current_code
from phr.ingest import ingest_documents
from phr.models import Patient

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-and-unguessable-phrase"
SECRET = "NBSWY3DPORVXA4TPMFZWI3LPNRXXEYLM"
NHS_NUMBER = "9434765919"


@pytest.fixture
def history(gp, hospital):
    """A patient read by the hospital, who then refuses sharing; an emergency access follows."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "ada",
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER}],
                    "name": [{"family": "Okafor", "given": ["Ada"]}],
                }
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "c1",
                    "subject": {"reference": "Patient/ada"},
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
                }
            },
        ],
    }
    ingest_documents([("feed.json", bundle)], organisation=gp)
    ada = Patient.objects.get(nhs_number=NHS_NUMBER)
    account = User.objects.create_user("ada@example.com", PASSWORD, role="patient")
    PatientLink.objects.create(user=account, patient=ada, method=PatientLink.Method.DEMO)
    doctor = User.objects.create_user("dr.bell@hospital.example", PASSWORD, role="clinician")
    Membership.objects.create(user=doctor, organisation=hospital)
    TOTP.activate(doctor, SECRET)  # staff read records only with a second factor
    open_record(actor_for(doctor), ada.pk).read()
    change_consent(actor=actor_for(account), patient_id=ada.pk, scope="network", decision="deny")
    declare_break_glass(
        actor=actor_for(doctor), patient_id=ada.pk, reason_code="emergency", reason_text="Unconscious in A&E"
    )
    open_record(actor_for(doctor), ada.pk).read()
    return ada


@pytest.fixture
def ig_officer():
    user = User.objects.create_user("ig@network.example", PASSWORD, role="ig_officer")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    TOTP.activate(user, SECRET)
    return user


def test_an_ig_officer_reviews_access_and_consent(
    live_server, browser_page, history, ig_officer, axe_violations, screenshot
):
    page = browser_page
    page.goto(live_server.url + "/ig/")
    page.wait_for_url("**/accounts/login/**")
    page.get_by_label("Email").fill(ig_officer.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url("**/accounts/2fa/authenticate/**")
    page.locator('input[name="code"]').fill(current_code(SECRET))
    page.locator('form button[type="submit"]').first.click()

    page.wait_for_url(live_server.url + "/ig/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Search the audit trail")
    assert axe_violations() == []
    screenshot("ig-search")

    page.get_by_label("Patient's NHS number").fill("123")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("valid 10-digit NHS number")
    assert axe_violations() == []
    screenshot("ig-search-error")

    page.get_by_label("Patient's NHS number").fill("943 476 5919")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(rf".*/ig/\?patient={history.pk.hex}$"))
    assert NHS_NUMBER not in page.url
    expect(page.locator("main table")).to_contain_text("dr.bell@hospital.example")
    expect(page.locator("main")).not_to_contain_text("Okafor")
    assert axe_violations() == []
    screenshot("ig-search-patient")

    page.get_by_role("link", name="See this patient's consent and access").click()
    page.wait_for_url(re.compile(rf".*/ig/patients/{history.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Consent and access for one patient")
    expect(page.locator("main")).to_contain_text("Choice 1: Do not share")
    expect(page.locator("main")).to_contain_text("Unconscious in A&E")
    assert axe_violations() == []
    screenshot("ig-patient")

    page.get_by_role("link", name="Emergency access", exact=True).click()
    page.wait_for_url("**/ig/break-glass/")
    assert axe_violations() == []
    screenshot("ig-break-glass")

    page.get_by_role("button", name=re.compile("Record verdict")).click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("There is a problem")
    assert axe_violations() == []
    screenshot("ig-break-glass-error")

    page.get_by_label("Appropriate", exact=True).check()
    page.get_by_label("Note").fill("Seen in the A&E notes")
    page.get_by_role("button", name=re.compile("Record verdict")).click()
    page.wait_for_url("**/ig/break-glass/")
    expect(page.locator(".nhsuk-notification-banner")).to_contain_text("verdict")
    assert BreakGlassReview.objects.get().verdict == "appropriate"
    assert axe_violations() == []
    screenshot("ig-break-glass-reviewed")

    page.get_by_role("link", name="Unusual access", exact=True).click()
    page.wait_for_url("**/ig/signals/")
    assert axe_violations() == []
    screenshot("ig-signals")

    page.get_by_role("link", name="Withheld items", exact=True).click()
    page.wait_for_url("**/ig/withheld/")
    assert axe_violations() == []
    screenshot("ig-withheld")

    page.get_by_role("link", name="Patients", exact=True).click()
    page.wait_for_url("**/ig/patients/")
    page.get_by_label("NHS number").fill(NHS_NUMBER)
    page.get_by_role("button", name="Show consent and access").click()
    page.wait_for_url(re.compile(rf".*/ig/patients/{history.pk}/$"))
    assert axe_violations() == []
