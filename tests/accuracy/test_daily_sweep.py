"""The deadline sweep runs once a day from DEADLINE_SWEEP_HOUR, however often beat asks
and however often beat is restarted; a run that died half way is taken over."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from accuracy.models import SweepRun
from accuracy.tasks import daily_deadline_sweep

pytestmark = pytest.mark.django_db
LONDON = ZoneInfo("Europe/London")


def at(hour: int, minute: int = 0):
    return time_machine.travel(datetime(2026, 12, 7, hour, minute, tzinfo=LONDON), tick=False)


def test_not_before_the_hour_then_once_that_day(settings):
    settings.DEADLINE_SWEEP_HOUR = 7
    with at(6, 59):
        assert daily_deadline_sweep.delay().get() is None
        assert not SweepRun.objects.exists()
    with at(7, 0):
        assert daily_deadline_sweep.delay().get() == {"reminders": 0, "escalations": 0}
    with at(7, 5):
        assert daily_deadline_sweep.delay().get() is None
    with at(23, 55):
        assert daily_deadline_sweep.delay().get() is None
    run = SweepRun.objects.get()
    assert run.day == date(2026, 12, 7)
    assert run.finished_at is not None


def test_a_run_that_died_is_taken_over_after_half_an_hour(settings):
    settings.DEADLINE_SWEEP_HOUR = 0
    with at(9, 0):
        SweepRun.objects.create(day=date(2026, 12, 7), started_at=timezone.now())  # its worker died
    with at(9, 20):
        assert daily_deadline_sweep.delay().get() is None  # perhaps still running
    with at(9, 31):
        assert daily_deadline_sweep.delay().get() == {"reminders": 0, "escalations": 0}
        assert SweepRun.objects.get().started_at == timezone.now()
    with at(10, 5):
        assert daily_deadline_sweep.delay().get() is None
    assert SweepRun.objects.get().finished_at is not None


def test_each_new_day_has_its_run(settings):
    settings.DEADLINE_SWEEP_HOUR = 7
    for day in range(3):
        with time_machine.travel(datetime(2026, 12, 7, 8, tzinfo=LONDON) + timedelta(days=day), tick=False):
            assert daily_deadline_sweep.delay().get() is not None
    assert SweepRun.objects.count() == 3
