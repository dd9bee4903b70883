"""A clinician signs in with a password and an authenticator code, opens the correction
queue, opens a patient's request, starts the review, fails once with an amendment that
is not valid FHIR, then corrects the item and sees it amended with its history; an IG
officer compares the network's figures. Every page passes axe-core's WCAG 2.2 AA checks."""

import json
import re

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP
from playwright.sync_api import expect

from accounts.models import User
from accuracy import services
from accuracy.models import BusinessStatus, CorrectionRequest
from consent.policy import actor_for
from phr.models import EntryVersion, RecordEntry
from tests.clinician.network import build_record
from tests.e2e.conftest import password_and_code, sign_in
from tests.personas import PASSWORD, TOTP_SECRET, ClinicianFactory, PatientUserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def flagged(gp, hospital):
    """Ada asks Riverside Surgery to correct the name of a condition it holds."""
    ada = build_record(gp, hospital)
    entry = RecordEntry.objects.get(owner=gp, fhir_id="c1")
    request = services.submit_correction(
        actor=actor_for(PatientUserFactory(email="ada@example.com", patient=ada)),
        entry_id=entry.pk,
        element="code",
        proposed="Hypertension, resolved in 2025",
        reason="My blood pressure has been normal since I lost weight",
        contact_preference="portal",
    )
    return {"request": request, "entry": entry}


def verified(user):
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def test_a_clinician_decides_a_correction_and_the_item_is_amended(
    live_server, browser_page, flagged, gp, axe_violations, screenshot
):
    dr_gp = verified(ClinicianFactory(email="dr.gp@riverside.example", organisation=gp))
    page = browser_page
    queue_url = live_server.url + "/clinician/corrections/"
    sign_in(page, queue_url, dr_gp)

    expect(page.get_by_role("heading", level=1)).to_have_text("Correction requests")
    expect(page.locator("#queue")).to_contain_text("Hypertensive disorder")
    expect(page.locator("#queue")).to_contain_text(re.compile(r"\d+ days left"))
    assert axe_violations() == []
    screenshot("workspace-queue")

    page.locator("#queue a").first.click()
    page.wait_for_url(re.compile(rf".*/clinician/corrections/{flagged['request'].pk}/$"))
    expect(page.locator("#proposed-text")).to_have_text("Hypertension, resolved in 2025")
    expect(page.locator("#current-text")).to_contain_text("recorded as “Hypertensive disorder”")
    expect(page.locator("#request-status")).to_have_text("New")
    assert axe_violations() == []
    screenshot("workspace-request")

    page.get_by_role("button", name="Start review").click()
    expect(page.locator(".nhsuk-notification-banner")).to_contain_text("You have started reviewing")
    expect(page.locator("#request-status")).to_have_text("In review")
    expect(page.locator("#request-assigned")).to_have_text(dr_gp.email)
    assert axe_violations() == []
    screenshot("workspace-in-review")

    resource = json.loads(flagged["entry"].json)
    page.get_by_text("Edit the FHIR resource").click()  # the expert's way, behind a disclosure
    box = page.get_by_label("The corrected item (FHIR R4 JSON)")
    assert json.loads(box.input_value()) == resource  # prefilled with the item as it is now
    box.fill(json.dumps({**resource, "recordedDate": "last Tuesday"}, indent=2))
    page.get_by_role("button", name="Correct the item", exact=True).click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("Condition.recordedDate")
    expect(summary.locator('a[href="#id_accept-resource"]')).to_have_count(1)
    expect(page.get_by_label("The corrected item (FHIR R4 JSON)")).to_have_value(re.compile("last Tuesday"))
    assert axe_violations() == []
    screenshot("workspace-accept-error")

    corrected = {**resource, "code": {"text": "Hypertension, resolved in 2025"}}
    page.get_by_label("The corrected item (FHIR R4 JSON)").fill(json.dumps(corrected, indent=2))
    page.get_by_role("button", name="Correct the item", exact=True).click()
    expect(page.locator(".nhsuk-notification-banner")).to_contain_text("The item has been corrected")
    expect(page.locator("#request-status")).to_have_text("Corrected")
    expect(page.locator("#decision-letter")).to_contain_text("We have corrected")
    versions = page.locator("#versions")
    expect(versions).to_contain_text("Version 2 (current)")
    expect(versions).to_contain_text("Amended by Riverside Surgery after a correction request")
    expect(versions).to_contain_text("Hypertension, resolved in 2025")
    assert axe_violations() == []
    screenshot("workspace-corrected")

    assert CorrectionRequest.objects.get().business_status == BusinessStatus.AMENDED
    assert EntryVersion.objects.get(entry=flagged["entry"], number=2).source == EntryVersion.Source.CORRECTION

    page.get_by_role("link", name="Back to correction requests").click()
    expect(page.locator("#queue-empty")).to_be_visible()
    page.get_by_role("link", name="Your organisation's figures").click()
    expect(page.locator("#figures-chart")).to_contain_text("Corrected")
    assert axe_violations() == []
    screenshot("workspace-figures")


def test_an_ig_officer_compares_the_networks_correction_figures(
    live_server, browser_page, flagged, axe_violations, screenshot
):
    officer = verified(User.objects.create_user("ig@example.com", PASSWORD, role="ig_officer"))
    TOTP.activate(officer, TOTP_SECRET)
    page = browser_page
    sign_in(page, live_server.url + "/ig/corrections/", officer)
    expect(page.get_by_role("heading", level=1)).to_have_text("Corrections across the network")
    expect(page.locator("#network-figures")).to_contain_text("Riverside Surgery")
    expect(page.locator("main")).not_to_contain_text("Hypertens")
    assert axe_violations() == []
    screenshot("workspace-ig-network")


def sign_in_from_the_start(page, base: str, user) -> None:
    """Sign in from the portal's front page, as staff do at the start of a day."""
    page.goto(base + "/")
    page.get_by_role("link", name="Sign in").first.click()
    password_and_code(page, user)
    page.wait_for_url(base + "/")


def test_staff_land_on_what_waits_for_them_and_find_their_way_by_the_header(
    live_server, browser_page, flagged, gp, axe_violations, screenshot
):
    dr_gp = verified(ClinicianFactory(email="dr.gp@riverside.example", organisation=gp))
    page = browser_page
    sign_in_from_the_start(page, live_server.url, dr_gp)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your work")
    expect(page.locator("#work-open")).to_have_text("1")
    expect(page.get_by_role("navigation", name="Clinician workspace")).to_be_visible()
    assert axe_violations() == []
    screenshot("staff-home-clinician")

    page.get_by_role("navigation", name="Clinician workspace").get_by_role(
        "link", name="Find a patient"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Find a patient")
    page.get_by_role("link", name="Correction requests", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Correction requests")
    expect(page.locator("#queue")).to_contain_text("Hypertensive disorder")
    assert axe_violations() == []
    page.get_by_role("button", name="Sign out").first.click()

    officer = verified(User.objects.create_user("ig@example.com", PASSWORD, role="ig_officer"))
    TOTP.activate(officer, TOTP_SECRET)
    sign_in_from_the_start(page, live_server.url, officer)
    expect(page.get_by_role("heading", level=1)).to_have_text("Information governance")
    expect(page.locator("#unreviewed")).to_have_text("None")
    expect(page.locator("main")).not_to_contain_text("Hypertens")
    assert axe_violations() == []
    screenshot("staff-home-ig")
    page.get_by_role("navigation", name="Information governance").get_by_role(
        "link", name="Corrections"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Corrections across the network")
