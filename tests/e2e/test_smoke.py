"""A visitor signs in through the real pages in a real browser, and the pages they pass
through meet WCAG 2.2 AA as far as axe-core can tell."""

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-and-unguessable-phrase"


@pytest.fixture
def alice(django_user_model):
    user = django_user_model.objects.create_user(email="alice@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def test_a_patient_signs_in_from_the_home_page(live_server, browser_page, alice, axe_violations, screenshot):
    page = browser_page
    page.goto(live_server.url + "/")
    assert page.get_by_role("heading", level=1).inner_text() == "Your shared care record"
    assert axe_violations() == []
    screenshot("home-anonymous")

    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/accounts/login/")
    assert axe_violations() == []
    screenshot("login")

    page.get_by_label("Email").fill(alice.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("There is a problem")
    assert axe_violations() == []
    screenshot("login-error")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")
    expect(page.locator("header")).to_contain_text(alice.email)
    expect(page.get_by_role("button", name="Sign out").first).to_be_visible()
    assert axe_violations() == []
    screenshot("home-signed-in")


def test_the_stylesheet_is_applied_in_the_browser(live_server, browser_page):
    browser_page.goto(live_server.url + "/accounts/login/")
    header_colour = browser_page.locator("header.nhsuk-header").evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert header_colour == "rgb(0, 94, 184)"  # NHS blue: the design system's CSS loaded


def test_the_create_account_page_and_its_errors_are_accessible(
    live_server, browser_page, axe_violations, screenshot
):
    page = browser_page
    page.goto(live_server.url + "/accounts/signup/")
    assert axe_violations() == []

    page.get_by_label("Email").fill("not-an-email")
    page.get_by_role("button", name="Create account").click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("There is a problem")
    # Each summary entry links to its field, as the design system asks.
    expect(summary.locator('a[href="#id_email"]')).to_have_count(1)
    assert axe_violations() == []
    screenshot("signup-errors")
