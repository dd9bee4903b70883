"""The policy's view of a web request: who is asking, for which organisation, from where."""

from django.contrib import messages

from accounts.access import ACTING_FOR_SESSION_KEY, PROXY_SESSION_KEY
from accounts.client_address import client_address
from phr.models import Organisation

from .policy import Actor, ActorRole, actor_for

# The client's address is worked out once, by config.middleware.ClientAddressMiddleware
# from the trusted proxies' header, and read in accounts.client_address; the pages and
# the API take it from here together with the actor.
__all__ = ["client_address", "request_actor"]


def request_actor(request) -> Actor:
    """The actor for this request: the user, the organisation they act for, where from."""
    organisation = None
    session = getattr(request, "session", {})
    chosen = session.get(ACTING_FOR_SESSION_KEY)
    if chosen:
        organisation = Organisation.objects.filter(pk=chosen).first()
    grant = session.get(PROXY_SESSION_KEY)
    actor = actor_for(
        request.user, organisation=organisation, source_address=client_address(request), proxy_grant=grant
    )
    if grant is not None and actor.proxy is None:
        # The grant ended while they were acting under it: this request acts for no one
        # (a form opened for the patient must not land on the proxy's own record), and
        # they are told; the next acts for themselves.
        session.pop(PROXY_SESSION_KEY, None)
        messages.warning(
            request, "Your access to act for someone else has ended. You are now acting for yourself."
        )
        return Actor(ActorRole.PATIENT, user=actor.user, source_address=actor.source_address)
    return actor
