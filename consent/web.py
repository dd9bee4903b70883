"""The policy's view of a web request: who is asking, for which organisation, from where."""

from accounts.access import ACTING_FOR_SESSION_KEY
from phr.models import Organisation

from .policy import Actor, actor_for


def client_address(request) -> str | None:
    # Behind the production proxy REMOTE_ADDR is the proxy's address; the proxy is the
    # place to pass the client's on (gunicorn's forwarded_allow_ips), not the app.
    return request.META.get("REMOTE_ADDR") or None


def request_actor(request) -> Actor:
    """The actor for this request: the user, the organisation they act for, where from."""
    organisation = None
    chosen = request.session.get(ACTING_FOR_SESSION_KEY) if hasattr(request, "session") else None
    if chosen:
        organisation = Organisation.objects.filter(pk=chosen).first()
    return actor_for(request.user, organisation=organisation, source_address=client_address(request))
