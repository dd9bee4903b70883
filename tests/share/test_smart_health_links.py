"""Share links as SMART Health Links, read as an independent app would: the shlink:/
payload, the manifest with the passcode, the file decrypted with jwcrypto and the key
from the link, the FHIR inside valid R4B; and a link carries only what the patient chose,
sensitive categories out by default, told to the patient and never to the viewer."""

# The fixtures (ada, her account and her signed-in client) are shared with
# test_share_links.py: imported, then named as test arguments.
# ruff: noqa: F811

import base64
import json
import time
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle
from jwcrypto import jwe, jwk

from audit.models import AuditEvent
from consent.policy import actor_for
from consent.share_links import revoke_share_link
from consent.share_models import ShareLink
from tests.share.test_share_links import DEFAULT_CATEGORIES, NEW, PASSCODE, ada, ada_user, as_ada  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def chlamydia(ada):
    """A sexual-health item on the record (kept to its holder by default)."""
    entry = ada.entries.get(resource_type="Condition", display__icontains="Fracture")
    ada.entries.filter(pk=entry.pk).update(category="sexual_health")
    return entry


def make_link(as_ada, **data) -> tuple[ShareLink, str]:
    form = {"label": "For my holiday", "scope": "full", "days": "7", "passcode": PASSCODE}
    form.update(data)
    response = as_ada.post(NEW, form)
    assert response.status_code == 200, response.content.decode()
    return ShareLink.objects.get(label=form["label"]), response.context["shlink"]


def payload_of(text: str) -> dict:
    shl = text.split("#", 1)[1] if "#" in text else text
    assert shl.startswith("shlink:/")
    encoded = shl.removeprefix("shlink:/")
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def fetch(client, payload: dict, passcode: str = PASSCODE):
    return client.post(
        urlsplit(payload["url"]).path,
        json.dumps({"recipient": "Dr Holiday, Clinica Mar", "passcode": passcode}),
        content_type="application/json",
    )


def decrypt(payload: dict, embedded: str) -> tuple[dict, dict]:
    token = jwe.JWE()
    token.deserialize(embedded, key=jwk.JWK(kty="oct", k=payload["key"]))
    return token.jose_header, json.loads(token.payload)


def full_urls(bundle: dict) -> set[str]:
    return {entry["fullUrl"] for entry in bundle.get("entry", [])}


def urls_of(entries) -> set[str]:
    return {f"urn:uuid:{entry.pk}" for entry in entries}


def test_an_independent_reader_opens_the_link_and_finds_only_what_was_chosen(client, as_ada, ada, chlamydia):
    link, text = make_link(as_ada, categories=DEFAULT_CATEGORIES)
    payload = payload_of(text)
    assert text.startswith("http://testserver/share/v/")  # a camera opens our viewer page
    assert payload["flag"] == "P"
    assert payload["v"] == 1
    assert payload["label"] == "For my holiday"
    assert len(payload["key"]) == 43
    assert len(base64.urlsafe_b64decode(payload["key"] + "=")) == 32
    assert payload["exp"] == int(link.expires_at.timestamp()) > time.time()
    assert payload["key"] not in link.sealed_key  # never stored in the clear

    response = fetch(type(client)(), payload)
    assert response.status_code == 200
    files = response.json()["files"]
    assert [f["contentType"] for f in files] == ["application/fhir+json"]
    header, bundle = decrypt(payload, files[0]["embedded"])
    assert header == {"alg": "dir", "enc": "A256GCM", "cty": "application/fhir+json"}
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    expected = ada.entries.exclude(resource_type="Patient").exclude(pk=chlamydia.pk)
    assert full_urls(bundle) == urls_of(expected)
    assert "Fracture" not in json.dumps(bundle)


def test_the_patient_may_choose_a_sensitive_category_in(client, as_ada, ada, chlamydia):
    _, text = make_link(as_ada, categories=[*DEFAULT_CATEGORIES, "sexual_health"])
    payload = payload_of(text)
    _, bundle = decrypt(payload, fetch(client, payload).json()["files"][0]["embedded"])
    assert f"urn:uuid:{chlamydia.pk}" in full_urls(bundle)


def test_single_items_carry_exactly_those_items_on_the_page_and_in_the_file(client, as_ada, ada):
    chosen = list(ada.entries.filter(resource_type__in=["AllergyIntolerance", "Observation"]))
    link, text = make_link(as_ada, scope="items", item_ids=[str(e.pk) for e in chosen])
    assert link.item_ids
    assert link.scope == "items"
    payload = payload_of(text)
    _, bundle = decrypt(payload, fetch(client, payload).json()["files"][0]["embedded"])
    Bundle.model_validate(bundle)
    assert full_urls(bundle) == urls_of(chosen)

    viewer = type(client)()
    path = urlsplit(text.split("#")[0]).path
    viewer.post(path, {"passcode": PASSCODE})
    body = viewer.get(path).content.decode()
    assert "Penicillin" in body
    assert "Serum potassium" in body
    assert "Hypertensive disorder" not in body


def test_the_viewer_page_shows_the_same_selection_and_never_what_was_left_out(client, as_ada, ada, chlamydia):
    _, text = make_link(as_ada, categories=DEFAULT_CATEGORIES)
    viewer = type(client)()
    path = urlsplit(text.split("#")[0]).path
    viewer.post(path, {"passcode": PASSCODE})
    page = viewer.get(path)
    body = page.content.decode()
    shown = {row.entry.pk for _, rows in page.context["groups"] for row, _ in rows}
    assert shown == set(
        ada.entries.exclude(resource_type="Patient").exclude(pk=chlamydia.pk).values_list("pk", flat=True)
    )
    assert "Fracture" not in body
    assert "Left out" not in body
    assert "sexual health" not in body.lower()


def test_the_patient_is_told_what_is_left_out_when_making_and_listing_links(as_ada, chlamydia):
    page = as_ada.get(NEW).content.decode()
    assert "1 sexual health item" in page
    assert "Sexual health (left out unless you tick it)" in page
    created = as_ada.post(
        NEW,
        {
            "label": "Holiday",
            "scope": "full",
            "days": "7",
            "passcode": PASSCODE,
            "categories": DEFAULT_CATEGORIES,
        },
    )
    assert "Left out: 1 sexual health item" in created.content.decode()
    assert "Left out: 1 sexual health item" in as_ada.get(reverse("share:links")).content.decode()
    everything = [*DEFAULT_CATEGORIES, "sexual_health"]
    as_ada.post(
        NEW, {"label": "All", "scope": "full", "days": "7", "passcode": PASSCODE, "categories": everything}
    )
    rows = dict(as_ada.get(reverse("share:links")).context["rows"])
    assert [words for link, words in rows.items() if link.label == "All"] == [[]]


def test_no_category_and_no_item_is_refused(as_ada):
    none = as_ada.post(NEW, {"label": "x", "scope": "full", "days": "7", "passcode": PASSCODE})
    assert none.status_code == 400
    items = as_ada.post(NEW, {"label": "x", "scope": "items", "days": "7", "passcode": PASSCODE})
    assert items.status_code == 400
    assert not ShareLink.objects.exists()


def test_a_wrong_passcode_is_401_with_attempts_left_and_locks_the_link_for_the_viewer_too(
    client, as_ada, ada
):
    link, text = make_link(as_ada, categories=DEFAULT_CATEGORIES)
    payload = payload_of(text)
    app = type(client)()
    for left in (4, 3, 2, 1, 0):
        response = fetch(app, payload, "wrong-one")
        assert response.status_code == 401
        assert response.json() == {"remainingAttempts": left}
    link.refresh_from_db()
    assert link.locked_at is not None
    assert fetch(app, payload).status_code == 404
    viewer_path = urlsplit(text.split("#")[0]).path
    assert app.post(viewer_path, {"passcode": PASSCODE}).status_code == 404
    refused = AuditEvent.objects.filter(
        action="record.read", outcome="deny", purpose="share-link", patient_id=ada.pk
    )
    assert refused.count() == 5
    assert {e.actor_label for e in refused} == {"Shared link: For my holiday"}
    # The patient sees them among the refused attempts on "Who has looked".
    log = as_ada.get(reverse("sharing:access_log")).content.decode()
    refused_section = log[log.index('id="refused"') : log.index('id="governance"')]
    assert refused_section.count("a wrong passcode for your share link “For my holiday”") == 5


def test_wrong_passcodes_on_the_page_and_the_manifest_share_one_count(client, as_ada):
    _link, text = make_link(as_ada, categories=DEFAULT_CATEGORIES)
    app = type(client)()
    app.post(urlsplit(text.split("#")[0]).path, {"passcode": "wrong-one"})
    assert fetch(app, payload_of(text), "wrong-one").json() == {"remainingAttempts": 3}


def test_a_revoked_or_unknown_link_is_404(client, as_ada, ada_user):
    link, text = make_link(as_ada, categories=DEFAULT_CATEGORIES)
    revoke_share_link(actor=actor_for(ada_user), link_id=link.pk)
    payload = payload_of(text)
    assert fetch(client, payload).status_code == 404
    unknown = {**payload, "url": reverse("share:manifest", kwargs={"token": "x" * 43})}
    assert fetch(client, unknown).status_code == 404


def test_a_manifest_without_a_recipient_is_refused(client, as_ada):
    _, text = make_link(as_ada, categories=DEFAULT_CATEGORIES)
    path = urlsplit(payload_of(text)["url"]).path
    response = client.post(path, json.dumps({"passcode": PASSCODE}), content_type="application/json")
    assert response.status_code == 400


def test_each_fetch_is_audited_as_the_link_and_counted_as_a_view(client, as_ada, ada):
    link, text = make_link(as_ada, categories=DEFAULT_CATEGORIES)
    fetch(client, payload_of(text))
    event = AuditEvent.objects.get(action="record.read", outcome="permit", purpose="share-link")
    assert event.actor_label == "Shared link: For my holiday"
    assert event.detail["format"] == "smart-health-link"
    assert event.detail["recipient"] == "Dr Holiday, Clinica Mar"
    assert len(event.entries) == ada.entries.exclude(resource_type="Patient").count()
    link.refresh_from_db()
    assert link.view_count == 1
