"""Pages that belong to the site as a whole rather than to one app."""

import celery
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts import outbox
from accounts.access import has_mfa
from accounts.models import Notification
from accuracy.models import CorrectionRequest
from accuracy.services import workload
from audit.ledger import sealing_state
from consent.ig_queries import unreviewed_break_glass
from consent.proxies import active_grants_of
from consent.web import request_actor

STAFF_HOMES = {"clinician": "home/clinician.html", "ig_officer": "home/ig.html"}


# The clinician's counts as the home page lists them: (queue view, label, hidden link
# words, word for a count that needs action now).
WORKLOAD_ROWS = (
    ("open", "Open", "the open requests", ""),
    ("overdue", "Overdue", "the overdue requests", "overdue"),
    ("due_soon", "Due within {days} days", "the requests due soon", ""),
    ("waiting", "Waiting for the patient", "the requests waiting for the patient", ""),
    ("mine", "Assigned to you", "the requests assigned to you", ""),
)


def workload_rows(work) -> list[dict]:
    """Each count, with the queue view that lists the requests it counts."""
    return [
        {
            "show": show,
            "label": label.format(days=work.soon_days),
            "count": getattr(work, show),
            "see": see,
            "warn": warn,
        }
        for show, label, see, warn in WORKLOAD_ROWS
    ]


def patient_home(user) -> dict:
    """For a patient with a linked record: their correction requests still open, and those
    where the organisation waits for the patient's answer (numbers only, no item)."""
    link = getattr(user, "patient_link", None) if hasattr(user, "patient_link") else None
    if link is None:
        return {}
    requests = CorrectionRequest.objects.filter(patient_id=link.patient_id).open()
    return {
        "open_requests": requests.count(),
        "answers_needed": requests.waiting_on_patient().count(),
        "emergency_notice": unread_emergency_access(user),
    }


def unread_emergency_access(user) -> Notification | None:
    """The latest message, still unread, telling the patient someone used emergency
    access to their record: the home page shows it until they have read it."""
    return (
        Notification.objects.filter(user=user, kind=Notification.Kind.BREAK_GLASS, read_at__isnull=True)
        .order_by("-created_at", "-id")
        .first()
    )


@never_cache
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """What the portal is, for patients and visitors; for staff, what waits for them.
    The numbers need the second factor the staff pages need: until it is set up, staff
    are asked to set it up."""
    user = request.user
    role = user.role if user.is_authenticated else None
    if role not in STAFF_HOMES:
        context = {**patient_home(user), "proxy_grants": active_grants_of(user)} if role == "patient" else {}
        return render(request, "home.html", context)
    context = {"has_mfa": has_mfa(user)}
    if context["has_mfa"] and role == "clinician":
        organisation = request_actor(request).organisation
        context["organisation"] = organisation
        context["work_rows"] = (
            workload_rows(workload(organisation, user)) if organisation is not None else None
        )
    elif context["has_mfa"]:
        today = timezone.localdate()
        context["overdue"] = CorrectionRequest.objects.overdue(today).count()
        context["unreviewed"] = unreviewed_break_glass().count()
        context["sealing"] = sealing_state()
    return render(request, STAFF_HOMES[role], context)


# What /healthz says of each part: it answers, it does not, or there is none to ask
# (no CELERY_BROKER_URL: tasks run in the web process).
OK, UNAVAILABLE, IN_PROCESS = "ok", "unavailable", "in-process"
# Seconds the broker has to accept a connection and answer: /healthz must answer well
# within the load balancer's and compose's health-check timeouts.
BROKER_TIMEOUT = 1
# Also for a broker that accepts the connection and then says nothing: socket_timeout is
# Redis's, read_timeout and write_timeout AMQP's; each ignores the others.
BROKER_TIMEOUTS = dict.fromkeys(("socket_timeout", "read_timeout", "write_timeout"), BROKER_TIMEOUT)


def database_state() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return OK


def broker_state() -> str:
    """One connection attempt, no retry. The URL is read now, not when Celery was set up."""
    url = settings.CELERY_BROKER_URL
    if not url:
        return IN_PROCESS
    with celery.current_app.connection_for_write(
        url, connect_timeout=BROKER_TIMEOUT, transport_options=BROKER_TIMEOUTS
    ) as broker:
        broker.ensure_connection(max_retries=0)
    return OK


# Each part /healthz reports, by name: a function giving its state as JSON. A part
# whose function raises is "unavailable".
def cache_state() -> str:
    """ "ok", or "database" while the Redis cache does not answer and the database's table
    counts sign-in attempts instead (config.cache)."""
    answers = getattr(caches["default"], "redis_answers", None)
    return "ok" if answers is None or answers() else "database"


HEALTH_PARTS = {
    "database": database_state,
    "broker": broker_state,
    "cache": cache_state,
    # Emails owed and how many are overdue: a growing "overdue" means nothing sends them.
    "outbox": outbox.backlog,
    # How long the oldest audit event has waited to be sealed; "late" past the window.
    "audit": sealing_state,
}


def _state(check) -> object:
    try:
        return check()
    except Exception:  # whatever the failure, the part is unavailable; /healthz still answers
        return UNAVAILABLE


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Each part's state, and 503 only when the database does not answer: without the
    broker, pages still read and actions are still saved, so the web stays in service.
    Says nothing about anyone's record."""
    parts = {name: _state(check) for name, check in HEALTH_PARTS.items()}
    return JsonResponse(parts, status=200 if parts["database"] == OK else 503)


def nhsuk_icon(request: HttpRequest, name: str) -> HttpResponse:
    """The compiled nhsuk-frontend stylesheet asks for its icons at /assets/images/...;
    send those requests to where the files are really served from."""
    return HttpResponsePermanentRedirect(static(f"nhsuk/assets/images/{name}"))
