"""A patient signs in through the real sign-in page and reads their record: the summary,
each kind, one item with its history, the printable page and the download, on a desktop
and on a phone-sized screen; axe-core finds no WCAG 2.2 AA violation on any page."""

import json
import re

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

from accuracy.record_display import KINDS
from phr.ingest import ingest_documents
from tests.clinician.network import build_record
from tests.personas import PASSWORD, PatientUserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ada(gp, hospital):
    patient = build_record(gp, hospital)
    # The GP sends the medicine again with a changed dose: version 2, with a history.
    for dose in ("50mg once daily", "5mg once daily"):
        ingest_documents(
            [
                (
                    "gp.json",
                    {
                        "resourceType": "MedicationStatement",
                        "id": "m1",
                        "status": "active",
                        "subject": {
                            "identifier": {
                                "system": "https://fhir.nhs.uk/Id/nhs-number",
                                "value": patient.nhs_number,
                            }
                        },
                        "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
                        "effectiveDateTime": "2024-03-01",
                        "dosage": [{"text": dose}],
                    },
                )
            ],
            organisation=gp,
        )
    user = PatientUserFactory(email="ada@example.com", patient=patient)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def test_a_patient_reads_their_record(live_server, browser_page, ada, axe_violations, screenshot):
    page = browser_page
    page.goto(live_server.url + "/record/")
    page.wait_for_url("**/accounts/login/**")
    page.get_by_label("Email").fill(ada.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(live_server.url + "/record/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your record")
    expect(page.locator("#record-owners")).to_contain_text("Riverside Surgery")
    expect(page.locator("#record-owners")).to_contain_text("City Teaching Hospitals")
    expect(page.locator("#record-notices")).to_contain_text("entered in error")
    download = page.get_by_role("link", name=re.compile("Download your record"))
    expect(download).to_have_attribute("href", "/record/download.json")
    assert axe_violations() == []
    screenshot("record-summary")

    for kind in KINDS:
        page.goto(f"{live_server.url}/record/{kind.slug}/")
        expect(page.get_by_role("heading", level=1)).to_have_text(kind.title)
        assert axe_violations() == [], kind.slug
        screenshot(f"record-kind-{kind.slug}")

    page.goto(live_server.url + "/record/problems/")
    in_error = page.locator("tr.record-item--in-error")
    expect(in_error).to_have_count(1)
    expect(in_error).to_contain_text("Entered in error")
    expect(page.locator("tr.record-item").last).to_contain_text("Asthma")

    # Search without any script: the details element opens natively, the form is a GET.
    page.get_by_text("Search and filter").click()
    page.get_by_label("Search for words in an item").fill("wrist")
    page.get_by_role("button", name="Show items").click()
    page.wait_for_url("**/record/problems/?q=wrist**")
    expect(page.locator("tr.record-item")).to_have_count(1)
    expect(page.locator("#record-items")).to_contain_text("Fracture of wrist")
    assert axe_violations() == []
    screenshot("record-kind-search")

    page.get_by_label("Recorded on or after").fill("2030-01-01")
    page.get_by_label("Recorded on or before").fill("2020-01-01")
    page.get_by_role("button", name="Show items").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("The end date must be the same as or after")
    assert axe_violations() == []
    screenshot("record-kind-filter-error")

    page.goto(live_server.url + "/record/medications/")
    page.get_by_role("link", name="Amlodipine 5mg tablets", exact=True).click()
    page.wait_for_url("**/record/items/**")
    expect(page.locator("#item-details")).to_contain_text("5mg once daily")
    changes = page.locator(".record-changes")
    expect(changes).to_contain_text("The dose changed from 50mg once daily to 5mg once daily")
    expect(changes).not_to_contain_text("dosage[0]")
    assert axe_violations() == []
    screenshot("record-item-history")

    # Keyboard: the first Tab reaches the skip link to the main content.
    page.goto(live_server.url + "/record/")
    page.keyboard.press("Tab")
    expect(page.locator(".nhsuk-skip-link")).to_be_focused()

    page.goto(live_server.url + "/record/print/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your shared care record")
    assert axe_violations() == []
    screenshot("record-print")
    page.emulate_media(media="print")
    expect(page.locator("header.nhsuk-header")).to_be_hidden()
    expect(page.locator("footer.nhsuk-footer")).to_be_hidden()
    expect(page.locator("#print-problems")).to_be_visible()
    screenshot("record-print-media")
    page.emulate_media(media="screen")

    page.goto(live_server.url + "/record/")
    with page.expect_download() as downloaded:
        page.get_by_role("link", name=re.compile("Download your record")).click()
    file = downloaded.value
    assert re.fullmatch(r"my-record-\d{4}-\d{2}-\d{2}\.json", file.suggested_filename)
    with open(file.path(), encoding="utf-8") as handle:
        bundle = json.load(handle)
    assert bundle["resourceType"] == "Bundle"
    assert any(e["resource"].get("resourceType") == "MedicationStatement" for e in bundle["entry"])


def test_the_record_works_on_a_phone_sized_screen(live_server, browser_page, ada, axe_violations, screenshot):
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(live_server.url + "/accounts/login/?next=/record/problems/")
    page.get_by_label("Email").fill(ada.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/record/problems/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Health problems")
    # Responsive table: each cell carries its heading, and nothing scrolls sideways.
    expect(page.locator("#record-items .nhsuk-table__heading").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert axe_violations() == []
    screenshot("record-mobile-problems")

    page.goto(live_server.url + "/record/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert axe_violations() == []
    screenshot("record-mobile-summary")
