"""A worker killed again and again while notifications flow and audit blocks are sealed
loses no email, sends none twice to the mailbox and leaves no audit event unsealed once
a worker is back: a live Celery worker on Redis, SIGKILLed at random moments
(WORKER_KILLS times: 25 here, 200 in bench/faults.py), then counted.

What is counted: lost (an owed email never sent), repeated (the same key handed to the
mail backend twice: the one crash window between the send and its record; the relay and
the mailbox see one message, since the key is its Message-ID), and how late each email
was. FAULTS_JSON, when set, receives the figures."""

import json
import os
import random
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

import audit
from accounts.models import Notification
from accounts.tasks import notify, outbox_sweep
from audit.ledger import verify
from audit.models import AuditEvent, Block, Unsealed
from audit.tasks import seal
from config.celery import app
from phr.background import enqueue
from tests.integration.conftest import app_environment, start_worker, stop
from tests.personas import PatientUserFactory

KILLS = int(os.environ.get("WORKER_KILLS", "25"))
PER_ROUND = 12  # notifications written while each worker starts, works and is killed
MESSAGE_ID = re.compile(r"^Message-ID: <([0-9a-f-]{36})@", re.MULTILINE)


def handed_to_mail(mail_dir: Path) -> Counter:
    """How many times each key reached the mail backend (one file per connection)."""
    return Counter(key for path in mail_dir.iterdir() for key in MESSAGE_ID.findall(path.read_text()))


@pytest.mark.django_db(transaction=True)
def test_killing_the_worker_loses_and_duplicates_no_email(integration_services, tmp_path):
    queue = f"kills-{os.getpid()}"
    mail, log = tmp_path / "mail", tmp_path / "worker.log"
    mail.mkdir()
    log.touch()
    env = app_environment(mail, OUTBOX_RETRY_SECONDS="2")
    previous_queue, app.conf.task_default_queue = app.conf.task_default_queue, queue
    people = [PatientUserFactory(email=f"flow{n}@example.com") for n in range(PER_ROUND)]
    rng = random.Random(int(os.environ.get("FAULTS_SEED", "16")))
    started = time.monotonic()
    try:
        for round_ in range(KILLS):
            for person in people:
                with transaction.atomic():
                    notify(person, kind=Notification.Kind.GENERAL, title=f"Round {round_}", body="x")
            for n in range(PER_ROUND):
                audit.record("test.kills", actor_label=f"round {round_}", detail={"n": n})
            enqueue(outbox_sweep)  # as beat does, every minute in production
            enqueue(seal)  # as beat does, every two seconds
            worker = start_worker(queue, log, env)
            time.sleep(rng.uniform(0, 0.25))  # mid-stream: sending, recording, or between
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        kills_took = time.monotonic() - started
        # A worker that stays up, and beat's sweep: everything owed goes.
        worker = start_worker(queue, log, env)
        try:
            deadline = time.monotonic() + 180
            while (
                Notification.objects.exclude(email_state=Notification.Email.SENT).exists()
                or Unsealed.objects.exists()
            ):
                assert time.monotonic() < deadline, "emails or seals still owed three minutes after the kills"
                enqueue(outbox_sweep)
                enqueue(seal)
                time.sleep(1)
        finally:
            stop(worker)
    finally:
        app.conf.task_default_queue = previous_queue

    notes = list(Notification.objects.values("email_key", "created_at", "emailed_at", "email_attempts"))
    handed = handed_to_mail(mail)
    owed = {str(n["email_key"]) for n in notes}
    lost = owed - set(handed)
    strangers = set(handed) - owed
    repeated = sum(count - 1 for count in handed.values())
    delays = sorted((n["emailed_at"] - n["created_at"]).total_seconds() for n in notes)
    figures = {
        "kills": KILLS,
        "notifications": len(notes),
        "lost": len(lost),
        "repeated_same_key": repeated,
        "sent_by_retry": sum(1 for n in notes if n["email_attempts"] > 1),
        "delay_median_s": round(delays[len(delays) // 2], 2),
        "delay_max_s": round(delays[-1], 2),
        "late_over_5_min": sum(1 for d in delays if d > 300),
        "kills_took_s": round(kills_took, 1),
        "audit_events": AuditEvent.objects.count(),
        "audit_blocks": Block.objects.count(),
        "audit_unsealed_after": Unsealed.objects.count(),
        "audit_sealed": sum(Block.objects.values_list("size", flat=True)),
        "at": timezone.now().isoformat(),
    }
    print(f"\n[worker kills] {json.dumps(figures)}")
    if os.environ.get("FAULTS_JSON"):
        Path(os.environ["FAULTS_JSON"]).write_text(json.dumps(figures, indent=2) + "\n")
    assert len(notes) == KILLS * PER_ROUND
    assert lost == set()
    assert strangers == set()
    # A repeat can only come from a kill between a send and its record: at most one a kill.
    assert repeated <= KILLS
    # Each repeat was the same message (its key), so the mailbox holds one of each.
    assert len(handed) == len(notes)
    assert figures["late_over_5_min"] == 0
    # Every audit event is sealed once, however the sealer was cut off, and the ledger holds.
    assert figures["audit_unsealed_after"] == 0
    assert figures["audit_sealed"] == figures["audit_events"] >= KILLS * PER_ROUND
    assert verify().problem is None
