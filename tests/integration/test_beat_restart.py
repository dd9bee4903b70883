"""Beat recreated (as every deployment does) still runs the day's deadline sweep that
day, once, and sweeps the email outbox at once: real `celery beat` and `celery worker`
processes on Redis and the test database."""

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Notification
from accuracy.models import SweepMark, SweepRun
from tests.feeds import one_problem
from tests.integration.conftest import REPO, _wait_for, app_environment, start_worker, stop
from tests.personas import ClinicianFactory, CorrectionRequestFactory, OrganisationFactory, PatientUserFactory


def start_beat(env: dict, log) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.django_db(transaction=True)
def test_a_recreated_beat_runs_the_sweep_that_day_and_once(integration_services, tmp_path):
    queue = f"beat-{os.getpid()}"
    heartbeat = tmp_path / "beat-heartbeat"
    env = app_environment(
        tmp_path,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        DEADLINE_SWEEP_HOUR="0",
        BEAT_HEARTBEAT_PATH=str(heartbeat),
        OUTBOX_RETRY_SECONDS="1",
    )
    today = timezone.localdate()
    SweepRun.objects.create(
        day=today - timedelta(days=1),
        started_at=timezone.now() - timedelta(days=1),
        finished_at=timezone.now(),
    )
    gp = OrganisationFactory()
    ClinicianFactory(organisation=gp)
    patient = one_problem(gp)
    request = CorrectionRequestFactory(
        entry=patient.entries.get(resource_type="Condition"),
        requested_by=PatientUserFactory(patient=patient),
        received_on=today - timedelta(days=20),
        first_due_on=today + timedelta(days=1),
        due_on=today + timedelta(days=1),
    )
    # An email whose queued task was lost before this deployment.
    stranded = Notification.objects.create(user=request.requested_by, title="Waiting", body="x")
    Notification.objects.filter(pk=stranded.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    worker = start_worker(queue, tmp_path / "worker.log", env)
    beat_log = tmp_path / "beat.log"
    try:
        beat = start_beat(env, beat_log)
        try:
            # The day's sweep and the outbox sweep both run as beat starts, not a day later.
            _wait_for(
                lambda: SweepRun.objects.filter(day=today, finished_at__isnull=False).exists(),
                what="the sweep",
            )
            _wait_for(
                lambda: Notification.objects.get(pk=stranded.pk).email_state == Notification.Email.SENT,
                what="the outbox sweep",
            )
            assert time.time() - heartbeat.stat().st_mtime < 60
        finally:
            stop(beat)
        assert SweepMark.objects.filter(request=request, kind="remind-1").count() == 1
        first = SweepRun.objects.get(day=today)

        # A new container: beat starts again the same day. The sweep is asked for again
        # and does nothing: the day has had its run.
        beat_log.write_text("")
        beat = start_beat(env, beat_log)
        try:
            _wait_for(lambda: "daily_deadline_sweep" in beat_log.read_text(), what="beat to ask again")
            time.sleep(3)  # time for the worker to run what beat sent
        finally:
            stop(beat)
    finally:
        stop(worker)
    assert SweepRun.objects.filter(day=today).count() == 1
    assert SweepRun.objects.get(day=today).started_at == first.started_at
    assert SweepMark.objects.filter(request=request).count() == 1
    assert Notification.objects.filter(title="A correction request is due soon").count() == 1
