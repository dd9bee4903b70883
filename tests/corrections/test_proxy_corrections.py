"""Someone acting for a patient and their correction requests: a proxy (and their app)
sees a request only while they may see the item it is about, on every channel, and acts
on one only with the "correct" right; anything else is the same 404 as a missing one."""

import pytest
from django.urls import reverse

from accuracy import services
from accuracy.models import CorrectionRequest
from consent.policy import actor_for
from consent.proxies import Rights
from phr.models import RecordEntry
from tests.api.test_proxy_apps import app, connect, health_app
from tests.sharing.test_proxies import acting, ben, grant, mia, mia_user

__all__ = ["app", "ben", "health_app", "mia", "mia_user"]  # fixtures

pytestmark = pytest.mark.django_db

PROPOSED_SEX = "That diagnosis is wrong, the test was negative"
REASON_SEX = "The clinic said the test came back negative"
PROPOSED_PLAIN = "I have never had asthma in my life"
REASON_PLAIN = "It was a chest infection as a child"


def ask(mia_user, fhir_id: str, proposed: str, reason: str) -> CorrectionRequest:
    return services.submit_correction(
        actor=actor_for(mia_user),
        entry_id=RecordEntry.objects.get(fhir_id=fhir_id).pk,
        element="",
        proposed=proposed,
        reason=reason,
        contact_preference="portal",
    )


@pytest.fixture
def requests(mia_user) -> dict[str, CorrectionRequest]:
    """Mia's two requests: one about her asthma, one about a sexual-health item."""
    return {
        "plain": ask(mia_user, "plain", PROPOSED_PLAIN, REASON_PLAIN),
        "sex": ask(mia_user, "sex", PROPOSED_SEX, REASON_SEX),
    }


def refused(mia_user, found: CorrectionRequest, dr_gp) -> CorrectionRequest:
    """The practice reviews and refuses the request (so that a disagreement is allowed)."""
    doctor = actor_for(dr_gp)
    found = services.start_review(actor=doctor, request_id=found.pk, revision=found.revision)
    return services.deny(
        actor=doctor,
        request_id=found.pk,
        revision=found.revision,
        code="accurate",
        text="The test was positive",
    )


def page(client, name: str, found: CorrectionRequest):
    return client.get(reverse(f"record:{name}", kwargs={"request_id": found.pk}))


def step(client, name: str, found: CorrectionRequest, **data):
    found.refresh_from_db()
    return client.post(
        reverse(f"record:{name}", kwargs={"request_id": found.pk}), {"revision": found.revision, **data}
    )


# --- What a proxy sees ---------------------------------------------------------------------


def test_a_proxy_sees_only_requests_about_items_they_may_see(client, mia_user, ben, requests):
    acting(client, ben, grant(mia_user, Rights(see=True, correct=True)).pk)
    listed = client.get(reverse("record:corrections")).content.decode()
    assert requests["plain"].reference in listed
    assert requests["sex"].reference not in listed
    assert "An item no longer shown to you" not in listed
    shown = page(client, "correction", requests["plain"])
    assert shown.status_code == 200
    assert PROPOSED_PLAIN in shown.content.decode()
    hidden = page(client, "correction", requests["sex"])
    assert hidden.status_code == 404
    text = hidden.content.decode()
    assert PROPOSED_SEX not in text
    assert REASON_SEX not in text


def test_a_proxy_cannot_act_on_a_request_about_an_item_they_may_not_see(
    client, mia_user, ben, requests, dr_gp
):
    acting(client, ben, grant(mia_user, Rights(see=True, correct=True)).pk)
    hidden = requests["sex"]
    assert step(client, "correction_reply", hidden, body="Please look again").status_code == 404
    assert page(client, "correction_withdraw", hidden).status_code == 404
    assert step(client, "correction_withdraw", hidden).status_code == 404
    hidden.refresh_from_db()
    assert hidden.is_open
    assert not hidden.messages.exists()
    refused(mia_user, hidden, dr_gp)
    assert step(client, "correction_disagree", hidden, text="I still disagree with it").status_code == 404
    assert not hidden.statements.exists()
    # The request they may see: they act on it as the patient would.
    assert step(client, "correction_reply", requests["plain"], body="Please look again").status_code == 302
    assert requests["plain"].messages.count() == 1


def test_the_json_api_leaves_out_what_the_proxy_may_not_see(client, mia_user, ben, requests):
    acting(client, ben, grant(mia_user, Rights(see=True, correct=True)).pk)
    listed = client.get("/api/v1/corrections/")
    assert listed.status_code == 200
    ids = {row["id"] for row in listed.json()["results"]}
    assert ids == {str(requests["plain"].pk)}
    assert PROPOSED_SEX not in listed.content.decode()
    assert client.get(f"/api/v1/corrections/{requests['sex'].pk}/").status_code == 404
    assert client.get(f"/api/v1/corrections/{requests['plain'].pk}/").status_code == 200


@pytest.mark.parametrize(
    "scope", ["launch/patient patient/*.read", "launch/patient patient/Task.read patient/Communication.read"]
)
def test_a_proxys_app_finds_and_reads_only_the_tasks_the_proxy_may_see(
    client, mia_user, ben, requests, app, scope
):
    made = grant(mia_user, Rights(see=True, correct=True))
    token = connect(client, ben, app, str(made.pk), scope=scope)["access_token"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    found = client.get("/fhir/Task", **auth)
    assert found.status_code == 200
    assert {e["resource"]["id"] for e in found.json().get("entry", [])} == {str(requests["plain"].pk)}
    assert PROPOSED_SEX not in found.content.decode()
    assert client.get(f"/fhir/Task/{requests['plain'].pk}", **auth).status_code == 200
    hidden = client.get(f"/fhir/Task/{requests['sex'].pk}", **auth)
    assert hidden.status_code == 404
    assert PROPOSED_SEX not in hidden.content.decode()
    thread = client.get("/fhir/Communication", {"part-of": f"Task/{requests['sex'].pk}"}, **auth)
    assert thread.status_code == 200
    assert thread.json().get("total", 0) == 0


def test_the_patient_still_sees_both_requests(client, mia_user, requests):
    client.force_login(mia_user)
    listed = client.get(reverse("record:corrections")).content.decode()
    assert requests["plain"].reference in listed
    assert requests["sex"].reference in listed
    detail = page(client, "correction", requests["sex"])
    assert detail.status_code == 200
    assert PROPOSED_SEX in detail.content.decode()
    assert "Withdraw this request" in detail.content.decode()
    assert {row["id"] for row in client.get("/api/v1/corrections/").json()["results"]} == {
        str(r.pk) for r in requests.values()
    }


# --- A proxy without the "correct" right ---------------------------------------------------


def test_a_see_only_proxy_is_offered_no_action_and_refused_with_a_404(client, mia_user, ben, requests, dr_gp):
    acting(client, ben, grant(mia_user, Rights(see=True)).pk)
    plain = requests["plain"]
    shown = page(client, "correction", plain)
    text = shown.content.decode()
    assert shown.status_code == 200
    assert PROPOSED_PLAIN in text
    for offered in ('id="reply-form"', "Send message", "Withdraw this request", 'id="disagreement-form"'):
        assert offered not in text, offered
    assert step(client, "correction_reply", plain, body="Please look again").status_code == 404
    # An invalid form too: refused before it is read.
    assert step(client, "correction_reply", plain, body="").status_code == 404
    assert page(client, "correction_withdraw", plain).status_code == 404
    assert step(client, "correction_withdraw", plain).status_code == 404
    plain.refresh_from_db()
    assert plain.is_open
    assert not plain.messages.exists()
    refused(mia_user, plain, dr_gp)
    text = page(client, "correction", plain).content.decode()
    assert 'id="disagreement-form"' not in text
    assert step(client, "correction_disagree", plain, text="I still disagree with it").status_code == 404
    assert not plain.statements.exists()


def test_the_domain_refusal_is_a_404_page_not_a_500(client, mia_user, ben, requests, monkeypatch):
    """Should the page's own check be passed (the grant changes in between), the domain's
    refusal still comes back as the portal's 404 page."""
    from web.patient import corrections as pages

    acting(client, ben, grant(mia_user, Rights(see=True)).pk)
    monkeypatch.setattr(pages, "_may_act", lambda access: True)
    assert step(client, "correction_reply", requests["plain"], body="Please look again").status_code == 404
    assert step(client, "correction_withdraw", requests["plain"]).status_code == 404
