"""Handing work to the Celery worker without letting the queue decide whether an action
succeeded.

Whatever must happen later is first written to the database in the action's own
transaction (a notification row, an ingest batch); the queued message only says "look
now". So when the broker cannot take the message, the action has still succeeded: the
row waits, and the periodic sweep that owns it picks it up once the broker is back.
"""

import logging
from functools import partial

from django.db import transaction
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
