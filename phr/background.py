"""Handing work to the Celery worker without letting the queue decide whether an action
succeeded.

Whatever must happen later is first written to the database in the action's own
transaction (a notification row, an ingest batch); the queued message only says "look
now". So when the broker cannot take the message, the action has still succeeded: the
row waits, and the periodic sweep that owns it picks it up once the broker is back.
"""

import logging
from datetime import date, timedelta
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

try:  # the Redis client is there whenever the broker is Redis
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - an AMQP-only deployment
    RedisError = BrokerUnavailable

log = logging.getLogger(__name__)

UNREACHABLE = (BrokerUnavailable, RedisError, OSError)


def enqueue(task, *args) -> bool:
    """Queue one task now; False (and a warning, without the arguments) when the broker
    cannot take it."""
    try:
        task.apply_async(args)
    except UNREACHABLE as error:
        log.warning(
            "The task queue is unavailable (%s); %s waits for its sweep", type(error).__name__, task.name
        )
        return False
    return True


def after_commit(task, *args) -> None:
    """Queue the task once the current transaction commits; never raises into the
    request (robust: a failure is logged and later callbacks still run)."""
    transaction.on_commit(partial(enqueue, task, *args), robust=True)


# A daily run that started this long ago and never finished died with its worker.
ABANDONED_AFTER = timedelta(minutes=30)


def take_the_day(model, on: date):
    """The day's run of a once-a-day task (a model with day, started_at and finished_at,
    day unique) for this caller, or None when it ran, or is running, already: beat asks
    every few minutes, and two workers may ask at once; a run abandoned by a dead worker
    is taken over."""
    now = timezone.now()
    try:
        with transaction.atomic():
            return model.objects.create(day=on, started_at=now)
    except IntegrityError:
        pass
    taken = model.objects.filter(
        day=on, finished_at__isnull=True, started_at__lt=now - ABANDONED_AFTER
    ).update(started_at=now)
    return model.objects.get(day=on) if taken else None
