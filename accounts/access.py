"""Gatekeeping for the staff pages: the right role, and two-factor authentication
enrolled before any page with patient data or audit data is reachable."""

from functools import wraps

from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import redirect

ACTING_FOR_SESSION_KEY = "acting_for_organisation"
# The proxy grant (accounts.ProxyAccess id) a signed-in person acts under, when they have
# chosen to act for someone else; absent, they act for themselves.
PROXY_SESSION_KEY = "acting_for_patient"


def has_mfa(user) -> bool:
    """An authenticator app or a security key (recovery codes alone are not a factor)."""
    return Authenticator.objects.filter(
        user=user, type__in=[Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]
    ).exists()


def set_up_second_factor(request):
    """Where someone without a second factor is sent from the pages that need one: the
    authenticator set-up page, with a message saying why."""
    messages.info(request, "Set up two-factor authentication before you can use this part of the portal.")
    return redirect("mfa_activate_totp")


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
                return set_up_second_factor(request)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
