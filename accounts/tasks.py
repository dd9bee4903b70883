"""Email copies of inbox notifications: queued after the transaction that created them,
and swept up when the queue lost them (see accounts.outbox)."""

from celery import shared_task

from phr.background import after_commit

from . import outbox
from .models import Notification


@shared_task(acks_late=True)
def email_notification(notification_id: int) -> bool:
    """Send one notification's email if it is still owed; a redelivered task, or one the
    sweep got to first, does nothing."""
    return outbox.deliver(notification_id)


@shared_task(acks_late=True)
def outbox_sweep() -> dict:
    """Send every email that is overdue (beat runs this every OUTBOX_SWEEP_SECONDS)."""
    return outbox.sweep()


def notify(user, *, kind: str, title: str, body: str, link: str = "") -> Notification:
    """Put a message in the user's inbox; its email goes once the transaction commits.
    ``link`` is the path (from reverse()) of the page the message is about, one the
    user may open: the inbox and the email both point there."""
    note = Notification.objects.create(user=user, kind=kind, title=title, body=body, link=link)
    after_commit(email_notification, note.pk)
    return note
