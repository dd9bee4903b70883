"""Sign-in, sign-out and two-factor events go to the audit trail.

allauth and Django announce these only through signals, so the receivers live here;
each one just writes the event (no other logic hangs on them).
"""

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from django.contrib.auth import signals as auth_signals

import audit

from .client_address import client_address


def _record(action: str, *, user=None, request=None, outcome: str = "permit", **detail) -> None:
    audit.record(
        action,
        actor=user if user is not None and user.pk else None,
        actor_label=(str(user) if user is not None and user.pk else detail.pop("login", ""))[:200],
        outcome=outcome,
        source_address=client_address(request),
        detail=detail,
    )


def logged_in(sender, request, user, **kwargs):
    _record("auth.login", user=user, request=request)


def logged_out(sender, request, user, **kwargs):
    if user is not None:
        _record("auth.logout", user=user, request=request)


def login_failed(sender, credentials, request=None, **kwargs):
    # The attempted login name is kept (to see who is being targeted); never the password.
    _record(
        "auth.login",
        request=request,
        outcome="deny",
        login=str(credentials.get("email") or credentials.get("username") or ""),
    )


def signed_up(sender, request, user, **kwargs):
    _record("auth.signup", user=user, request=request)


def password_changed(sender, request, user, **kwargs):
    _record("auth.password", user=user, request=request, change="changed")


def password_reset(sender, request, user, **kwargs):
    _record("auth.password", user=user, request=request, change="reset")


def authenticator_event(change: str):
    def receiver(sender, request, user, authenticator=None, **kwargs):
        _record(
            "auth.mfa", user=user, request=request, change=change, type=getattr(authenticator, "type", "")
        )

    return receiver


def mfa_failed(sender, request=None, user=None, **kwargs):
    _record("auth.mfa", user=user, request=request, outcome="deny", change="failed")


RECEIVERS = [
    (auth_signals.user_logged_in, logged_in),
    (auth_signals.user_logged_out, logged_out),
    (auth_signals.user_login_failed, login_failed),
    (account_signals.user_signed_up, signed_up),
    (account_signals.password_changed, password_changed),
    (account_signals.password_reset, password_reset),
    (mfa_signals.authenticator_added, authenticator_event("added")),
    (mfa_signals.authenticator_removed, authenticator_event("removed")),
    (mfa_signals.authenticator_reset, authenticator_event("reset")),
    (mfa_signals.authentication_failed, mfa_failed),
]


def connect() -> None:
    for signal, receiver in RECEIVERS:
        signal.connect(receiver, dispatch_uid=f"audit:{receiver.__name__}:{id(signal)}", weak=False)
