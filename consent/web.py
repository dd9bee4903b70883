"""The policy's view of a web request: who is asking, for which organisation, from where."""

from accounts.access import ACTING_FOR_SESSION_KEY, PROXY_SESSION_KEY
from accounts.client_address import client_address
from phr.models import Organisation

from .policy import Actor, actor_for

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
    return actor_for(
        request.user,
        organisation=organisation,
        source_address=client_address(request),
        proxy_grant=session.get(PROXY_SESSION_KEY),
    )
