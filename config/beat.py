"""Celery beat's scheduler for the portal: nothing kept on disk, nothing lost by a
redeploy.

Celery's default scheduler keeps each entry's last run in a file; a new container starts
with a fresh file and waits a whole interval, so a service redeployed daily would never
run its daily sweep. Here every entry is due the moment beat starts, and the work that
must happen once a day asks the database whether it has happened (accuracy.tasks
.daily_deadline_sweep, consent.tasks.daily_access_digest; the entries are
settings.CELERY_BEAT_SCHEDULE), so starting beat again is always safe and never late. Each tick
touches BEAT_HEARTBEAT_PATH, which the container's health check reads.
"""

from datetime import UTC, datetime
from pathlib import Path

from celery.beat import Scheduler
from django.conf import settings

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


class PortalScheduler(Scheduler):
    #: seconds between ticks at most, so the heartbeat stays fresh
    max_interval = 30

    def __init__(self, *args, **kwargs):
        kwargs["max_interval"] = self.max_interval
        super().__init__(*args, **kwargs)

    def setup_schedule(self):
        super().setup_schedule()
        for entry in self.schedule.values():
            entry.last_run_at = LONG_AGO  # due now: a restart never postpones a run

    def tick(self, *args, **kwargs):
        beat_heartbeat()
        return super().tick(*args, **kwargs)


def beat_heartbeat() -> None:
    path = Path(settings.BEAT_HEARTBEAT_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
