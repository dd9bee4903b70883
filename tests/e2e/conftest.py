"""A real browser for the end-to-end tests: Debian's Chromium driven by Playwright.

Playwright's own browser downloads are never used; without /usr/bin/chromium the tests
are skipped with the reason."""

import os
from pathlib import Path

import pytest

# Sync Playwright runs an event loop in this thread, which makes Django refuse ORM calls
# from the test body as "async-unsafe"; the test is still plain synchronous code.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BASE_DIR = Path(__file__).resolve().parents[2]
SCREENSHOTS = BASE_DIR / "test-artifacts" / "screenshots"
AXE_SCRIPT = BASE_DIR / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def chromium_browser():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: `apt-get install chromium` (make test does it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium_browser):
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    # No test may reach the internet (the stylesheet names web fonts on assets.nhs.uk).
    page.route("**/*", lambda route: route.abort() if not _is_local(route.request.url) else route.continue_())
    yield page
    context.close()


def _is_local(url: str) -> bool:
    return url.startswith(("http://localhost", "http://127.0.0.1", "data:", "about:"))


@pytest.fixture
def screenshot(browser_page):
    """Save a full-page screenshot under test-artifacts/screenshots/ by name."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        browser_page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def axe_violations(browser_page):
    """Run axe-core on the current page against WCAG 2.x A/AA and best practice, and
    return the violations as readable lines."""
    if not AXE_SCRIPT.exists():
        pytest.fail(f"{AXE_SCRIPT} is missing: run `make deps` (npm ci) first")

    def run() -> list[str]:
        # The page's Content-Security-Policy forbids inline scripts (a script tag with
        # axe's text would be refused, as it should be): the test tool is evaluated by
        # the browser's debugging protocol instead, which the policy does not govern.
        if not browser_page.evaluate("() => typeof axe !== 'undefined'"):
            browser_page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))
        result = browser_page.evaluate(
            """async () => await axe.run(document, {runOnly: {type: "tag", values: [
                "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})"""
        )
        return [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in result["violations"]
        ]

    return run


def password_and_code(page, user, secret: str | None = None) -> None:
    """On the sign-in page: the password, then the authenticator code (the personas'
    shared secret unless the test enrolled its own)."""
    from demo.totp import current_code
    from tests.personas import PASSWORD, TOTP_SECRET

    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/accounts/2fa/authenticate/**")
    page.locator('input[name="code"]').fill(current_code(secret or TOTP_SECRET))
    page.locator('form button[type="submit"]').first.click()


def sign_in(page, url: str, user, secret: str | None = None) -> None:
    """A member of staff opens a page, is asked to sign in, and lands on it."""
    page.goto(url)
    page.wait_for_url("**/accounts/login/**")
    password_and_code(page, user, secret)
    page.wait_for_url(url)


@pytest.fixture
def dr_moss(mental_health_trust):
    """A clinician of the mental health trust, with a confirmed email address."""
    from allauth.account.models import EmailAddress

    from tests.personas import ClinicianFactory

    user = ClinicianFactory(email="dr.moss@mind.example", organisation=mental_health_trust)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user
