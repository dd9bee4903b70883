"""A newcomer creates an account, confirms their email address, signs in, and links the
account to their record with the letter their GP practice gave them, all in a real
browser; every page on the way passes axe-core's WCAG 2.2 AA and best-practice rules."""

import re
from datetime import date

import pytest
from playwright.sync_api import expect

from accounts.linking import NO_MATCH, issue_linkage_key
from accounts.models import Membership, PatientLink, User
from phr.ingest import ingest_documents
from phr.models import Patient
from tests.personas import PASSWORD, TOTP_SECRET, totp_code

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NHS_NUMBER = "9434765919"
BORN = date(1984, 3, 15)
EMAIL = "ada.okafor@example.com"


@pytest.fixture
def letter(gp):
    """Riverside Surgery holds Ada's record and gives her a linkage key."""
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
                    "birthDate": BORN.isoformat(),
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
    doctor = User.objects.create_user("dr.bell@riverside.example", PASSWORD, role="clinician")
    Membership.objects.create(user=doctor, organisation=gp)
    key, passphrase = issue_linkage_key(
        issued_by=doctor, organisation=gp, patient=Patient.objects.get(nhs_number=NHS_NUMBER)
    )
    return {"account_id": key.formatted_account_id, "passphrase": passphrase, "ods_code": gp.ods_code}


def fill_letter(page, letter, *, passphrase=None, born=BORN):
    page.get_by_label("Account ID").fill(letter["account_id"])
    page.get_by_label("Passphrase").fill(passphrase or letter["passphrase"])
    page.get_by_label("Practice ODS code").fill(letter["ods_code"])
    page.get_by_label("Day").fill(str(born.day))
    page.get_by_label("Month").fill(str(born.month))
    page.get_by_label("Year").fill(str(born.year))
    page.get_by_role("button", name="Link my record").click()


def test_a_newcomer_signs_up_and_links_their_record(
    live_server, browser_page, letter, mailoutbox, axe_violations, screenshot
):
    page = browser_page
    checked = []

    def accessible(name: str):
        assert axe_violations() == [], name
        screenshot(f"linking-{name}")
        checked.append(name)

    # Create an account.
    page.goto(live_server.url + "/accounts/signup/")
    accessible("signup")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    accessible("verification-sent")

    # Confirm the address with the link in the email.
    [message] = mailoutbox
    # The email links to the portal's published address (PORTAL_URL); the test server
    # answers at its own, so the link's path is opened there.
    path = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+/)", message.body).group(1)
    page.goto(live_server.url + path)
    accessible("confirm-email")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(live_server.url + "/")

    # Sign out and in again, as someone coming back with the letter would.
    page.locator("header").get_by_role("button", name="Sign out").click()
    page.goto(live_server.url + "/accounts/login/")
    accessible("login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")
    accessible("home-unlinked")

    # The home page invites the new patient to link their record.
    page.get_by_role("button", name="Link your record").click()
    page.wait_for_url("**/link/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Link your account to your record")
    accessible("link-form")

    # A mistyped passphrase: the one generic error, summarised and linked.
    fill_letter(page, letter, passphrase="WRNG-WRNG-WRNG")
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text(NO_MATCH)
    accessible("link-form-error")

    # A date that is no date: the date input is marked in error.
    fill_letter(page, letter, born=date(1984, 3, 1))
    expect(summary).to_contain_text(NO_MATCH)
    page.get_by_label("Day").fill("31")
    page.get_by_label("Month").fill("2")
    page.get_by_role("button", name="Link my record").click()
    expect(summary).to_contain_text("Date of birth must be a real date")
    expect(summary.locator('a[href="#id_dob_day"]')).to_have_count(1)
    accessible("link-form-date-error")

    # The letter's details, as printed.
    fill_letter(page, letter)
    page.wait_for_url(live_server.url + "/")
    expect(page.locator(".nhsuk-notification-banner--success")).to_contain_text(
        "Your account is now linked to your record."
    )
    expect(page.get_by_role("button", name="Link your record")).to_have_count(0)
    accessible("home-linked")

    page.goto(live_server.url + "/link/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account is linked to your record")
    accessible("linked")

    # Two-factor authentication is offered from the home page.
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Two-factor authentication").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor authentication")
    accessible("two-factor")

    account = User.objects.get(email=EMAIL)
    assert PatientLink.objects.get(user=account).patient.nhs_number == NHS_NUMBER
    assert len(checked) == 11


def test_a_clinician_issues_a_key_and_sees_a_printable_letter(
    live_server, browser_page, gp, letter, axe_violations, screenshot
):
    from allauth.account.models import EmailAddress
    from allauth.mfa.totp.internal.auth import TOTP

    doctor = User.objects.get(email="dr.bell@riverside.example")
    EmailAddress.objects.create(user=doctor, email=doctor.email, verified=True, primary=True)
    TOTP.activate(doctor, TOTP_SECRET)
    page = browser_page
    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Email").fill(doctor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/2fa/authenticate/")
    assert axe_violations() == []
    screenshot("linking-mfa-authenticate")
    page.locator('input[name="code"]').fill(totp_code())
    page.locator('form button[type="submit"]').first.click()
    page.wait_for_url(live_server.url + "/")

    page.get_by_role("link", name="Issue a linkage key to a patient").click()
    page.wait_for_url("**/linkage-keys/")
    assert axe_violations() == []
    screenshot("linking-issue-key")
    page.get_by_label("NHS number").fill("943 476 5919")
    page.get_by_role("button", name="Issue a linkage key").click()
    expect(page.get_by_test_id("ods-code")).to_have_text(gp.ods_code)
    assert "943" not in page.url
    assert axe_violations() == []
    screenshot("linking-key-letter")
