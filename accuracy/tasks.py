"""The daily deadline sweep: reminders before each deadline, escalation after it; and the
accuracy checks of records that changed."""

from datetime import date

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Notification, Role, User
from accounts.tasks import notify
from phr.background import after_commit, take_the_day
from phr.render.dates import day

from . import notifications
from .models import CorrectionRequest, SweepMark, SweepRun, TimelineEvent

# A run that started this long ago and never finished died with its worker.


def _mark(request: CorrectionRequest, kind: str) -> bool:
    """Record that this reminder is being sent; False if it was sent already."""
    try:
        with transaction.atomic():
            SweepMark.objects.create(request=request, kind=kind, due_on=request.due_on)
    except IntegrityError:
        return False
    return True


def _ig_officers(request: CorrectionRequest):
    at_owner = User.objects.filter(
        role=Role.IG_OFFICER, is_active=True, memberships__organisation=request.owner
    )
    return at_owner if at_owner.exists() else User.objects.filter(role=Role.IG_OFFICER, is_active=True)


@shared_task(acks_late=True)
def deadline_sweep(today: str | None = None) -> dict:
    """Send each reminder and escalation once per deadline; safe to run again."""
    on = date.fromisoformat(today) if today else timezone.localdate()
    sent = {"reminders": 0, "escalations": 0}
    for request in CorrectionRequest.objects.open().select_related("owner", "assigned_to"):
        left = (request.due_on - on).days
        if left < 0:
            with transaction.atomic():
                if _mark(request, "escalate"):
                    for officer in _ig_officers(request):
                        notify(
                            officer,
                            kind=Notification.Kind.CORRECTION,
                            title="A correction request is overdue",
                            body=(
                                f"{request.owner.name} missed the deadline of {day(request.due_on)} "
                                "for a patient's correction request. The portal sent this notice."
                            ),
                            link=notifications.overdue_page(),
                        )
                    TimelineEvent.objects.create(
                        request=request,
                        actor_label="the portal",
                        kind="escalation",
                        status=request.status,
                        business_status=request.business_status,
                        note=f"due {day(request.due_on)}",
                    )
                    sent["escalations"] += 1
            continue
        # Only the nearest reminder is due: a 7-day reminder is pointless with 1 day left.
        nearest = min((d for d in settings.CORRECTION_REMINDER_DAYS if left <= d), default=None)
        if nearest is not None and _remind(request, nearest, left):
            sent["reminders"] += 1
    return sent


@shared_task(acks_late=True)
def daily_deadline_sweep() -> dict | None:
    """Run today's deadline sweep if it is due and has not run: beat asks every few
    minutes, so a beat restarted (or down) at the usual hour still runs it that day."""
    now = timezone.localtime()
    if now.hour < settings.DEADLINE_SWEEP_HOUR:
        return None
    run = take_the_day(SweepRun, now.date())
    if run is None:
        return None
    outcome = deadline_sweep(now.date().isoformat())
    SweepRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), outcome=outcome)
    return outcome


def _remind(request: CorrectionRequest, days: int, left: int) -> bool:
    with transaction.atomic():
        if not _mark(request, f"remind-{days}"):
            return False
        people = (
            [request.assigned_to]
            if request.assigned_to
            else list(
                User.objects.filter(
                    memberships__organisation=request.owner, role=Role.CLINICIAN, is_active=True
                )
            )
        )
        for person in people:
            notify(
                person,
                kind=Notification.Kind.CORRECTION,
                title="A correction request is due soon",
                body=(
                    f"{notifications.asked(request)} Decide by {day(request.due_on)} "
                    f"({left} day{'s' if left != 1 else ''} left)."
                ),
                link=notifications.staff_page(request),
            )
        TimelineEvent.objects.create(
            request=request,
            actor_label="the portal",
            kind="reminder",
            status=request.status,
            business_status=request.business_status,
            note=f"{left} day(s) before the deadline",
        )
    return True


# --- Accuracy checks ----------------------------------------------------------------------

CHECK_BATCH = 50  # patients per task: a big ingest becomes many small, restartable tasks


def check_after_commit(sender, patient_ids, **kwargs) -> None:
    """phr.signals.entries_changed: note the patients (in the change's transaction) and
    ask the worker to check them once it commits."""
    from .models import PendingCheck

    now = timezone.now()
    ids = sorted({str(p) for p in patient_ids if p})
    if not ids:
        return
    # A patient already pending (perhaps being checked this moment) gets the new time, so
    # the check under way does not let go of it: the change it has not seen is checked next.
    PendingCheck.objects.bulk_create(
        [PendingCheck(patient_id=pid, since=now) for pid in ids],
        update_conflicts=True,
        unique_fields=["patient"],
        update_fields=["since"],
    )
    for _ in range(0, len(ids), CHECK_BATCH):
        after_commit(check_pending)


@shared_task(acks_late=True)
def check_pending(limit: int = CHECK_BATCH) -> dict:
    """Check up to ``limit`` patients whose records changed; each is taken by one worker
    (SKIP LOCKED on PostgreSQL) and let go only once checked."""
    from dataclasses import asdict

    from .checks.engine import Outcome, run_checks
    from .models import PendingCheck

    total = Outcome()
    checked = 0
    while checked < limit:
        with transaction.atomic():
            pending = PendingCheck.objects.select_for_update(skip_locked=True).order_by("since").first()
            if pending is None:
                break
            since = pending.since
            total += run_checks(pending.patient_id)
            # A change that came in while it was being checked leaves it pending.
            PendingCheck.objects.filter(pk=pending.pk, since=since).delete()
        checked += 1
    return {"patients": checked, **asdict(total)}
