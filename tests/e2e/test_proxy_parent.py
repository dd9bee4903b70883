"""A parent acts for their child: the GP practice gives the parent access to the child's
record, the parent signs in with their own account, chooses the child and reads the
child's record under a banner that says whose it is; axe-core finds no WCAG 2.2 AA or
best-practice violation at 1280 px and 375 px."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import ProxyAccess
from phr.models import Patient
from tests.e2e.conftest import sign_in
from tests.feeds import NHS, send
from tests.personas import PASSWORD, ClinicianFactory, PatientUserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDE, NARROW = {"width": 1280, "height": 900}, {"width": 375, "height": 800}
CHILD_NHS = "9990000018"


@pytest.fixture
def lily(gp) -> Patient:
    """A five-year-old whose record the GP practice holds."""
    today = timezone.localdate()
    born = today.replace(year=today.year - 5) - timedelta(days=1)
    send(
        gp,
        {
            "resourceType": "Patient",
            "id": "lily",
            "identifier": [{"system": NHS, "value": CHILD_NHS}],
            "name": [{"family": "Jones", "given": ["Lily"]}],
            "birthDate": born.isoformat(),
        },
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": "Patient/lily"},
            "code": {"text": "Eczema"},
            "recordedDate": "2024-05-01",
        },
    )
    child = Patient.objects.get(nhs_number=CHILD_NHS)
    child.given_names, child.family_name, child.birth_date = "Lily", "Jones", born
    child.save()
    return child


def check_both_widths(page, axe_violations, screenshot, name: str) -> None:
    assert axe_violations() == []
    screenshot(name)
    page.set_viewport_size(NARROW)
    assert axe_violations() == []
    screenshot(f"{name}-375")
    page.set_viewport_size(WIDE)


def test_the_practice_gives_a_parent_access_and_the_parent_reads_the_childs_record(
    live_server, browser_page, gp, lily, axe_violations, screenshot
):
    doctor = ClinicianFactory(email="dr.gp@riverside.example", organisation=gp, verified_email=True)
    parent = PatientUserFactory(email="sam.jones@example.com", patient=None, verified_email=True)
    page = browser_page

    # The practice: from the child's record to the proxy access page, and the grant.
    record = f"{live_server.url}/clinician/patients/{lily.pk}/"
    sign_in(page, record, doctor)
    page.get_by_role("link", name="Proxy access").click()
    page.wait_for_url(f"{record}proxies/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Proxy access")
    expect(page.locator("#no-proxies")).to_be_visible()
    page.get_by_role("button", name="Give access").click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary.locator('a[href="#id_email"]')).to_have_count(1)
    check_both_widths(page, axe_violations, screenshot, "proxy-practice-errors")

    until = timezone.localdate() + timedelta(days=365)
    page.get_by_label("Their email address").fill(parent.email)
    page.get_by_label("Parent or guardian of a child under 11").check()
    page.get_by_label("See the record").check()
    page.get_by_label("Day").fill(str(until.day))
    page.get_by_label("Month").fill(str(until.month))
    page.get_by_label("Year").fill(str(until.year))
    page.get_by_label("Why do they need access?").fill("Mother of Lily; identity checked at the desk")
    page.get_by_role("button", name="Give access").click()
    page.wait_for_url(f"{record}proxies/")
    grant = ProxyAccess.objects.get()
    expect(page.locator(f"#grant-{grant.pk}")).to_contain_text(parent.email)
    expect(page.locator(f"#grant-{grant.pk}")).to_contain_text("Parent or guardian of a child under 11")
    check_both_widths(page, axe_violations, screenshot, "proxy-practice-granted")

    # The parent: signs in as themselves, is told whom they can act for, chooses Lily.
    page.context.clear_cookies()
    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Email").fill(parent.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(live_server.url + "/")
    expect(page.locator("#can-act-for")).to_contain_text("You can act for: Lily Jones.")
    page.get_by_role("button", name="Choose whose record to look at").click()
    page.wait_for_url("**/acting-for/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Whose record are you looking at?")
    check_both_widths(page, axe_violations, screenshot, "proxy-parent-chooser")
    page.get_by_label("Lily Jones").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/record/")

    banner = page.locator("#acting-for-banner")
    expect(banner).to_contain_text("You are acting for Lily Jones.")
    expect(banner.get_by_role("link", name="Switch")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Eczema")
    check_both_widths(page, axe_violations, screenshot, "proxy-parent-record")
