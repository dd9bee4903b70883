"""Idle and absolute session timeouts.

A record left open on a shared or lost device is a disclosure waiting to happen, so a
signed-in session ends after SESSION_IDLE_TIMEOUT seconds without a request and, however
busy, SESSION_ABSOLUTE_TIMEOUT seconds after it began. The person is signed out (which
the audit trail records) and sent to the sign-in page with a message saying why, and
back to where they were once they sign in again.
"""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login

STARTED_KEY = "session_started_at"
LAST_SEEN_KEY = "session_last_seen_at"
# The last-seen stamp is rewritten at most this often, not on every request, so that a
# page with many requests does not write its session row each time.
STAMP_GRANULARITY_SECONDS = 30


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _hours(seconds: int) -> str:
    hours = seconds / 3600
    if hours < 1:
        return _minutes(seconds)
    whole = round(hours)
    return f"{whole} hour{'s' if whole != 1 else ''}"


class SessionTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            expired = self._expiry_message(request.session, time.time())
            if expired:
                logout(request)
                messages.info(request, expired)
                return redirect_to_login(request.get_full_path())
        response = self.get_response(request)
        self._stamp(request)
        return response

    def _expiry_message(self, session, now: float) -> str | None:
        started = session.get(STARTED_KEY)
        last_seen = session.get(LAST_SEEN_KEY)
        absolute = settings.SESSION_ABSOLUTE_TIMEOUT
        idle = settings.SESSION_IDLE_TIMEOUT
        if started is not None and now - started > absolute:
            return (
                f"You were signed out because you had been signed in for {_hours(absolute)}. "
                "Sign in again to carry on."
            )
        if last_seen is not None and now - last_seen > idle:
            return f"You were signed out after {_minutes(idle)} without activity. Sign in again to carry on."
        return None

    def _stamp(self, request) -> None:
        # After the view: a sign-in has just happened, or a sign-out has emptied the session.
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return
        session = request.session
        now = time.time()
        if session.get(STARTED_KEY) is None:
            session[STARTED_KEY] = now
            session[LAST_SEEN_KEY] = now
        elif now - session.get(LAST_SEEN_KEY, 0) >= STAMP_GRANULARITY_SECONDS:
            session[LAST_SEEN_KEY] = now
