"""The JSON API at /api/v1/: notifications, consent choices, correction requests and the
audit trail, for what FHIR does not cover well.

Thin views: each parses input with a serializer, asks the same functions as the web
pages (consent.services, consent.sharing_text, consent.access_log, consent.ig_queries,
accuracy.services) and shapes the answer. Who is asking is api.auth.api_actor's answer;
whether they may see a record is the policy's. Another patient's object answers exactly
as a missing one does (404), and every error is JSON: {"detail": ..., "field": ...}.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, time

from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

import audit
from accounts.models import Notification
from accuracy import services as corrections
from accuracy.models import CorrectionRequest
from accuracy.selectors import Copies, release_copies, visible_requests
from accuracy.timeline import staff_timeline_rows, timeline_rows
from audit.models import AuditEvent
from consent import access_log, ig_queries, sharing_text
from consent.models import ConsentChoice
from consent.policy import Action, Actor, ActorRole, NotFound, authorise, current_choices, open_record
from consent.services import InvalidChange, change_consent, who_can_see

from . import serializers as s
from .fhir.search import MAX_OFFSET
from .permissions import BearerAuthentication, PortalPermission, actor_of

# --- Errors ---------------------------------------------------------------------------


def _first_message(errors) -> tuple[str | None, str]:
    """(field, message) of the first error in DRF's nested error structure."""
    if isinstance(errors, dict):
        for name, value in errors.items():
            _, message = _first_message(value)
            return (None if name == "non_field_errors" else name), message
    if isinstance(errors, list) and errors:
        return _first_message(errors[0])
    return None, str(errors)


def _flat(errors) -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    for name, value in errors.items():
        messages = value if isinstance(value, list) else [value]
        flat[name] = [_first_message(m)[1] for m in messages]
    return flat


def json_errors(exc, context):
    """DRF's handler, with every body as {"detail": ...}; a field error names its field."""
    if isinstance(exc, NotFound | Http404):
        exc = exceptions.NotFound()  # one body for missing and not yours
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        field, message = _first_message(response.data)
        body = {"detail": message, "errors": _flat(response.data)}
        if field:
            body["field"] = field
        response.data = body
    elif isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": _first_message(response.data)[1]}
    return response


def field_error(field: str, message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({field: [message]})


ERRORS = {
    401: OpenApiResponse(s.ErrorSerializer, description="Not signed in, or the bearer token is not valid"),
    403: OpenApiResponse(s.ErrorSerializer, description="Not for this role, or a scope is missing"),
}
NOT_FOUND = {404: OpenApiResponse(s.ErrorSerializer, description="Missing, or not yours: alike")}
INVALID = {400: OpenApiResponse(s.ErrorSerializer, description="An input is wrong; `field` names it")}


class Page(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200

    def get_offset(self, request) -> int:
        """DRF's offset, refused (400 naming it) beyond the largest a search answers."""
        offset = super().get_offset(request)
        if offset > MAX_OFFSET:
            raise field_error(self.offset_query_param, f"offset must be at most {MAX_OFFSET}")
        return offset

    def paginated(self, data, **extra) -> Response:
        return Response(
            {
                **extra,
                "count": self.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )


class PortalView(APIView):
    """Authentication, permission and errors shared by every view of the JSON API."""

    authentication_classes = [BearerAuthentication, *APIView.authentication_classes]
    permission_classes = [PortalPermission]
    roles: tuple[ActorRole, ...] = ()
    required_scope: dict[str, str] = {}

    def get_exception_handler(self):
        return json_errors

    @property
    def actor(self) -> Actor:
        return actor_of(self.request)

    def paginate(self, rows, serialize, **extra) -> Response:
        page = Page()
        shown = page.paginate_queryset(rows, self.request, view=self)
        return page.paginated(serialize(shown), **extra)


PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description="How many results a page holds (at most 200)"),
    OpenApiParameter("offset", int, description="How many results to skip"),
]


def _audit_page(actor: Actor, patient, action: str, page: str, **detail) -> None:
    audit.record(
        action,
        patient=patient,
        purpose="patient-access",
        detail={"api": "json", "page": page, **detail},
        **actor.audit_fields(),
    )


# --- Notifications --------------------------------------------------------------------

EVERY_USER = (ActorRole.PATIENT, ActorRole.CLINICIAN, ActorRole.IG_OFFICER)


class NotificationList(PortalView):
    roles = EVERY_USER
    required_scope = {"GET": "Communication.read"}

    @extend_schema(
        summary="My notifications, newest first",
        operation_id="notifications_list",
        parameters=PAGE_PARAMETERS,
        responses={200: s.NotificationPageSerializer, **ERRORS},
    )
    def get(self, request):
        mine = Notification.objects.filter(user=self.actor.user).order_by("-created_at", "-id")
        return self.paginate(mine, lambda rows: s.NotificationSerializer(rows, many=True).data)


class NotificationRead(PortalView):
    roles = EVERY_USER
    required_scope = {"POST": "Communication.read"}  # as opening it in the inbox does

    @extend_schema(
        summary="Mark one of my notifications as read",
        request=None,
        responses={200: s.NotificationSerializer, **ERRORS, **NOT_FOUND},
    )
    def post(self, request, pk: int):
        note = get_object_or_404(Notification, pk=pk, user=self.actor.user)
        if note.read_at is None:
            note.read_at = timezone.now()
            note.save(update_fields=["read_at"])
        return Response(s.NotificationSerializer(note).data)


# --- Consent --------------------------------------------------------------------------

PATIENTS = (ActorRole.PATIENT,)
ONLY_PATIENTS = "Only a patient can use this, for their own record"


def _choice_data(choice: ConsentChoice) -> dict:
    return {
        "id": choice.pk,
        "scope": choice.scope,
        "decision": choice.decision,
        "organisation": (
            {"ods_code": choice.organisation.ods_code, "name": choice.organisation.name}
            if choice.organisation_id
            else None
        ),
        "category": choice.category,
        "until": choice.until,
        "reason": choice.reason,
        "recorded_at": choice.recorded_at,
        "sentence": sharing_text.choice_sentence(choice),
    }


def _choices_data(choices) -> list:
    return s.ConsentChoiceSerializer([_choice_data(c) for c in choices], many=True).data


class ConsentView(PortalView):
    roles = PATIENTS
    role_message = ONLY_PATIENTS
    required_scope = {"GET": "Consent.read"}

    @extend_schema(
        summary="My sharing choices in force, and what each organisation can see",
        responses={200: s.ConsentSerializer, **ERRORS},
    )
    def get(self, request):
        actor = self.actor
        patient, _ = authorise(actor, Action.READ_CONSENT, actor.patient_id)
        organisations = [
            {
                "organisation": {"ods_code": row.organisation.ods_code, "name": row.organisation.name},
                "sentence": row.sentence,
                "shared": row.shared,
                "not_shared": row.not_shared,
                "holds_items": row.holds_items,
                "because": row.because,
            }
            for row in who_can_see(patient)
        ]
        in_force = sorted(current_choices(patient).values(), key=lambda c: (c.recorded_at, c.pk))
        _audit_page(actor, patient, Action.READ_CONSENT.value, "consent")
        return Response(
            {
                "default": sharing_text.default_sentence(settings.CONSENT_MODEL),
                "choices": _choices_data(in_force),
                "organisations": organisations,
            }
        )


class ConsentHistory(PortalView):
    roles = PATIENTS
    role_message = ONLY_PATIENTS
    required_scope = {"GET": "Consent.read"}

    @extend_schema(
        summary="Every sharing choice I have made, oldest first",
        operation_id="consent_history_list",
        parameters=PAGE_PARAMETERS,
        responses={200: s.ConsentChoicePageSerializer, **ERRORS},
    )
    def get(self, request):
        actor = self.actor
        patient, _ = authorise(actor, Action.READ_CONSENT, actor.patient_id)
        rows = ConsentChoice.objects.filter(patient=patient).select_related("organisation")
        response = self.paginate(rows.order_by("recorded_at", "id"), _choices_data)
        _audit_page(actor, patient, Action.READ_CONSENT.value, "history")
        return response


class ConsentChange(PortalView):
    roles = PATIENTS
    role_message = ONLY_PATIENTS
    required_scope = {"POST": "Consent.write"}

    @extend_schema(
        summary="Make a new sharing choice",
        request=s.ConsentChangeSerializer,
        responses={201: s.ConsentChoiceSerializer, **INVALID, **ERRORS},
    )
    def post(self, request):
        actor = self.actor
        given = s.ConsentChangeSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        until = data.get("until")
        try:
            choice = change_consent(
                actor=actor,
                patient_id=actor.patient_id,
                scope=data["scope"],
                decision=data["decision"],
                organisation=data.get("organisation"),
                category=data.get("category", ""),
                # As on the web page: the choice lapses as the chosen day begins.
                until=timezone.make_aware(datetime.combine(until, time.min)) if until else None,
                reason=data.get("reason", ""),
            )
        except InvalidChange as problem:
            raise field_error(problem.field or "non_field_errors", str(problem)) from None
        return Response(_choices_data([choice])[0], status=status.HTTP_201_CREATED)


# --- Corrections ----------------------------------------------------------------------

CORRECTION_ROLES = (ActorRole.PATIENT, ActorRole.CLINICIAN, ActorRole.SYSTEM)


def _summary(request: CorrectionRequest, copies: Copies, today) -> dict:
    left = corrections.days_left(request, today)
    return {
        "id": request.pk,
        "status": request.status,
        "business_status": request.business_status,
        "state": request.get_business_status_display(),
        "owner": {"ods_code": request.owner.ods_code, "name": request.owner.name},
        "item_display": copies.item_display,
        "element": request.element,
        "element_label": request.element_label,
        "proposed": copies.proposed,
        "received_on": request.received_on,
        "due_on": request.due_on,
        "overdue": request.is_open and left < 0,
        "days_left": left,
        "created_at": request.created_at,
        "revision": request.revision,
    }


def _staff_timeline(request: CorrectionRequest) -> list[dict]:
    # As the clinician's workspace shows it: every step, the patient named by role.
    return [asdict(row) for row in staff_timeline_rows(request)]


class CorrectionList(PortalView):
    roles = CORRECTION_ROLES
    role_message = "Only patients and the staff of data-owning organisations have correction requests"
    required_scope = {"GET": "Task.read", "POST": "Communication.write"}

    method_roles = {
        "POST": (PATIENTS, "Only a patient can ask for an item of their own record to be corrected")
    }

    @extend_schema(
        summary="My correction requests (a patient), or my organisation's queue (staff)",
        operation_id="corrections_list",
        parameters=PAGE_PARAMETERS,
        responses={200: s.CorrectionPageSerializer, **ERRORS},
    )
    def get(self, request):
        actor = self.actor
        today = timezone.localdate()

        def summaries(page: list[CorrectionRequest]) -> list:
            copies = release_copies(actor, page, detail={"api": "json"})
            rows = [_summary(r, copies[r.pk], today) for r in page]
            return s.CorrectionSummarySerializer(rows, many=True).data

        # The same requests in the same order as the patient's pages and the workspace queue.
        return self.paginate(visible_requests(actor), summaries)

    @extend_schema(
        summary="Ask for an item of my record to be corrected",
        request=s.CorrectionSubmitSerializer,
        responses={
            201: s.CorrectionDetailSerializer,
            **INVALID,
            **ERRORS,
            409: OpenApiResponse(
                s.DuplicateErrorSerializer, description="An open request on this item exists: `existing`"
            ),
        },
    )
    def post(self, request):
        actor = self.actor
        given = s.CorrectionSubmitSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            created = corrections.submit_correction(
                actor=actor,
                entry_id=data["entry"],
                element=data["element"],
                proposed=data["proposed"],
                reason=data["reason"],
                contact_preference=data["contact_preference"],
                contact_phone=data["contact_phone"],
                contact_address=data["contact_address"],
                contact_postcode=data["contact_postcode"],
            )
        except corrections.DuplicateRequest as duplicate:
            return Response(
                {"detail": str(duplicate), "existing": str(duplicate.existing.pk)},
                status=status.HTTP_409_CONFLICT,
            )
        except corrections.InvalidStep as problem:
            raise field_error(problem.field or "non_field_errors", str(problem)) from None
        except NotFound:
            # Missing and not the patient's own look the same.
            raise field_error("entry", "No item of your record has this id") from None
        return Response(_detail(actor, created), status=status.HTTP_201_CREATED)


def _detail(actor: Actor, request: CorrectionRequest) -> dict:
    today = timezone.localdate()
    copies = release_copies(actor, [request], detail={"api": "json"})[request.pk]
    if actor.role == ActorRole.PATIENT:
        steps = [asdict(row) for row in timeline_rows(request, list(request.timeline.all()), reader=actor)]
    else:
        steps = _staff_timeline(request)
    data = {
        **_summary(request, copies, today),
        "current_text": copies.current_text,
        "reason": copies.reason,
        "contact_preference": request.contact_preference,
        "contact_phone": request.contact_phone,
        "contact_address": request.contact_address,
        "contact_postcode": request.contact_postcode,
        "first_due_on": request.first_due_on,
        "extension_reason": request.extension_reason,
        "decision_code": request.decision_code,
        "decision_text": request.decision_text,
        "decided_at": request.decided_at,
        "timeline": steps,
    }
    return s.CorrectionDetailSerializer(data).data


class CorrectionDetail(PortalView):
    roles = CORRECTION_ROLES
    role_message = CorrectionList.role_message
    required_scope = {"GET": "Task.read"}

    @extend_schema(
        summary="One correction request: its state, deadline and timeline",
        responses={200: s.CorrectionDetailSerializer, **ERRORS, **NOT_FOUND},
    )
    def get(self, request, request_id):
        actor = self.actor
        found = corrections.request_for(actor, request_id)  # NotFound alike: 404
        return Response(_detail(actor, found))


# --- The audit trail ------------------------------------------------------------------


def _event_data(event: AuditEvent) -> dict:
    return {
        "seq": event.seq,
        "occurred_at": event.occurred_at,
        "action": event.action,
        "outcome": event.outcome,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "organisation": (
            {"ods_code": event.organisation.ods_code, "name": event.organisation.name}
            if event.organisation
            else None
        ),
        "patient_id": event.patient_id,
        "entry_count": len(event.entries),
        "purpose": event.purpose,
        "reason": event.reason,
    }


AUDIT_PAGES = PolymorphicProxySerializer(
    component_name="AuditEventsPage",
    serializers=[s.AuditTrailPageSerializer, s.AccessLogPageSerializer],
    resource_type_field_name=None,
)


class AuditEvents(PortalView):
    """IG officers search the whole trail; a patient reads their own access log."""

    roles = (ActorRole.IG_OFFICER, ActorRole.PATIENT)
    role_message = "Only information governance and patients (their own access log) can read this"
    required_scope = {"GET": "AuditEvent.read"}

    @extend_schema(
        summary="Search the audit trail (IG officers), or my own access log (a patient)",
        operation_id="audit_events_list",
        parameters=[s.AuditQuerySerializer, *PAGE_PARAMETERS],
        responses={200: AUDIT_PAGES, **INVALID, **ERRORS},
    )
    def get(self, request):
        query = s.AuditQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        if self.actor.role == ActorRole.IG_OFFICER:
            return self.search(query.validated_data)
        return access_log_page(self, query.validated_data)

    def search(self, data) -> Response:
        # The IG console's lookups, and its words for a search naming someone unknown.
        try:
            patient = ig_queries.searched_patient(data.get("patient"))
            actor = ig_queries.searched_user(data.get("actor"))
        except ig_queries.UnknownSubject as unknown:
            raise field_error(unknown.field, unknown.message) from None
        filters = ig_queries.AuditFilters(
            patient=patient,
            actor=actor,
            organisation=data.get("organisation"),
            action=data.get("action", ""),
            outcome=data.get("outcome", ""),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )
        page = Page()
        shown = page.paginate_queryset(ig_queries.search_events(filters), self.request, view=self)
        audit.record(
            "audit.search",
            purpose="governance",
            detail={"api": "json", "filters": filters.as_detail(), "offset": page.offset},
            **{**self.actor.audit_fields(), "organisation": None},
        )
        results = s.AuditEventSerializer([_event_data(e) for e in shown], many=True).data
        return page.paginated(results, log="audit-trail")


def access_log_page(view: PortalView, data) -> Response:
    """Who has looked at the patient's record, newest first, as the access log page shows."""
    actor = view.actor
    filters = access_log.LogFilters(
        organisation=data.get("organisation"),
        date_from=data.get("date_from"),
        date_to=data.get("date_to"),
        emergency_only=data.get("emergency", False),
    )
    # The one audit event is the patient's read of their own audit trail, naming the
    # items of their record it shows them (as on the page).
    access = open_record(actor, actor.patient_id, action=Action.READ_AUDIT)
    page = Page()
    events = page.paginate_queryset(
        access_log.looks(access.patient, viewer=actor.user, filters=filters), view.request, view=view
    )
    # What people acting for the patient did, their reads named in the same audited read.
    acts, more = access_log.proxy_events(access.patient, filters=filters)
    looks, people = access_log.shown_log(
        access,
        list(events),
        acts,
        detail={"api": "json", "page": "access-log", "offset": page.offset, **filters.as_query()},
    )
    return page.paginated(
        s.LookSerializer(looks, many=True).data,
        log="access-log",
        people_acting=s.PersonActingSerializer(people, many=True).data,
        people_acting_more=more,
    )


class AccessLog(PortalView):
    roles = PATIENTS
    role_message = ONLY_PATIENTS
    required_scope = {"GET": "AuditEvent.read"}

    @extend_schema(
        summary="Who has looked at my record: when, what and why",
        operation_id="access_log_list",
        parameters=[s.AccessLogQuerySerializer, *PAGE_PARAMETERS],
        responses={200: s.AccessLogPageSerializer, **INVALID, **ERRORS},
    )
    def get(self, request):
        query = s.AccessLogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return access_log_page(self, query.validated_data)
