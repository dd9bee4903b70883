"""A correction request's steps and messages name who took them, for whoever reads them:
the patient reads "You" for their own and "<email>, acting for you" for those of someone
acting for them, the organisation's staff read "the patient" or that someone's label,
and the organisation's own steps carry its name (probe 12, M5)."""

import pytest
from django.urls import reverse

from accuracy import services
from accuracy.timeline import staff_timeline_rows, timeline_rows
from consent.policy import actor_for
from consent.proxies import Rights
from phr.models import RecordEntry
from tests.corrections.test_proxy_corrections import PROPOSED_PLAIN, REASON_PLAIN
from tests.sharing.test_proxies import acting, ben, grant, mia, mia_user

__all__ = ["ben", "mia", "mia_user"]  # fixtures

pytestmark = pytest.mark.django_db

PROXY = "ben@example.com, acting for you"


def _revision(found):
    found.refresh_from_db()
    return found.revision


@pytest.fixture
def proxy_actor(mia_user, ben):
    access = grant(mia_user, Rights(see=True, correct=True))
    return access, actor_for(ben, proxy_grant=access.pk)


def _asked_by(actor, mia_user, dr_gp, *, proxy_actor):
    """A request made by ``actor``: the practice asks for more, the proxy answers, the
    patient writes too."""
    found = services.submit_correction(
        actor=actor,
        entry_id=RecordEntry.objects.get(fhir_id="plain").pk,
        element="",
        proposed=PROPOSED_PLAIN,
        reason=REASON_PLAIN,
        contact_preference="portal",
    )
    doctor = actor_for(dr_gp)
    services.start_review(actor=doctor, request_id=found.pk, revision=_revision(found))
    services.ask_information(
        actor=doctor, request_id=found.pk, revision=_revision(found), question="When was the infection?"
    )
    services.patient_reply(
        actor=proxy_actor, request_id=found.pk, revision=_revision(found), body="It was in 1990"
    )
    services.patient_reply(
        actor=actor_for(mia_user), request_id=found.pk, revision=_revision(found), body="Yes, 1990"
    )
    found.refresh_from_db()
    return found


def _by(rows) -> list[tuple[str, str]]:
    return [(row.words, row.by) for row in rows]


def test_a_proxys_reply_on_the_patients_request_is_theirs_not_the_organisations(
    mia_user, dr_gp, gp, proxy_actor
):
    _, proxy = proxy_actor
    found = _asked_by(actor_for(mia_user), mia_user, dr_gp, proxy_actor=proxy)
    rows = _by(timeline_rows(found, list(found.timeline.all())))
    assert rows[0] == ("You sent your request", "You")
    assert ("Review started", gp.name) in rows
    assert ("Replied", PROXY) in rows
    assert not [row for row in rows if row[1] == gp.name and row[0] in ("Replied", "You replied", "Message")]
    assert rows[-1][1] == "You"
    staff = [row.by for row in staff_timeline_rows(found)]
    assert staff[0] == "the patient"
    assert any(by.startswith("ben@example.com, acting for the patient (") for by in staff)
    assert "dr.gp@example.com" in staff


def test_a_proxys_request_is_not_the_patients_own(mia_user, dr_gp, gp, proxy_actor):
    """The proxy made the request: the patient's own later message is still "You", and the
    proxy's steps are named as theirs."""
    _, proxy = proxy_actor
    found = _asked_by(proxy, mia_user, dr_gp, proxy_actor=proxy)
    rows = _by(timeline_rows(found, list(found.timeline.all())))
    assert rows[0] == ("Request sent", PROXY)
    assert ("Replied", PROXY) in rows
    assert rows[-1][1] == "You"
    assert all(by != "You" for words, by in rows if words in ("Request sent", "Replied"))
    staff = [row.by for row in staff_timeline_rows(found)]
    assert staff[0].startswith("ben@example.com, acting for the patient (")
    assert staff[-1] == "the patient"


def _timeline_text(html: str) -> str:
    return html.split('id="timeline"', 1)[1].split("</ol>", 1)[0]


def test_the_pages_name_the_proxy_for_whoever_reads_them(client, mia_user, ben, dr_gp, gp, proxy_actor):
    access, proxy = proxy_actor
    found = _asked_by(actor_for(mia_user), mia_user, dr_gp, proxy_actor=proxy)
    where = {"request_id": found.pk}

    client.force_login(mia_user)
    page = client.get(reverse("record:correction", kwargs=where)).content.decode()
    thread = page.split('id="thread"', 1)[1].split("</ul>", 1)[0]
    assert f"<strong>{PROXY}</strong>" in thread
    assert "<strong>You</strong>" in thread
    timeline = _timeline_text(page)
    assert PROXY in timeline
    assert f"{gp.name}</span>" in timeline  # the practice's own steps

    acting(client, ben, access.pk)
    page = client.get(reverse("record:correction", kwargs=where)).content.decode()
    thread = page.split('id="thread"', 1)[1].split("</ul>", 1)[0]
    assert "<strong>You, acting for Mia Jones</strong>" in thread
    assert "<strong>Mia Jones</strong>" in thread
    timeline = _timeline_text(page)
    assert "You, acting for Mia Jones" in timeline
    assert "acting for you" not in timeline
    assert ", You</span>" not in timeline
    # The steps' words do not speak to the proxy as if they were the patient.
    assert "You sent your request" not in timeline
    assert "You replied" not in timeline
    assert "Request sent" in timeline

    client.force_login(dr_gp)
    page = client.get(reverse("workspace:request", kwargs=where)).content.decode()
    messages = page.split('id="messages"', 1)[1].split("</ol>", 1)[0]
    assert "<strong>ben@example.com, acting for the patient (" in messages
    assert "<strong>The patient</strong>" in messages
    events = page.split('id="timeline-events"', 1)[1].split("</ol>", 1)[0]
    assert "by ben@example.com, acting for the patient (" in events


def test_the_json_timeline_names_each_step_for_someone_acting_for_the_patient(mia_user, dr_gp, proxy_actor):
    _, proxy = proxy_actor
    found = _asked_by(actor_for(mia_user), mia_user, dr_gp, proxy_actor=proxy)
    rows = _by(timeline_rows(found, list(found.timeline.all()), reader=proxy))
    assert rows[0] == ("Request sent", "The patient")
    assert ("Replied", "You, acting for the patient") in rows
    assert rows[-1][1] == "The patient"
    assert not [row for row in rows if row[1] == "You" or row[0].startswith("You ")]
