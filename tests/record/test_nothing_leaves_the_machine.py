"""Issue 11: nothing leaves the machine by default. The pages name no other host for what
they load, the Content-Security-Policy allows none, and the design system's remote
Frutiger is never used, so a page without the internet paints at once."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.personas import PatientUserFactory

pytestmark = pytest.mark.django_db

PORTAL_CSS = Path(settings.BASE_DIR) / "static" / "portal" / "portal.css"
# What a page loads: stylesheets, scripts, images, icons, frames.
LOADED = re.compile(r"<(?:link|script|img|iframe|source)\b[^>]*\b(?:href|src)=\"([^\"]+)\"", re.IGNORECASE)


def test_the_csp_allows_no_other_host_for_anything(client):
    policy = client.get(reverse("home"))["Content-Security-Policy"]
    assert "font-src 'self';" in f"{policy};"
    assert not re.search(r"https?://|\*", policy), policy


@pytest.mark.parametrize("signed_in", [False, True])
def test_pages_load_nothing_from_another_host(client, signed_in):
    if signed_in:
        client.force_login(PatientUserFactory(email="ada@example.com"))
    for url in (reverse("home"), reverse("record:summary"), reverse("account_login")):
        page = client.get(url, follow=True).content.decode()
        loaded = LOADED.findall(page)
        assert loaded, url
        outside = [src for src in loaded if re.match(r"(https?:)?//", src)]
        assert outside == [], (url, outside)


def test_the_portal_stylesheet_names_no_remote_font_and_shows_text_at_once():
    css = PORTAL_CSS.read_text()
    assert "url(" not in css
    assert "assets.nhs.uk" not in css.replace("from assets.nhs.uk", "")
    faces = re.findall(r"@font-face\s*{([^}]*)}", css)
    assert faces
    for face in faces:
        assert "font-display: swap" in face
        assert "src: local(" in face
    # The page's own family replaces the design system's, whose faces are remote.
    html_rule = re.search(r"\nhtml\s*{([^}]*)}", css)
    assert html_rule is not None
    assert '"Portal Frutiger", arial, sans-serif' in html_rule.group(1)
