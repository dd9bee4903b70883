"""One more try for a read whose database connection was lost while it was under way.

A kept connection that the database dropped between requests is Django's to find: with
CONN_HEALTH_CHECKS it is tested and replaced before a request uses it. A connection lost
during a request is this middleware's. A GET, HEAD or OPTIONS that has written no audit
event yet has disclosed nothing, so it is run once more on a new connection, from the
session's load to the rendered page (each view's own transactions begin again; the
portal does not set ATOMIC_REQUESTS). Anything else whose connection was lost (a write, a
read that had already recorded its disclosure, a second loss) answers 503 with a plain
"try again", never a 500; a write is never run again, and its answer says to check first.

Only a connection that is gone counts: a lock or statement timeout is an error on a
connection that still works, and goes on as any other error. A streaming response is
never run again: its content is made after the response leaves this middleware.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpResponse, JsonResponse
from django.template import loader

from api.fhir.bundle import outcome
from audit.ledger import events_recorded

from .errors import API, FHIR, channel

logger = logging.getLogger(__name__)

READS = frozenset({"GET", "HEAD", "OPTIONS"})
LOST = "_database_connection_lost"  # set on the request when an attempt lost its connection
TRY_AGAIN = "The portal lost its connection to the database. Please try again in a moment."
CHECK_FIRST = "What you sent may not have been saved: check before you send it again."
CONNECTION_EXCEPTION = "08"  # SQLSTATE class: the connection failed or was lost
# The server ended the session: administrator or crash shutdown, starting up, database
# dropped, idle session timeout, idle-in-transaction timeout. (57014, a statement timeout
# or cancel, is not among them: the session goes on.)
SESSION_ENDED = frozenset({"57P01", "57P02", "57P03", "57P04", "57P05", "25P03"})


def connection_lost(error: BaseException) -> bool:
    """Whether the error means the connection is gone, not that one statement failed on a
    connection that still works (a lock or statement timeout, a deadlock, a missing table).

    The error is read, not only the connection: when a transaction ends on a lost
    connection Django opens a new one at once, so by the time a view's error is seen the
    connection may be a healthy one."""
    if not isinstance(error, (OperationalError, InterfaceError)):
        return False
    raw = connection.connection
    if raw is None or getattr(raw, "closed", False):
        return True  # closed by a failed rollback, never opened, or ended by the server
    if connection.vendor != "postgresql":
        return not connection.is_usable()
    return _session_ended(error.__cause__)


def _session_ended(cause: BaseException | None) -> bool:
    """PostgreSQL gives every error it reports a SQLSTATE; psycopg's own errors without one
    are about the connection (closed, broken, never made)."""
    if cause is None:
        return False
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate is None:
        return True
    return sqlstate.startswith(CONNECTION_EXCEPTION) or sqlstate in SESSION_ENDED


def unavailable(request) -> HttpResponse:
    """A 503 saying to try again, in the language of the channel asked (a page needs no
    database to be drawn)."""
    was_write = request.method not in READS
    message = f"{TRY_AGAIN} {CHECK_FIRST}" if was_write else TRY_AGAIN
    asked = channel(request.path)
    if asked == FHIR:
        response = outcome(503, message, code="transient")
    elif asked == API:
        response = JsonResponse({"detail": message}, status=503)
    else:
        page = loader.get_template("503.html").render({"was_write": was_write})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = "1"
    response["Cache-Control"] = "no-store"
    return response


def _signed_in(request) -> bool:
    """Loads the session and the signed-in user now, inside the retry: they are the first
    queries of most requests, otherwise made by a middleware further in."""
    user = getattr(request, "user", None)
    return user is not None and user.is_authenticated


class ReconnectMiddleware:
    """Runs a read once more on a new connection when its connection was lost before it
    disclosed anything; answers 503, not 500, whenever a lost connection ends a request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        written_before, user = events_recorded(), getattr(request, "user", None)
        response = self._attempt(request)
        if self._lost(request) and self._may_run_again(request, written_before):
            logger.warning("Database connection lost during a %s; running it again", request.method)
            request.user = user  # loaded by the first attempt, or loaded now
            response = self._attempt(request)
            self._lost(request)
        return response

    def process_exception(self, request, exception):
        """Django hands a view's errors here (a middleware sees only responses): a lost
        connection is marked on the request and answered 503; anything else goes on."""
        if not connection_lost(exception):
            return None
        setattr(request, LOST, True)
        return unavailable(request)

    def _attempt(self, request):
        try:
            _signed_in(request)
        except DatabaseError as error:
            answer = self.process_exception(request, error)
            if answer is None:
                raise
            return answer
        return self.get_response(request)

    @staticmethod
    def _lost(request) -> bool:
        """Whether the attempt lost its connection. If so the broken connection is let go,
        so that the next query (a second attempt's, the next request's) opens a new one,
        and the answer is nobody's: the middlewares on the way out do not load the user."""
        lost = getattr(request, LOST, False)
        if lost:
            setattr(request, LOST, False)
            if not connection.in_atomic_block:
                connection.close()
            request.user = AnonymousUser()
        return lost

    @staticmethod
    def _may_run_again(request, written_before: int) -> bool:
        """A read that wrote no audit event has disclosed nothing; inside a transaction
        that outlives the request (a test's) the connection cannot be replaced."""
        return (
            request.method in READS and events_recorded() == written_before and not connection.in_atomic_block
        )
