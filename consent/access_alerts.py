"""Telling patients who looked at their record, as they chose (EHDS Art. 9): each time an
organisation looks, once a day in a digest, or only of emergency access (the default,
told by consent.services.declare_break_glass whatever the choice).

Both alerts read the same looks as the patient's "Who has looked" page
(access_log.organisation_reads), and only the audit trail's metadata: who, for which
organisation, when. A message never names an item, and its email says even less
(accounts.outbox).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.urls import reverse
from django.utils import timezone

import audit
from accounts.models import (
    AccessAlert,
    AccessAlertCursor,
    AccessAlertPreference,
    AccessDigestRun,
    AccessDigestSent,
    Notification,
    Role,
    User,
)
from accounts.tasks import notify
from audit import ledger
from audit.models import Block
from phr.background import take_the_day
from phr.models import Organisation, Patient
from phr.render.dates import day, day_and_time

from .access_log import organisation_reads
from .policy import Actor, patient_themself

Mode = AccessAlertPreference.Mode
ACTION = "consent.alerts"
# One message per organisation per this long, however many pages its staff open.
COALESCE = timedelta(hours=1)
# Events read by one scan at most; a backlog drains over the following runs.
SCAN_BATCH = 5000


def mode_of(patient_id) -> str:
    """The patient's choice, or the default (emergency access only) when they made none."""
    chosen = (
        AccessAlertPreference.objects.filter(patient_id=patient_id).values_list("mode", flat=True).first()
    )
    return chosen or Mode.EMERGENCY_ONLY


@transaction.atomic
def choose_alerts(*, actor: Actor, mode: str) -> bool:
    """A patient chooses, for their own record only, how they are told who looked; each
    change is audited. False when the choice was already in force (nothing written)."""
    patient_themself(actor)  # the patient's own choice: never someone acting for them
    if mode not in Mode.values:
        raise ValueError(f"unknown alert choice {mode!r}")
    patient = Patient.objects.get(pk=actor.patient_id)
    preference, _ = AccessAlertPreference.objects.select_for_update().get_or_create(patient=patient)
    was = preference.mode
    if was == mode:
        return False
    preference.mode, preference.changed_at = mode, timezone.now()
    preference.save(update_fields=["mode", "changed_at"])
    audit.record(
        ACTION,
        patient=patient,
        purpose="patient-choice",
        detail={"mode": mode, "was": was},
        **actor.audit_fields(),
    )
    return True


def _accounts(patient_id):
    """The patient's own accounts: someone acting for them is not told in their place."""
    return User.objects.filter(patient_link__patient_id=patient_id, role=Role.PATIENT, is_active=True)


def log_page() -> str:
    return reverse("sharing:access_log") + "#looks"


# --- Each time --------------------------------------------------------------------------


def scan(*, limit: int = SCAN_BATCH) -> dict:
    """Tell each patient who chose "each time" of the organisations that looked since the
    last scan, once per organisation per hour. Reads sealed blocks only: the events are
    first sealed (audit.ledger.seal_all; the sealer runs every few seconds anyway)."""
    ledger.seal_all()
    return _scan_blocks(limit)


@transaction.atomic
def _scan_blocks(limit: int) -> dict:
    """The cursor moves in the transaction that sends the alerts, so a scan run twice, or
    by two workers at once (the cursor row is locked), tells nobody twice. Whole blocks,
    at least one, until they hold ``limit`` events."""
    cursor = AccessAlertCursor.objects.select_for_update().filter(pk=1).first()
    if cursor is None:
        AccessAlertCursor.objects.get_or_create(pk=1)
        cursor = AccessAlertCursor.objects.select_for_update().get(pk=1)
    upto, sealed = cursor.last_block, []
    blocks = Block.objects.filter(number__gt=cursor.last_block).values_list("number", "size", "members")
    for number, size, members in blocks[:limit]:
        if sealed and len(sealed) + size > limit:
            break
        upto = number
        sealed.extend(int(seq) for seq in members.split())
    watching = AccessAlertPreference.objects.filter(mode=Mode.EACH_TIME)
    looks = list(
        organisation_reads()
        .filter(seq__in=sealed, patient_id__in=watching.values("patient_id"))
        .order_by("seq")
        .values_list("seq", "patient_id", "organisation_id", "occurred_at")
    )
    since = dict(
        watching.filter(patient_id__in={p for _, p, _, _ in looks}).values_list("patient_id", "changed_at")
    )
    names = dict(Organisation.objects.filter(pk__in={o for _, _, o, _ in looks}).values_list("pk", "name"))
    last_told: dict[tuple, datetime | None] = {}
    sent = 0
    for _seq, patient_id, organisation_id, occurred_at in looks:
        if patient_id not in since or occurred_at < since[patient_id]:
            continue  # looks before the patient asked are not news to tell
        key = (patient_id, organisation_id)
        if key not in last_told:
            last_told[key] = AccessAlert.objects.filter(
                patient_id=patient_id, organisation_id=organisation_id
            ).aggregate(last=Max("looked_at"))["last"]
        previous = last_told[key]
        if previous is not None and occurred_at - previous < COALESCE:
            continue
        AccessAlert.objects.create(
            patient_id=patient_id, organisation_id=organisation_id, looked_at=occurred_at
        )
        last_told[key] = occurred_at
        for user in _accounts(patient_id):
            notify(
                user,
                kind=Notification.Kind.ACCESS,
                title="An organisation looked at your record",
                body=(
                    f"{names[organisation_id]} looked at your record on {day_and_time(occurred_at)}.\n"
                    "If they look again within the hour, we will not send another message: "
                    "every look is listed in who has looked at your record."
                ),
                link=log_page(),
            )
        sent += 1
    cursor.last_block = upto
    cursor.save(update_fields=["last_block", "updated_at"])
    return {"looks": len(looks), "alerts": sent}


# --- Once a day -------------------------------------------------------------------------


def _day_bounds(on: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(on, time.min))
    return start, timezone.make_aware(datetime.combine(on + timedelta(days=1), time.min))


def _times(count: int) -> str:
    return "once" if count == 1 else ("twice" if count == 2 else f"{count} times")


def digest(on: date) -> dict:
    """Send each patient who chose a daily message one list of the organisations that
    looked at their record on that day, and how often; at most one per patient per day,
    and none on a day nobody looked."""
    start, end = _day_bounds(on)
    counts = (
        organisation_reads()
        .filter(
            occurred_at__gte=start,
            occurred_at__lt=end,
            patient_id__in=AccessAlertPreference.objects.filter(mode=Mode.DAILY).values("patient_id"),
        )
        .order_by()
        .values("patient_id", "organisation__name")
        .annotate(looks=Count("pk"))
    )
    per_patient: dict = defaultdict(list)
    for row in counts:
        per_patient[row["patient_id"]].append((row["organisation__name"], row["looks"]))
    sent = 0
    for patient_id, rows in per_patient.items():
        with transaction.atomic():
            try:
                with transaction.atomic():
                    AccessDigestSent.objects.create(patient_id=patient_id, day=on)
            except IntegrityError:
                continue  # sent already, by an earlier run of the day
            lines = "\n".join(f"{name}: {_times(looks)}" for name, looks in sorted(rows))
            for user in _accounts(patient_id):
                notify(
                    user,
                    kind=Notification.Kind.ACCESS,
                    title=f"Who looked at your record on {day(on)}",
                    body=f"These organisations looked at your record on {day(on)}:\n{lines}",
                    link=log_page(),
                )
            sent += 1
    return {"digests": sent}


def daily_digest(*, hour: int) -> dict | None:
    """Today's digest of yesterday's looks, if it is due (from ``hour``, local time) and
    has not run: beat asks every few minutes, so a beat restarted (or down) at the usual
    hour still sends it that day, and only once."""
    now = timezone.localtime()
    if now.hour < hour:
        return None
    run = take_the_day(AccessDigestRun, now.date())
    if run is None:
        return None
    outcome = digest(now.date() - timedelta(days=1))
    AccessDigestRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), outcome=outcome)
    return outcome
