"""The email outbox: each inbox notification is also the record that an email is owed.

A send is claimed before the email leaves (state "sending", in its own committed
transaction), so two workers never send the same row at once; it is marked sent after.
A worker killed between the two leaves a claim that lapses, and the sweep sends again
with the same key (the Message-ID), which the relay and the mailbox treat as the same
message. A row whose queued task was lost (a broker outage, a worker killed before it
acknowledged) waits until the sweep finds it overdue. So an email is never lost, and is
repeated only in that one crash window, under the same key.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from .models import Notification

log = logging.getLogger(__name__)
Email = Notification.Email


def _retry_after() -> timedelta:
    return timedelta(seconds=settings.OUTBOX_RETRY_SECONDS)


def _claimable(now) -> Q:
    """Rows a sender may take: waiting, or claimed by a sender that has had time to
    finish and did not (it died, or its send failed)."""
    lapsed = now - _retry_after()
    return Q(email_state=Email.PENDING, email_claimed_at__isnull=True) | Q(
        email_state__in=(Email.PENDING, Email.SENDING), email_claimed_at__lt=lapsed
    )


def claim(notification_id: int) -> Notification | None:
    """Take the row for sending, or None if it is sent, being sent, or not due."""
    now = timezone.now()
    taken = Notification.objects.filter(_claimable(now), pk=notification_id).update(
        email_state=Email.SENDING, email_claimed_at=now, email_attempts=F("email_attempts") + 1
    )
    if not taken:
        return None
    return Notification.objects.select_related("user").get(pk=notification_id)


PORTAL_NAME = "Patient Record Portal"


def portal_address(path: str) -> str:
    """The full address of a portal page, for an email (settings.PORTAL_URL)."""
    return f"{settings.PORTAL_URL}{path}"


def email_body(note: Notification) -> str:
    """The email says only that something happened, with a link: the detail (who, which
    item, the clinical words) stays in the inbox, behind sign-in."""
    inbox = portal_address(reverse("portal:inbox_item", args=[note.pk]))
    lines = [
        "Hello,",
        "",
        f"{note.title}.",
        "",
        "Sign in to the Patient Record Portal to read the message:",
        inbox,
        "",
        "We never put the details in an email. They stay in the portal, behind your sign-in.",
        "",
        "You receive this email because you have an account with the Patient Record Portal.",
        "",
        "Patient Record Portal",
    ]
    return "\n".join(lines) + "\n"


def message_id(note: Notification) -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(" >") or "patient-record-portal"
    return f"<{note.email_key}@{domain}>"


def deliver(notification_id: int) -> bool:
    """Send one notification's email if it is owed; True when this call sent it."""
    note = claim(notification_id)
    if note is None:
        return False
    if not note.user.email:
        Notification.objects.filter(pk=note.pk).update(email_state=Email.NOT_NEEDED)
        return False
    email = EmailMessage(
        subject=f"{PORTAL_NAME}: {note.title}",
        body=email_body(note),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[note.user.email],
        headers={"Message-ID": message_id(note), "X-Portal-Idempotency-Key": str(note.email_key)},
    )
    try:
        email.send()
    except OSError as error:  # smtplib's errors are OSErrors too
        gave_up = note.email_attempts >= settings.OUTBOX_MAX_ATTEMPTS
        Notification.objects.filter(pk=note.pk, email_state=Email.SENDING).update(
            email_state=Email.FAILED if gave_up else Email.PENDING
        )
        log.warning(
            "Email for notification %s failed (%s), attempt %s%s",
            note.pk,
            type(error).__name__,
            note.email_attempts,
            "; giving up" if gave_up else "; the sweep retries it",
        )
        return False
    Notification.objects.filter(pk=note.pk).update(email_state=Email.SENT, emailed_at=timezone.now())
    return True


def overdue(now=None):
    """Ids of emails the sweep should send now: waiting longer than the queue should
    take, or claimed by a sender that lapsed (oldest first)."""
    now = now or timezone.now()
    late = now - _retry_after()
    waiting = Q(email_state=Email.PENDING, email_claimed_at__isnull=True, created_at__lt=late)
    lapsed = Q(email_state__in=(Email.PENDING, Email.SENDING), email_claimed_at__lt=late)
    return (
        Notification.objects.filter(waiting | lapsed)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )


def sweep(limit: int = 500) -> dict:
    """Send what is overdue; safe to run at any time, by any number of processes."""
    sent = skipped = 0
    for pk in list(overdue()[:limit]):
        if deliver(pk):
            sent += 1
        else:
            skipped += 1
    return {"sent": sent, "not_sent": skipped}


def backlog() -> dict:
    """For /healthz: how many emails are owed, and how many are overdue."""
    owed = Notification.objects.filter(email_state__in=(Email.PENDING, Email.SENDING))
    return {"owed": owed.count(), "overdue": overdue().count()}
