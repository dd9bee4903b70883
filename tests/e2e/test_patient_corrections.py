"""A patient signs in through the real sign-in page, reports a mistake in an item (making
an error on the way), follows the request, reads the refusal, adds a statement of
disagreement and finds it beside the item; axe-core finds no WCAG 2.2 AA violation on
any page. The organisation's side is driven through accuracy.services."""

import re

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

from accuracy import services
from accuracy.models import CorrectionRequest
from consent.policy import actor_for
from tests.clinician.network import build_record
from tests.personas import PASSWORD, ClinicianFactory, PatientUserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(gp, hospital):
    patient = build_record(gp, hospital)
    ada = PatientUserFactory(email="ada@example.com", patient=patient)
    EmailAddress.objects.create(user=ada, email=ada.email, verified=True, primary=True)
    return {"ada": ada, "doctor": ClinicianFactory(email="dr.gp@example.com", organisation=gp)}


def test_a_patient_reports_a_mistake_and_records_their_disagreement(
    live_server, browser_page, people, axe_violations, screenshot
):
    page = browser_page

    def accessible(name: str) -> None:
        assert axe_violations() == [], name
        screenshot(f"correction-patient-{name}")

    page.goto(live_server.url + "/record/problems/")
    page.wait_for_url("**/accounts/login/**")
    page.get_by_label("Email").fill(people["ada"].email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/record/problems/")

    page.get_by_role("link", name="High blood pressure", exact=True).click()
    page.wait_for_url("**/record/items/**")
    item_url = page.url
    expect(page.locator("#dispute-notice")).to_have_count(0)
    page.get_by_role("button", name="Report something wrong with this item").click()
    page.wait_for_url("**/correct/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Report something wrong with this item")
    expect(page.locator("#correction-form")).to_contain_text(
        "It says now: High blood pressure (recorded as “Hypertensive disorder”)"
    )
    accessible("form")

    # Sent with nothing filled in: the error summary names every question and links to it.
    page.get_by_role("button", name="Send request").click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("Choose which part of the item is wrong")
    expect(summary).to_contain_text("Say why it is wrong")
    assert page.title().startswith("Error: ")
    accessible("form-errors")
    summary.get_by_role("link", name="Choose which part of the item is wrong").click()
    expect(page.get_by_label("The whole item")).to_be_focused()  # the first of the radios

    page.get_by_label("The condition").check()
    page.get_by_label("What should it say?").fill("White coat hypertension only: my home readings are normal")
    page.get_by_label("Why is it wrong?").fill("A 24-hour monitor in June showed normal blood pressure")
    page.get_by_label("A message in this portal").check()
    page.get_by_role("button", name="Send request").click()
    page.wait_for_url(re.compile(r".*/record/corrections/[0-9a-f-]{36}/$"))
    expect(page.locator(".nhsuk-notification-banner--success")).to_contain_text(
        "Your request has been sent to Riverside Surgery"
    )
    expect(page.locator("#request-summary")).to_contain_text("Waiting for review")
    expect(page.locator("#timeline")).to_contain_text("You sent your request")
    accessible("request")
    request_url = page.url

    page.goto(item_url)
    expect(page.locator("#dispute-notice")).to_contain_text("Under dispute")
    accessible("item-disputed")
    page.goto(live_server.url + "/record/problems/")
    expect(page.locator("tr.record-item", has_text="High blood pressure")).to_contain_text("Under dispute")
    page.goto(live_server.url + "/record/")
    expect(page.locator("#record-notices")).to_contain_text("1 item is under dispute")
    page.get_by_role("link", name="My correction requests").click()
    page.wait_for_url("**/record/corrections/")
    expect(page.locator("#correction-requests")).to_contain_text("High blood pressure")
    expect(page.locator("#correction-requests")).to_contain_text("Decision due by")
    accessible("list")

    # The GP practice reviews the request and refuses it.
    correction = CorrectionRequest.objects.get()
    gp = actor_for(people["doctor"])
    correction = services.start_review(actor=gp, request_id=correction.pk, revision=correction.revision)
    services.deny(
        actor=gp,
        request_id=correction.pk,
        revision=correction.revision,
        code="clinical_opinion",
        text="Three clinic readings over 160/100 were recorded before the monitor.",
    )

    page.goto(request_url)
    letter = page.locator("#decision-letter")
    expect(letter).to_contain_text("We have decided not to change")
    expect(letter).to_contain_text("statement of disagreement")
    expect(letter).to_contain_text("Information Commissioner")
    expect(page.locator("#timeline")).to_contain_text("Not corrected")
    accessible("decision")

    page.get_by_role("button", name="Add my statement").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("Write your statement of disagreement")
    accessible("disagreement-error")
    page.get_by_label("Your statement of disagreement").fill(
        "My home and 24-hour readings are normal. I do not have high blood pressure."
    )
    page.get_by_role("button", name="Add my statement").click()
    expect(page.locator(".nhsuk-notification-banner--success")).to_contain_text(
        "Your statement of disagreement has been added"
    )
    expect(page.locator("#statements")).to_contain_text("My home and 24-hour readings are normal")
    accessible("disagreement")

    page.goto(item_url)
    expect(page.locator("#dispute-notice")).to_contain_text("Under dispute")
    statements = page.locator("#disagreements")
    expect(statements).to_contain_text("Your statement of disagreement")
    expect(statements).to_contain_text("My home and 24-hour readings are normal")
    accessible("item-disagreement")
