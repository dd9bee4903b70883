"""A linked patient signs in through the real login page, sees who can see their record,
refuses one organisation through the confirmation page, sees it reflected, previews an
organisation, reads who has looked (a clinician's read and an emergency access) and
opens their inbox; axe-core finds no WCAG 2.2 AA or best-practice violation on any page."""

import re

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

from consent.models import Decision, Scope
from consent.policy import actor_for, open_record
from consent.services import change_consent, declare_break_glass
from phr.models import Organisation, OrganisationKind
from tests.clinician.network import build_record
from tests.personas import PASSWORD, ClinicianFactory, PatientUserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ada_user(gp, hospital, mental_health_trust):
    Organisation.objects.create(
        ods_code="RYA", name="Northbridge Ambulance Service", kind=OrganisationKind.AMBULANCE
    )
    ada = build_record(gp, hospital)
    user = PatientUserFactory(email="ada@example.com", patient=ada)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    # A hospital doctor reads the record for direct care.
    doctor = ClinicianFactory(email="dr.hale@hospital.example", organisation=hospital)
    doctor.first_name, doctor.last_name = "Priya", "Hale"
    doctor.save()
    open_record(actor_for(doctor), ada.pk).read()
    # The mind trust is refused, then opens the record in an emergency.
    change_consent(
        actor=actor_for(user),
        patient_id=ada.pk,
        scope=Scope.ORGANISATION,
        decision=Decision.DENY,
        organisation=mental_health_trust,
    )
    moss = ClinicianFactory(email="dr.moss@mind.example", organisation=mental_health_trust)
    declare_break_glass(
        actor=actor_for(moss),
        patient_id=ada.pk,
        reason_code="emergency",
        reason_text="Brought in unconscious; need medicines now.",
    )
    open_record(actor_for(moss), ada.pk).read()
    return user


def test_a_patient_checks_and_changes_who_can_see_their_record(
    live_server, browser_page, ada_user, axe_violations, screenshot
):
    page = browser_page
    page.goto(live_server.url + "/sharing/")
    page.wait_for_url("**/accounts/login/**")
    page.get_by_label("Email").fill(ada_user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(live_server.url + "/sharing/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Who can see my record")
    who = page.locator("#who-can-see")
    expect(who).to_contain_text(
        "Northbridge Ambulance Service can see everything except your sensitive records."
    )
    expect(who).to_contain_text("City Mind Partnership cannot see your record.")
    expect(page.locator("#emergency-access")).to_be_visible()
    assert axe_violations() == []
    screenshot("sharing-who-can-see")

    page.get_by_role("link", name="Change my sharing choices").first.click()
    page.wait_for_url("**/sharing/choices/")
    page.get_by_role("button", name="Continue").click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("Choose what your choice is about")
    expect(summary.locator('a[href="#id_scope_0"]')).to_have_count(1)
    assert axe_violations() == []
    screenshot("sharing-choices-error")

    page.get_by_label("One organisation: everything it could see").check()
    page.get_by_label("Organisation", exact=True).select_option(label="Northbridge Ambulance Service")
    page.get_by_label("Do not share", exact=True).check()
    page.get_by_label("Year").fill("2020")
    page.get_by_label("Day").fill("1")
    page.get_by_label("Month").fill("3")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("The end date must be in the future")
    assert axe_violations() == []
    screenshot("sharing-choices-date-error")

    page.get_by_label("Day").fill("")
    page.get_by_label("Month").fill("")
    page.get_by_label("Year").fill("")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your sharing choice")
    expect(page.locator("#changes")).to_contain_text(
        "From now on, Northbridge Ambulance Service will not be able to see your record."
    )
    assert axe_violations() == []
    screenshot("sharing-confirm")

    page.get_by_role("button", name="Change").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change my sharing choices")
    expect(page.get_by_label("Do not share", exact=True)).to_be_checked()
    expect(page.get_by_label("Organisation", exact=True)).to_have_value(
        str(Organisation.objects.get(ods_code="RYA").pk)
    )
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Confirm and save").click()

    page.wait_for_url(live_server.url + "/sharing/")
    expect(page.locator(".nhsuk-notification-banner--success")).to_contain_text(
        "Your sharing choice has been saved"
    )
    expect(page.locator("#who-can-see")).to_contain_text(
        "Northbridge Ambulance Service cannot see your record."
    )
    assert axe_violations() == []
    screenshot("sharing-who-can-see-after")

    page.get_by_role("link", name="See what it would see (City Teaching Hospitals)").click()
    page.wait_for_url(re.compile(r".*/sharing/preview/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("What City Teaching Hospitals would see")
    expect(page.locator("main")).to_contain_text("Fracture of wrist")
    expect(page.locator("main")).to_contain_text("Depressive disorder")
    assert axe_violations() == []
    screenshot("sharing-preview")

    page.goto(live_server.url + "/sharing/history/")
    expect(page.locator("#choice-history")).to_contain_text(
        "Do not share your record with Northbridge Ambulance Service"
    )
    assert axe_violations() == []
    screenshot("sharing-history")

    page.goto(live_server.url + "/sharing/access-log/")
    looks = page.locator("#looks")
    expect(looks).to_contain_text("Priya Hale")
    expect(looks).to_contain_text("City Teaching Hospitals")
    expect(looks).to_contain_text("Direct care")
    expect(looks.locator(".nhsuk-tag--red")).to_have_text("Emergency access")
    expect(page.locator("#emergency-openings")).to_contain_text("Brought in unconscious")
    assert axe_violations() == []
    screenshot("sharing-access-log")

    page.get_by_label("Only emergency access").check()
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#looks tbody tr")).to_have_count(1)
    expect(page.locator("#looks")).not_to_contain_text("Priya Hale")
    assert axe_violations() == []
    screenshot("sharing-access-log-filtered")

    page.get_by_role("link", name=re.compile(r"^My messages")).click()
    page.wait_for_url("**/inbox/")
    expect(page.locator("#unread-count")).to_have_text("You have 1 unread message.")
    assert axe_violations() == []
    screenshot("sharing-inbox")

    page.locator("#messages").get_by_role(
        "link", name="A clinician used emergency access to your record"
    ).first.click()
    expect(page.locator("#message-body")).to_contain_text("City Mind Partnership")
    assert axe_violations() == []
    screenshot("sharing-inbox-message")
