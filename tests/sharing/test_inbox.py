"""The portal inbox: only the signed-in user's own notifications; opening one marks it
read; the unread count reaches every page's templates."""

import re

import pytest
from django.core import mail
from django.template import Context, RequestContext, Template
from django.test import RequestFactory
from django.urls import reverse

from accounts.context_processors import unread_notifications
from accounts.models import Notification
from accounts.tasks import notify
from consent.policy import actor_for
from consent.services import declare_break_glass
from tests.clinician.network import build_record
from tests.personas import ClinicianFactory, PatientUserFactory

pytestmark = pytest.mark.django_db

INBOX = reverse("portal:inbox")


@pytest.fixture
def ada(db):
    return PatientUserFactory(email="ada@example.com", patient=None)


@pytest.fixture
def bob(db):
    return PatientUserFactory(email="bob@example.com", patient=None)


def message(user, title="A message for you", **extra) -> Notification:
    return Notification.objects.create(
        user=user, title=title, body=extra.pop("body", "The details."), **extra
    )


def test_the_inbox_lists_only_the_users_own_notifications(client, ada, bob):
    message(ada, "For Ada")
    message(bob, "For Bob")
    client.force_login(ada)
    body = client.get(INBOX).content.decode()
    assert "For Ada" in body
    assert "For Bob" not in body
    assert "You have 1 unread message." in body


def test_another_users_notification_is_not_found(client, ada, bob):
    theirs = message(bob)
    client.force_login(ada)
    assert client.get(reverse("portal:inbox_item", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("portal:inbox_item", args=[theirs.pk]), {"mark": "unread"}).status_code == 404
    assert client.get(reverse("portal:inbox_item", args=[999999])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_opening_a_notification_marks_it_read_and_it_can_be_marked_unread(client, ada):
    note = message(ada, body="Line one\nLine two")
    client.force_login(ada)
    url = reverse("portal:inbox_item", args=[note.pk])
    response = client.get(url)
    assert "Line one<br>Line two" in response.content.decode()
    note.refresh_from_db()
    assert note.read_at is not None
    assert client.post(url, {"mark": "unread"})["Location"] == INBOX
    note.refresh_from_db()
    assert note.read_at is None


def test_the_back_link_draws_one_arrow_as_the_design_system_does(client, ada):
    """nhsuk-frontend 10 draws the chevron of .nhsuk-back-link itself: no icon of our own."""
    client.force_login(ada)
    page = client.get(reverse("portal:inbox_item", args=[message(ada).pk])).content.decode()
    link = re.search(r'<a class="nhsuk-back-link"[^>]*>(.*?)</a>', page, re.S)
    assert link is not None
    assert link.group(1).strip() == "Back to my messages"
    assert "nhsuk-back-link__link" not in page


def test_mark_all_as_read_touches_only_the_users_own(client, ada, bob):
    message(ada)
    message(ada)
    theirs = message(bob)
    client.force_login(ada)
    client.post(INBOX)
    assert not Notification.objects.filter(user=ada, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_the_unread_count_reaches_templates_and_the_header_link(ada, bob):
    message(ada)
    message(ada)
    message(ada, read_at="2025-01-01T00:00:00Z")
    message(bob)
    request = RequestFactory().get("/")
    request.user = ada
    assert int(unread_notifications(request)["unread_notifications"]) == 2
    html = Template('{% include "inbox/_header_link.html" %}').render(RequestContext(request, {"user": ada}))
    assert "Inbox (2" in html
    assert reverse("portal:inbox") in html


def test_anonymous_visitors_have_no_count_and_no_inbox(client):
    request = RequestFactory().get("/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    assert unread_notifications(request) == {"unread_notifications": 0}
    assert (
        Template('{% include "inbox/_header_link.html" %}').render(Context({"user": request.user})).strip()
        == ""
    )
    assert "/accounts/login/" in client.get(INBOX)["Location"]


def test_a_break_glass_reaches_the_patients_inbox_and_email(client, gp, hospital, mental_health_trust):
    patient = build_record(gp, hospital)
    user = PatientUserFactory(email="ada@example.com", patient=patient)
    moss = ClinicianFactory(email="dr.moss@mind.example", organisation=mental_health_trust)
    from consent.models import Decision, Scope
    from consent.services import change_consent

    change_consent(
        actor=actor_for(user),
        patient_id=patient.pk,
        scope=Scope.ORGANISATION,
        decision=Decision.DENY,
        organisation=mental_health_trust,
    )
    declare_break_glass(
        actor=actor_for(moss),
        patient_id=patient.pk,
        reason_code="emergency",
        reason_text="Brought in unconscious; need medicines now.",
    )
    client.force_login(user)
    body = client.get(INBOX).content.decode()
    assert "A clinician used emergency access to your record" in body
    note = Notification.objects.get(user=user)
    detail = client.get(reverse("portal:inbox_item", args=[note.pk])).content.decode()
    assert "City Mind Partnership" in detail
    assert reverse("sharing:access_log") in detail


def test_notify_emails_a_copy_without_the_details(django_capture_on_commit_callbacks, ada):
    with django_capture_on_commit_callbacks(execute=True):
        notify(ada, kind=Notification.Kind.GENERAL, title="News", body="Secret clinical detail")
    assert len(mail.outbox) == 1
    assert "Secret clinical detail" not in mail.outbox[0].body
