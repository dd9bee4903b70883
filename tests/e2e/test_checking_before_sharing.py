"""Check before you share, in a real browser: a patient pauses sharing with one
organisation from their record's summary, checks their items holder by holder ("This
looks right", and "Something is wrong" leading to a pre-filled correction request), sees
the pause in "who can see", and then chooses to share again. axe-core finds no WCAG 2.2
AA or best-practice violation at 1280 px or at 375 px."""

import re

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

from phr.models import Organisation, OrganisationKind, RecordEntry
from tests.clinician.network import build_record
from tests.personas import PASSWORD, PatientUserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def ada_user(gp, hospital, mental_health_trust):
    Organisation.objects.create(
        ods_code="RYA", name="Northbridge Ambulance Service", kind=OrganisationKind.AMBULANCE
    )
    ada = build_record(gp, hospital)
    user = PatientUserFactory(email="ada@example.com", patient=ada)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def test_a_patient_checks_their_record_before_sharing_it(
    live_server, browser_page, ada_user, axe_violations, screenshot
):
    page = browser_page
    cards = {e.fhir_id: f"#item-{e.pk}" for e in RecordEntry.objects.exclude(patient=None)}

    def answer(fhir_id: str, outcome: str) -> None:
        page.locator(cards[fhir_id]).get_by_role("button", name=outcome).click()

    def accessible(name: str) -> None:
        """No axe violation at desktop and phone widths; a screenshot of each."""
        for label, size in (("1280", DESKTOP), ("375", PHONE)):
            page.set_viewport_size(size)
            assert axe_violations() == [], f"{name} at {label}"
            screenshot(f"check-before-share-{name}-{label}")
        page.set_viewport_size(DESKTOP)

    page.goto(live_server.url + "/record/")
    page.wait_for_url("**/accounts/login/**")
    page.get_by_label("Email").fill(ada_user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/record/")

    page.locator("#check-before-sharing").get_by_role(
        "link", name="Check your record before you share it"
    ).click()
    page.wait_for_url("**/sharing/check/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your record before you share it")
    accessible("start")

    # Nothing chosen: the error summary says what to do.
    page.get_by_role("button", name="Pause sharing and start checking").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text(
        "Choose the organisations to pause sharing with"
    )
    assert page.title().startswith("Error: ")
    accessible("start-error")

    page.get_by_label("Northbridge Ambulance Service").check()
    page.get_by_role("button", name="Pause sharing and start checking").click()
    page.wait_for_url("**/sharing/check/items/")
    expect(page.locator(".nhsuk-notification-banner--success")).to_contain_text("Sharing is paused")
    expect(page.locator("#check-progress")).to_have_text("0 of 4 checked")
    expect(page.locator("#holder-heading")).to_have_text("Items held by City Teaching Hospitals")
    accessible("items")

    # The hospital's two items look right.
    for fhir_id in ("h1", "o1"):
        answer(fhir_id, "This looks right")
    expect(page.locator("#check-progress")).to_have_text("2 of 4 checked")

    # The GP's: one looks right, one is wrong, which starts a correction request.
    page.locator("#check-holders").get_by_role("link", name=re.compile("Riverside Surgery")).click()
    expect(page.locator("#holder-heading")).to_have_text("Items held by Riverside Surgery")
    answer("c1", "This looks right")
    expect(page.locator("#check-progress")).to_have_text("3 of 4 checked")
    answer("c2", "Something is wrong")
    page.wait_for_url(re.compile(r".*/record/items/[0-9a-f-]{36}/correct/\?element=whole-item$"))
    expect(page.get_by_label("The whole item")).to_be_checked()
    page.get_by_label("What should it say?").fill("This should not be on my record")
    page.get_by_label("Why is it wrong?").fill("I have never been told I have depression")
    page.get_by_label("A message in this portal").check()
    page.get_by_role("button", name="Send request").click()
    page.wait_for_url(re.compile(r".*/record/corrections/[0-9a-f-]{36}/$"))
    expect(page.locator(".nhsuk-notification-banner--success")).to_contain_text(
        "Your request has been sent to Riverside Surgery"
    )

    page.goto(live_server.url + "/sharing/check/items/")
    expect(page.locator("#check-progress")).to_have_text("4 of 4 checked")
    page.locator("#check-holders").get_by_role("link", name=re.compile("Riverside Surgery")).click()
    expect(page.locator(cards["c2"])).to_contain_text("Checked: something is wrong")
    accessible("items-checked")

    # While paused, "who can see" says so.
    page.goto(live_server.url + "/sharing/")
    expect(page.locator("#who-can-see")).to_contain_text(
        "Northbridge Ambulance Service cannot see your record."
    )
    expect(page.locator("#who-can-see")).to_contain_text("(paused while you check your record)")

    page.goto(live_server.url + "/sharing/check/items/")
    page.get_by_role("link", name="Finish checking and choose where to share").click()
    page.wait_for_url("**/sharing/check/finish/")
    expect(page.locator("#finish-progress")).to_have_text("You have checked 4 of 4 items.")
    accessible("finish")
    page.get_by_role("group", name="Northbridge Ambulance Service").get_by_label(
        "Share my record with them", exact=True
    ).check()
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_url(live_server.url + "/sharing/")
    expect(page.locator(".nhsuk-notification-banner--success")).to_contain_text(
        "Your sharing choices have been saved"
    )
    who = page.locator("#who-can-see")
    expect(who).not_to_contain_text("Northbridge Ambulance Service cannot see your record.")
    expect(who).not_to_contain_text("paused while you check")
