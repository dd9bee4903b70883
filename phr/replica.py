"""Reads that may lag by a second or two, and only those, may come from a streaming
replica (DATABASE_REPLICA_URL; config.db_router sends them).

Domain functions opt in, one by one: the IG console's audit search, signals and
exports, and the figures and data-quality counts. Nothing else does, and the router
never sends a read the consent policy makes (consent.policy's own scope) or a read inside
a transaction on the primary: a withdrawn consent takes effect on the next request,
whatever the replica's lag. With no replica configured all of this changes nothing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from contextlib import contextmanager
from functools import wraps
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

REPLICA = "replica"
T = TypeVar("T")
_tolerant = contextvars.ContextVar("lag_tolerant", default=False)


def tolerant() -> bool:
    return _tolerant.get()


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def on_the_primary_now() -> bool:
    """A transaction is open on the primary: a read inside it must see its writes."""
    return transaction.get_connection("default").in_atomic_block


@contextmanager
def lag_tolerant_reads():
    token = _tolerant.set(True)
    try:
        yield
    finally:
        _tolerant.reset(token)


def lag_tolerant(function: Callable[..., T]) -> Callable[..., T]:
    """The function's reads may come from the replica (its writes never do)."""

    @wraps(function)
    def wrapped(*args, **kwargs):
        with lag_tolerant_reads():
            return function(*args, **kwargs)

    return wrapped


def lagging(queryset: QuerySet) -> QuerySet:
    """A queryset evaluated later (a page of search results, a streamed export) that may
    be read from the replica."""
    if replica_configured() and not on_the_primary_now():
        return queryset.using(REPLICA)
    return queryset
