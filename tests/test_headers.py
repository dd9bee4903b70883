"""Every response says what a browser may load and run (a strict Content-Security-Policy
and a Permissions-Policy), and nothing with a person's data in it is kept in a cache
(Cache-Control: no-store), while the public, data-free files still may be."""

import re
from pathlib import Path

import pytest

from tests.test_hostile_input import net as net  # the hostile-input network, found by name
from tests.test_hostile_input import signed_in

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# A script element that runs code written in the page (JSON data blocks do not run).
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b[^>]*>", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle=", re.I)


def policy(response) -> dict[str, str]:
    """The Content-Security-Policy header as {directive: sources}."""
    header = response["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


def assert_strict(response) -> None:
    csp = policy(response)
    assert csp["default-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    # Nothing from elsewhere, fonts included (issue 11: nothing leaves the machine).
    assert csp["font-src"] == "'self'"
    for directive, sources in csp.items():
        assert not re.search(r"https?:|\*", sources), (directive, sources)
    permissions = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in permissions


def assert_no_inline_code(response) -> None:
    """The page runs as the policy allows: no inline <script> or <style>, no style
    attribute; its scripts and styles are files from this server."""
    page = response.content.decode()
    assert not INLINE_SCRIPT.findall(page)
    assert not INLINE_STYLE.findall(page)
    assert not STYLE_ATTRIBUTE.search(page)
    assert "/static/portal/portal.css" in page


# --- Content-Security-Policy and Permissions-Policy ----------------------------------------


def test_the_home_page_has_a_strict_policy_and_no_inline_code(client, db):
    response = client.get("/")
    assert_strict(response)
    assert_no_inline_code(response)


def test_the_portals_own_scripts_and_styles_are_served_as_files(client, db, settings):
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    for path, words in [
        ("/static/portal/portal.css", b"flex-wrap: wrap"),
        ("/static/portal/enhance.js", b"js-enabled"),
        ("/static/portal/init.js", b"initAll"),
        ("/static/portal/print-record.css", b"@media print"),
        ("/static/portal/print-letter.css", b"@media print"),
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert words in b"".join(response.streaming_content), path


@pytest.mark.parametrize("url", ["/record/", "/record/problems/", "/record/print/"])
def test_a_patients_record_pages_have_a_strict_policy(client, net, url):
    signed_in(client, net, "ada")
    response = client.get(url)
    assert response.status_code == 200
    assert_strict(response)
    assert_no_inline_code(response)


def test_the_clinicians_item_page_has_a_strict_policy(client, net):
    signed_in(client, net, "doctor")
    response = client.get(f"/clinician/patients/{net['ada'].pk}/entries/{net['item'].pk}/")
    assert response.status_code == 200
    assert_strict(response)
    assert_no_inline_code(response)


def test_the_correction_figures_chart_has_no_style_attribute(client, net):
    signed_in(client, net, "doctor")
    response = client.get("/clinician/corrections/figures/")
    assert response.status_code == 200
    assert_strict(response)
    assert_no_inline_code(response)


def test_the_fhir_and_json_apis_and_sign_in_have_the_same_policy(client, net):
    assert_strict(client.get("/accounts/login/"))
    assert_strict(client.get("/fhir/metadata"))
    signed_in(client, net, "ada")
    assert_strict(client.get("/fhir/Condition"))
    assert_strict(client.get("/api/v1/notifications/"))


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES.rglob("*.html")), ids=lambda path: str(path.relative_to(TEMPLATES))
)
def test_no_template_has_inline_code_or_a_style_attribute(template):
    text = template.read_text()
    assert not INLINE_SCRIPT.findall(text)
    assert not INLINE_STYLE.findall(text)
    assert not STYLE_ATTRIBUTE.search(text)


def test_the_api_docs_page_loads_its_script_from_this_server_and_only_its_styles_are_inline(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert not INLINE_SCRIPT.findall(page), "the Swagger UI set-up must be a script file"
    csp = policy(response)
    assert csp["script-src"].startswith("'self'")
    assert "'unsafe-inline'" not in csp["script-src"]
    assert csp["style-src"] == "'self' 'unsafe-inline'"
    script = re.search(r'<script src="([^"]*script[^"]*)"', page).group(1).replace("&amp;", "&")
    code = client.get(script)
    assert code.status_code == 200
    assert code["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in code.content.decode()


# --- Cache-Control --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/record/",
        "/record/problems/",
        "/record/download.json",
        "/api/v1/notifications/",
        "/api/v1/access-log/",
        "/fhir/Condition",
        "/fhir/Condition/c1",
        "/fhir/Condition/no-such-item",
        "/fhir/Patient/{ada}/$everything",
        "/fhir/metadata",  # signed in: every response to a signed-in user
    ],
)
def test_nothing_a_signed_in_user_is_sent_is_stored(client, net, url):
    signed_in(client, net, "ada")
    response = client.get(url.format(ada=net["ada"].pk))
    assert response.status_code in (200, 404)
    assert "no-store" in response["Cache-Control"]


def test_refusals_and_sign_in_pages_are_not_stored(client, db):
    for url in ("/record/", "/accounts/login/", "/fhir/Condition", "/api/v1/notifications/", "/?x=%00"):
        assert "no-store" in client.get(url)["Cache-Control"], url


def test_public_files_without_anyones_data_may_be_kept(client, db, settings):
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    stylesheet = client.get("/static/nhsuk/nhsuk-frontend.min.css")
    assert stylesheet.status_code == 200
    assert "no-store" not in stylesheet.get("Cache-Control", "")
    for url in ("/fhir/metadata", "/.well-known/smart-configuration", "/api/schema/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" not in response.get("Cache-Control", ""), url
