"""A patient makes a share link in Chromium; a clinician opens it in a second browser,
enters the passcode and reads the record with who shared it and until when; the patient
revokes it and the clinician's reload says the link does not work. axe-core finds no
violation on any page."""

import re

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

from tests.clinician.network import build_record
from tests.e2e.conftest import AXE_SCRIPT, SCREENSHOTS, _is_local
from tests.personas import PASSWORD, PatientUserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ada(gp, hospital):
    patient = build_record(gp, hospital)
    patient.given_names, patient.family_name = "Ada", "Okafor"
    patient.save()
    user = PatientUserFactory(email="ada@example.com", patient=patient)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def violations(page) -> list[str]:
    # Not a script tag: the page's Content-Security-Policy refuses inline scripts.
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => await axe.run(document, {runOnly: {type: "tag", values: [
            "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
    ]


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"share-{name}.png"), full_page=True)


def test_a_patient_shares_their_record_and_revokes_the_link(live_server, browser_page, chromium_browser, ada):
    page = browser_page
    page.goto(live_server.url + "/share/")
    page.wait_for_url("**/accounts/login/**")
    page.get_by_label("Email").fill(ada.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/share/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Share my record")
    assert violations(page) == []
    shot(page, "links-empty")

    page.get_by_role("button", name="Make a new link").click()
    page.wait_for_url("**/share/new/")
    page.get_by_role("button", name="Make the link").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("Enter a name for this link")
    assert violations(page) == []
    shot(page, "new-error")

    page.get_by_label("Name this link").fill("For my holiday")
    page.get_by_label("My whole record").check()
    page.get_by_label("How many days the link works for").fill("14")
    page.get_by_role("button", name="Make the link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your share link is ready")
    expect(page.locator("#share-qr svg")).to_be_visible()
    link = page.locator("#share-url a").inner_text()
    assert re.fullmatch(re.escape(live_server.url) + r"/share/v/[A-Za-z0-9_-]{43}/", link)
    passcode = page.locator("#share-passcode").inner_text().replace("Passcode:", "").strip()
    assert re.fullmatch(r"\d{8}", passcode)
    assert violations(page) == []
    shot(page, "created")

    # The clinician: another browser, nobody signed in.
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    viewer = context.new_page()
    viewer.route(
        "**/*", lambda route: route.abort() if not _is_local(route.request.url) else route.continue_()
    )
    try:
        viewer.goto(link)
        expect(viewer.get_by_role("heading", level=1)).to_have_text("Enter the passcode")
        assert violations(viewer) == []
        shot(viewer, "passcode")

        viewer.get_by_label("Passcode").fill("not-the-passcode")
        viewer.get_by_role("button", name="Continue").click()
        expect(viewer.locator(".nhsuk-error-summary")).to_contain_text("The passcode is not right")
        assert violations(viewer) == []
        shot(viewer, "passcode-wrong")

        viewer.get_by_label("Passcode").fill(passcode)
        viewer.get_by_role("button", name="Continue").click()
        expect(viewer.get_by_role("heading", level=1)).to_have_text("Health record of Ada Okafor")
        expect(viewer.locator("#shared-by")).to_contain_text(
            re.compile(r"Shared by Ada Okafor \(born 4 March 1971\) until \d+ \w+ \d{4}")
        )
        expect(viewer.locator("#kind-problems")).to_contain_text("Hypertensive disorder")
        expect(viewer.locator("#kind-test-results")).to_contain_text("4.1 mmol/L")
        assert violations(viewer) == []
        shot(viewer, "record")

        page.goto(live_server.url + "/share/")
        row = page.locator("tr.share-link", has_text="For my holiday")
        expect(row).to_contain_text("Active")
        expect(row).to_contain_text("1")  # viewed once
        row.get_by_role("button", name=re.compile("^Revoke now")).click()
        expect(page.locator(".nhsuk-notification-banner")).to_contain_text("no longer works")
        expect(row).to_contain_text("Revoked")
        assert violations(page) == []
        shot(page, "links-revoked")

        viewer.reload()
        expect(viewer.get_by_role("heading", level=1)).to_have_text("This link does not work")
        assert violations(viewer) == []
        shot(viewer, "not-working")
    finally:
        context.close()

    page.goto(live_server.url + "/sharing/access-log/")
    expect(page.locator("#looks")).to_contain_text("Shared link: For my holiday")
    assert violations(page) == []
    shot(page, "access-log")
