"""A proxy sees the grants they hold on the chooser and stops acting for someone there,
with or without a record of their own; the patient's page ends only grants on the
patient's own record; a correction message a proxy wrote names them, not "You"."""

import re

import pytest
from django.urls import reverse

from accounts.access import PROXY_SESSION_KEY
from accounts.models import ProxyAccess
from accuracy import services
from audit.models import AuditEvent
from consent.policy import actor_for
from consent.proxies import Rights
from phr.models import RecordEntry
from tests.personas import PatientUserFactory
from tests.sharing.test_proxies import acting, ben, grant, mia, mia_user, until

__all__ = ["ben", "mia", "mia_user"]  # fixtures

pytestmark = pytest.mark.django_db


def stop(client, made: ProxyAccess):
    return client.post(reverse("portal:acting_for_end", kwargs={"grant_id": made.pk}))


# --- The chooser lists what the proxy holds ------------------------------------------------


def test_the_chooser_lists_each_grant_held_with_a_way_to_stop(client, mia_user, ben):
    made = grant(mia_user, Rights(see=True, correct=True))
    client.force_login(ben)
    page = client.get(reverse("portal:acting_for")).content.decode()
    assert "You act for Mia Jones as someone they chose." in page
    assert "See the record" in page
    assert "Ask for corrections to the record" in page
    assert "Manage sharing choices" not in page
    assert "Stop acting for Mia Jones" in page
    form = re.search(
        r'<form method="post" action="([^"]+)"[^>]*>\s*<input[^>]*csrfmiddlewaretoken',
        page[page.index("held-") :],
    )
    assert form is not None
    assert form.group(1) == reverse("portal:acting_for_end", kwargs={"grant_id": made.pk})


def test_a_proxy_without_a_record_of_their_own_stops_acting_for_someone(client, mia_user, ben):
    made = grant(mia_user)
    client.force_login(ben)  # no linked record
    response = stop(client, made)
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:acting_for")
    made.refresh_from_db()
    assert made.ended_at is not None
    assert made.ended_by == ben
    assert made.end_reason == "Ended by the proxy"
    page = client.get(reverse("portal:acting_for")).content.decode()
    assert "You no longer act for Mia Jones." in page
    assert "Stop acting for Mia Jones" not in page
    assert "You cannot act for anyone at the moment" in page
    event = AuditEvent.objects.filter(action="proxy.end").last()
    assert event.actor == ben
    assert "acting for the patient" not in event.actor_label  # as themself, not for Mia


def test_stopping_the_grant_acted_under_drops_it_from_the_session(client, mia_user, ben):
    made = grant(mia_user)
    acting(client, ben, made.pk)
    assert client.session[PROXY_SESSION_KEY] == made.pk
    assert stop(client, made).status_code == 302
    assert PROXY_SESSION_KEY not in client.session
    made.refresh_from_db()
    assert made.ended_at is not None
    assert "You are acting for Mia Jones" not in client.get(reverse("portal:acting_for")).content.decode()


def test_a_proxy_with_a_record_stops_acting_and_keeps_their_own(client, mia_user, ben):
    kim = PatientUserFactory(email="kim@example.com")  # linked to a record of her own
    made = ProxyAccess.objects.create(
        patient=mia_user.patient_link.patient,
        proxy=kim,
        relationship="chosen",
        reason="She helps me",
        ends_at=until(),
        granted_by=mia_user,
    )
    client.force_login(kim)
    assert stop(client, made).status_code == 302
    made.refresh_from_db()
    assert made.ended_at is not None
    assert "You no longer act for Mia Jones." in client.get(reverse("portal:acting_for")).content.decode()


def test_nobody_stops_a_grant_they_do_not_hold(client, mia_user, ben, dr_gp):
    made = grant(mia_user)
    for who in (PatientUserFactory(email="eve@example.com"), mia_user, dr_gp):
        client.force_login(who)
        assert stop(client, made).status_code == 404
    client.force_login(ben)
    assert client.post(reverse("portal:acting_for_end", kwargs={"grant_id": 0})).status_code == 404
    assert client.get(reverse("portal:acting_for_end", kwargs={"grant_id": made.pk})).status_code == 405
    made.refresh_from_db()
    assert made.ended_at is None


def test_stopping_needs_a_signed_in_person_and_csrf(mia_user, ben):
    from django.test import Client

    made = grant(mia_user)
    anonymous = Client()
    response = anonymous.post(reverse("portal:acting_for_end", kwargs={"grant_id": made.pk}))
    assert response.status_code == 302
    assert "login" in response["Location"]
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(ben)
    assert checked.post(reverse("portal:acting_for_end", kwargs={"grant_id": made.pk})).status_code == 403
    made.refresh_from_db()
    assert made.ended_at is None


def test_while_acting_the_proxy_stops_as_themself(client, mia_user, ben):
    """Even from inside Mia's record the ending is Ben's own, never done "for Mia"."""
    made = grant(mia_user)
    acting(client, ben, made.pk)
    assert stop(client, made).status_code == 302
    assert "acting for the patient" not in AuditEvent.objects.filter(action="proxy.end").last().actor_label


# --- The patient's page ends only grants on the patient's own record ----------------------


def test_the_patients_page_does_not_end_a_grant_the_patient_holds_for_someone_else(client, mia_user):
    kim = PatientUserFactory(email="kim@example.com")  # linked, and Mia's proxy
    made = ProxyAccess.objects.create(
        patient=mia_user.patient_link.patient,
        proxy=kim,
        relationship="chosen",
        reason="She helps me",
        ends_at=until(),
        granted_by=mia_user,
    )
    client.force_login(kim)
    assert client.post(reverse("sharing:proxy_end", kwargs={"grant_id": made.pk})).status_code == 404
    made.refresh_from_db()
    assert made.ended_at is None


def test_the_patient_still_ends_a_grant_on_their_record(client, mia_user, ben):
    made = grant(mia_user)
    client.force_login(mia_user)
    response = client.post(reverse("sharing:proxy_end", kwargs={"grant_id": made.pk}), follow=True)
    assert "ben@example.com can no longer act for you." in response.content.decode()
    made.refresh_from_db()
    assert made.ended_at is not None


# --- Who wrote a correction message --------------------------------------------------------


def author_line(client, found) -> str:
    page = client.get(reverse("record:correction", kwargs={"request_id": found.pk})).content.decode()
    thread = page[page.index('id="thread"') :]
    return re.sub(r"\s+", " ", re.search(r"<strong>(.*?)</strong>", thread, re.S).group(1)).strip()


def test_a_message_a_proxy_wrote_names_the_proxy(client, mia_user, ben):
    found = services.submit_correction(
        actor=actor_for(mia_user),
        entry_id=RecordEntry.objects.get(fhir_id="plain").pk,
        element="",
        proposed="I have never had asthma in my life",
        reason="It was a chest infection as a child",
        contact_preference="portal",
    )
    made = grant(mia_user, Rights(see=True, correct=True))
    services.patient_reply(
        actor=actor_for(ben, proxy_grant=made.pk), request_id=found.pk, revision=found.revision, body="Hello"
    )
    client.force_login(mia_user)
    assert author_line(client, found) == "ben@example.com, acting for you"
    acting(client, ben, made.pk)
    assert author_line(client, found) == "You, acting for Mia Jones"


def test_the_patients_own_message_reads_as_theirs(client, mia_user, ben):
    found = services.submit_correction(
        actor=actor_for(mia_user),
        entry_id=RecordEntry.objects.get(fhir_id="plain").pk,
        element="",
        proposed="I have never had asthma in my life",
        reason="It was a chest infection as a child",
        contact_preference="portal",
    )
    services.patient_reply(actor=actor_for(mia_user), request_id=found.pk, revision=found.revision, body="Hi")
    client.force_login(mia_user)
    assert author_line(client, found) == "You"
    acting(client, ben, grant(mia_user, Rights(see=True, correct=True)).pk)
    assert author_line(client, found) == "Mia Jones"
