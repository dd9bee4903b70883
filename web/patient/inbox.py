"""The portal inbox: a user's own notifications (emergency access to their record,
correction updates). Another user's message answers as a missing one does."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.models import Notification

PAGE_SIZE = 20


@login_required
@require_http_methods(["GET", "POST"])
def inbox(request):
    """The signed-in user's notifications, newest first; a POST marks them all as read."""
    mine = Notification.objects.filter(user=request.user)
    if request.method == "POST":
        changed = mine.filter(read_at__isnull=True).update(read_at=timezone.now())
        if changed:
            messages.success(request, "All your messages are marked as read.")
        return redirect("portal:inbox")
    page = Paginator(mine.order_by("-created_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "inbox/inbox.html",
        {"page": page, "unread": mine.filter(read_at__isnull=True).count()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def inbox_item(request, pk: int):
    """One of the user's own notifications; opening it marks it as read."""
    note = get_object_or_404(Notification, pk=pk, user=request.user)
    if request.method == "POST" and request.POST.get("mark") == "unread":
        note.read_at = None
        note.save(update_fields=["read_at"])
        return redirect("portal:inbox")
    if note.read_at is None:
        note.read_at = timezone.now()
        note.save(update_fields=["read_at"])
    return render(request, "inbox/item.html", {"note": note})
