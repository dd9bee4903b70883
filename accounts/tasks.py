"""Email copies of inbox notifications, sent after the transaction that created them."""

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from .models import Notification


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def email_notification(notification_id: int) -> bool:
    """Email one notification once; a redelivered task finds it sent and does nothing."""
    with transaction.atomic():
        note = (
            Notification.objects.select_for_update().select_related("user").filter(pk=notification_id).first()
        )
        if note is None or note.emailed_at is not None:
            return False
        # The email says only that something happened; the detail stays behind sign-in.
        send_mail(
            subject=f"Patient Record Portal: {note.title}",
            message=(
                f"{note.title}\n\nSign in to the Patient Record Portal to read the details in your inbox.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[note.user.email],
        )
        note.emailed_at = timezone.now()
        note.save(update_fields=["emailed_at"])
    return True


def notify(user, *, kind: str, title: str, body: str) -> Notification:
    """Put a message in the user's inbox and email them once the transaction commits."""
    note = Notification.objects.create(user=user, kind=kind, title=title, body=body)
    transaction.on_commit(lambda: email_notification.delay(note.pk))
    return note
