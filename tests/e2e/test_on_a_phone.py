"""Issue 11 on a 375 px phone: the patient's six header links do not fill the first screen
(the NHS.UK header's own script folds those that do not fit into its "More" menu; without
the script they stay on one row that scrolls sideways), and the correction form asks for
a phone number or an address only when the patient chooses a call or a letter."""

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

from phr.models import RecordEntry
from tests.clinician.network import build_record
from tests.personas import PASSWORD, PatientUserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 375, "height": 812}


@pytest.fixture
def ada(gp, hospital):
    user = PatientUserFactory(email="ada@example.com", patient=build_record(gp, hospital))
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def sign_in(page, url, user):
    page.goto(url + "/record/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url + "/record/")


def test_on_a_phone_the_header_links_fold_into_more(
    live_server, browser_page, ada, axe_violations, screenshot
):
    page = browser_page
    page.set_viewport_size(PHONE)
    sign_in(page, live_server.url, ada)
    navigation = page.locator("nav.nhsuk-header__navigation")
    toggle = page.locator("#toggle-menu")
    expect(toggle).to_be_visible()
    assert navigation.bounding_box()["height"] < 80  # one row, not three
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(
        page.locator(".nhsuk-header__menu-list").get_by_role("link", name="Share my record")
    ).to_be_visible()
    assert axe_violations() == []
    screenshot("header-375-more-menu")


def test_without_the_script_the_links_keep_to_one_row(live_server, chromium_browser, ada):
    context = chromium_browser.new_context(viewport=PHONE, java_script_enabled=False, locale="en-GB")
    page = context.new_page()
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(live_server.url) else route.abort(),
    )
    sign_in(page, live_server.url, ada)
    assert page.locator("nav.nhsuk-header__navigation").bounding_box()["height"] < 80
    context.close()


def test_choosing_phone_asks_for_the_number_and_letter_for_the_address(
    live_server, browser_page, ada, axe_violations
):
    page = browser_page
    page.set_viewport_size(PHONE)
    sign_in(page, live_server.url, ada)
    entry = RecordEntry.objects.get(display="Hypertensive disorder")
    page.goto(f"{live_server.url}/record/items/{entry.pk}/correct/")
    phone, address = page.get_by_label("Phone number"), page.get_by_label("Address")
    expect(phone).to_be_hidden()
    expect(address).to_be_hidden()
    page.get_by_label("Phone", exact=True).check()
    expect(phone).to_be_visible()
    expect(address).to_be_hidden()
    assert axe_violations() == []
    page.get_by_label("Letter", exact=True).check()
    expect(phone).to_be_hidden()
    expect(address).to_be_visible()
    expect(page.get_by_label("Postcode")).to_be_visible()
    assert axe_violations() == []
