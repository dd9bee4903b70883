"""The email outbox: every notification's email is owed until sent, claimed before it
leaves, sent under one key however many times it is tried, and swept up when its queued
task is lost."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts import outbox
from accounts.models import Notification
from accounts.tasks import notify, outbox_sweep
from tests.personas import PatientUserFactory

pytestmark = pytest.mark.django_db
Email = Notification.Email


@pytest.fixture
def owed(settings):
    """A notification whose queued task never ran (as when the broker was down)."""
    settings.OUTBOX_RETRY_SECONDS = 60
    user = PatientUserFactory(email="owed@example.com")
    return Notification.objects.create(user=user, title="Your request was answered", body="Details inside")


def age(note: Notification, **delta) -> None:
    Notification.objects.filter(pk=note.pk).update(created_at=timezone.now() - timedelta(**delta))


def test_the_task_sends_once_and_a_redelivery_does_nothing(owed):
    assert outbox.deliver(owed.pk) is True
    assert outbox.deliver(owed.pk) is False
    owed.refresh_from_db()
    assert (owed.email_state, owed.email_attempts) == (Email.SENT, 1)
    assert owed.emailed_at is not None
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["owed@example.com"]
    assert sent.extra_headers["Message-ID"] == f"<{owed.email_key}@localhost>"
    assert "Details inside" not in sent.body  # the detail stays behind sign-in


def test_a_claimed_send_is_not_taken_twice_until_its_claim_lapses(owed):
    assert outbox.claim(owed.pk) is not None  # a worker began sending, then died
    assert outbox.claim(owed.pk) is None
    assert list(outbox.overdue()) == []
    later = timezone.now() + timedelta(seconds=61)
    assert list(outbox.overdue(later)) == [owed.pk]
    Notification.objects.filter(pk=owed.pk).update(email_claimed_at=timezone.now() - timedelta(seconds=61))
    assert outbox_sweep.delay().get() == {"sent": 1, "not_sent": 0}
    owed.refresh_from_db()
    assert (owed.email_state, owed.email_attempts) == (Email.SENT, 2)
    # The second try is the same message to the relay: the same key.
    assert [m.extra_headers["Message-ID"] for m in mail.outbox] == [f"<{owed.email_key}@localhost>"]


def test_the_sweep_sends_what_its_task_never_did_and_leaves_what_is_fresh(owed):
    fresh = Notification.objects.create(user=owed.user, title="Just now", body="x")
    assert outbox.sweep() == {"sent": 0, "not_sent": 0}
    age(owed, seconds=61)
    assert outbox.sweep() == {"sent": 1, "not_sent": 0}
    assert [m.subject for m in mail.outbox] == ["Patient Record Portal: Your request was answered"]
    fresh.refresh_from_db()
    assert fresh.email_state == Email.PENDING
    assert outbox.backlog() == {"owed": 1, "overdue": 0}


def test_a_failed_send_is_retried_later_and_given_up_after_the_limit(owed, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 1  # nothing listens
    settings.OUTBOX_MAX_ATTEMPTS = 2
    assert outbox.deliver(owed.pk) is False
    owed.refresh_from_db()
    assert (owed.email_state, owed.email_attempts) == (Email.PENDING, 1)
    assert outbox.deliver(owed.pk) is False  # not due again until the retry interval
    Notification.objects.filter(pk=owed.pk).update(email_claimed_at=timezone.now() - timedelta(seconds=61))
    assert outbox.sweep() == {"sent": 0, "not_sent": 1}
    owed.refresh_from_db()
    assert (owed.email_state, owed.email_attempts) == (Email.FAILED, 2)
    assert list(outbox.overdue(timezone.now() + timedelta(days=1))) == []


def test_an_account_without_an_email_address_is_owed_none(owed):
    type(owed.user).objects.filter(pk=owed.user.pk).update(email="")
    assert outbox.deliver(owed.pk) is False
    owed.refresh_from_db()
    assert owed.email_state == Email.NOT_NEEDED
    assert mail.outbox == []


def test_notify_sends_after_the_commit(django_capture_on_commit_callbacks):
    user = PatientUserFactory(email="now@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        note = notify(user, kind=Notification.Kind.GENERAL, title="Hello", body="x")
        assert mail.outbox == []
    note.refresh_from_db()
    assert note.email_state == Email.SENT
    assert len(mail.outbox) == 1
