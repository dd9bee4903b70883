"""Values every page template may use."""

from functools import cached_property

from .access import PROXY_SESSION_KEY
from .models import Notification, ProxyAccess


class UnreadCount:
    """The signed-in user's unread inbox messages, counted only if a template asks."""

    def __init__(self, user):
        self._user = user

    @cached_property
    def value(self) -> int:
        return Notification.objects.filter(user=self._user, read_at__isnull=True).count()

    def __int__(self) -> int:
        return self.value

    def __bool__(self) -> bool:
        return self.value > 0

    def __str__(self) -> str:
        return str(self.value)

    def __eq__(self, other) -> bool:
        return self.value == other

    __hash__ = None


def unread_notifications(request) -> dict:
    """How many inbox messages the signed-in user has not read (0 when signed out)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"unread_notifications": 0}
    return {"unread_notifications": UnreadCount(user)}


class ProxyBanner:
    """Whose record the signed-in person is acting for, by the name in the patient index
    (never clinical content), while their chosen grant is in force, and what the grant
    lets them do: pages offer only those actions (the policy refuses the rest anyway)."""

    def __init__(self, name: str, rights: frozenset[str] = frozenset()):
        self.name = name
        self.may_correct = "correct" in rights
        self.may_share = "share" in rights


def proxy_banner(request) -> dict:
    """The banner every page shows while someone acts for another person: the grant the
    session names, if it is this user's and in force (ProxyAccess.is_active); the policy
    checks the same grant again for every read."""
    user = getattr(request, "user", None)
    session = getattr(request, "session", None)
    grant_id = session.get(PROXY_SESSION_KEY) if session is not None else None
    if grant_id is None or user is None or not user.is_authenticated or not str(grant_id).isdigit():
        return {"proxy_banner": None}
    grant = ProxyAccess.objects.select_related("patient").filter(pk=grant_id, proxy=user).first()
    if grant is None or not grant.is_active():
        return {"proxy_banner": None}
    name = grant.patient.display_name or "someone whose name is not recorded"
    return {"proxy_banner": ProxyBanner(name, grant.rights)}
