"""Gatekeeping for the staff pages: the right role, and two-factor authentication
enrolled before any page with patient data or audit data is reachable."""

from functools import wraps

from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import redirect

from consent.policy import Actor, actor_for

ACTING_FOR_SESSION_KEY = "acting_for_organisation"


def has_mfa(user) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def client_address(request) -> str | None:
    # Behind the production proxy REMOTE_ADDR is the proxy; the proxy is trusted to set
    # X-Forwarded-For only when SECURE_PROXY_SSL_HEADER is configured, as in production.
    return request.META.get("REMOTE_ADDR") or None


def request_actor(request) -> Actor:
    """The policy's actor for this request: the user, the organisation they act for, where from."""
    from phr.models import Organisation

    organisation = None
    chosen = request.session.get(ACTING_FOR_SESSION_KEY) if hasattr(request, "session") else None
    if chosen:
        organisation = Organisation.objects.filter(pk=chosen).first()
    return actor_for(request.user, organisation=organisation, source_address=client_address(request))


def staff_required(*roles: str):
    """Only signed-in users of these roles with two-factor authentication enrolled.

    Others get the sign-in page (anonymous), a 404 (wrong role: the page does not exist
    for them), or the two-factor set-up page (no second factor yet).
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if user.role not in roles:
                raise Http404
            if not has_mfa(user):
                messages.info(
                    request, "Set up two-factor authentication before you can use this part of the portal."
                )
                return redirect("mfa_activate_totp")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
