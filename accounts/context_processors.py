"""Values every page template may use."""

from functools import cached_property

from .models import Notification


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
