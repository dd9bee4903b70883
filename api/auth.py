"""Who is calling the API, and what their token lets them do.

Every API view asks two things: ``api_actor(request)`` (the policy's Actor: a signed-in
user through the session, or a patient's app or an organisation's system through an
OAuth 2.0 bearer token) and ``has_scope(request, scope)`` (SMART scopes such as
"patient/Observation.read" or "system/Bundle.write"). The session, used by the portal's
own pages, carries every scope the user's role allows; what a token carries is what the
patient or organisation granted it. The policy still decides every read.
"""

from consent.policy import Actor
from consent.web import request_actor


def api_actor(request) -> Actor:
    """The actor for an API request (session only until OAuth 2.0 is wired in)."""
    return request_actor(request)


def has_scope(request, scope: str) -> bool:
    """Whether the request's credentials carry ``scope`` (a session carries all)."""
    return bool(getattr(request, "user", None) and request.user.is_authenticated)
