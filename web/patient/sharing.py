"""The patient's sharing pages: who can see my record, my choices, who has looked.

Each page works on the signed-in patient's own, verified record only: the patient is
taken from their account link, never from the request. Who may see what is always the
policy's answer (consent.policy.sharing_for, decide, permitted_entries); these views
parse input, ask, audit the page and render.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import wraps
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import audit
from accounts.models import AccessAlertPreference
from accuracy import record_display as display
from consent import access_alerts, access_log, sharing_text
from consent.fhir import consent_resource
from consent.models import ConsentChoice, Decision, Scope
from consent.policy import (
    Action,
    Actor,
    ActorRole,
    NotFound,
    authorise,
    choices_in_force,
    current_choices,
    decide,
    open_record,
    patient_themself,
    permitted_entries,
    sharing_for,
)
from consent.services import InvalidChange, categories_to_choose, change_consent, holders
from consent.services import who_can_see as who_can_see_rows
from consent.web import request_actor
from phr.models import Organisation, RecordEntry
from web.common import DayRangeForm, typed_end_date

LOG_PAGE_SIZE = 20


# --- The gate ---------------------------------------------------------------------------


def _link_record_url() -> str | None:
    try:
        return reverse("portal:link_record")
    except NoReverseMatch:
        return None


def patient_page(view):
    """Signed-in patients with a linked record only; the view gets their actor.

    Anonymous visitors go to sign in; anyone else (no linked record yet, or staff) gets a
    page that says so and points to linking a record.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        actor = request_actor(request)
        if actor.role != ActorRole.PATIENT or actor.patient_id is None:
            return render(
                request,
                "sharing/no_record.html",
                {"link_url": _link_record_url(), "is_patient": actor.role == ActorRole.PATIENT},
            )
        try:
            return view(request, actor, *args, **kwargs)
        except NotFound:
            raise Http404 from None

    return wrapper


def patient_themself_page(view):
    """A page of what stays the patient's alone (policy.patient_themself): the same as
    patient_page, and a 404 for anyone acting for the patient."""

    @patient_page
    @wraps(view)
    def wrapper(request, actor: Actor, *args, **kwargs):
        patient_themself(actor)
        return view(request, actor, *args, **kwargs)

    return wrapper


def _audit_page(actor: Actor, patient, action: str, page: str, **detail) -> None:
    audit.record(
        action,
        patient=patient,
        purpose="patient-access",
        detail={"page": page, **detail},
        **actor.audit_fields(),
    )


# --- Who can see my record ----------------------------------------------------------------


@require_GET
@patient_page
def who_can_see(request, actor: Actor):
    """Every member organisation and what it can see under the patient's current choices."""
    patient, _ = authorise(actor, Action.READ_CONSENT, actor.patient_id)
    rows = who_can_see_rows(patient)
    _audit_page(actor, patient, Action.READ_CONSENT.value, "who-can-see")
    return render(
        request,
        "sharing/who_can_see.html",
        {
            "rows": rows,
            "default_sentence": sharing_text.default_sentence(settings.CONSENT_MODEL),
            "break_glass_minutes": settings.BREAK_GLASS_MINUTES,
        },
    )


def _grouped_by_kind(items: list[RecordEntry]) -> list[tuple[str, list[RecordEntry]]]:
    """Items under their kinds' titles, in the kinds' order, as the record shows them."""
    groups: dict[str, list[RecordEntry]] = {kind.slug: [] for kind in display.KINDS}
    for item in items:
        groups[display.kind_of(item.resource_type).slug].append(item)
    return [(display.KINDS_BY_SLUG[slug].title, found) for slug, found in groups.items() if found]


@require_GET
@patient_page
def preview(request, actor: Actor, organisation_id: int):
    """The patient's own items that one organisation would see, shown to the patient."""
    # What an organisation would see follows from the patient's sharing choices: someone
    # acting for them sees it only with the right to manage sharing.
    authorise(actor, Action.READ_CONSENT, actor.patient_id)
    organisation = get_object_or_404(Organisation, pk=organisation_id)
    access = open_record(actor, actor.patient_id, action=Action.READ_RECORD)
    patient = access.patient
    # A clinician of that organisation, without emergency access: what would they see?
    hypothetical = Actor(ActorRole.CLINICIAN, organisation=organisation)
    decision = decide(hypothetical, Action.READ_RECORD, patient)
    would_see = permitted_entries(hypothetical, patient, decision).values("pk")
    # The disclosure is to the patient: read through their own view, audited as theirs.
    # Items as the record counts them (display.record_items): the preview's count is the
    # summary's count of what this organisation would see.
    items = access.read(
        lambda qs: (
            display.record_items(qs.filter(pk__in=would_see))
            .select_related("owner")
            .order_by("-clinical_date", "pk")
        ),
        detail={"preview_for": organisation.ods_code},
    )
    groups = _grouped_by_kind(items)
    ruling = sharing_for(organisation, current_choices(patient))
    return render(
        request,
        "sharing/preview.html",
        {
            "organisation": organisation,
            "sentence": sharing_text.organisation_sentence(
                organisation, ruling, holds=organisation.pk in holders(patient)
            ),
            "groups": groups,
            "count": len(items),
        },
    )


# --- My sharing choices -------------------------------------------------------------------

SCOPE_WORDS = [
    (Scope.NETWORK, "Sharing across the whole network"),
    (Scope.ORGANISATION, "One organisation: everything it could see"),
    (Scope.CATEGORY, "One kind of information, at every organisation"),
    (Scope.ORGANISATION_CATEGORY, "One kind of information, at one organisation"),
]
DECISION_WORDS = [
    (Decision.PERMIT, "Share"),
    (Decision.DENY, "Do not share"),
    (Decision.DEFAULT, "Go back to the usual rule (undo an earlier choice)"),
]
NEEDS_ORGANISATION = (Scope.ORGANISATION, Scope.ORGANISATION_CATEGORY)
NEEDS_CATEGORY = (Scope.CATEGORY, Scope.ORGANISATION_CATEGORY)
# Where the error summary sends the reader for each field.
ANCHORS = {
    "scope": "id_scope_0",
    "organisation": "id_organisation",
    "category": "id_category",
    "decision": "id_decision_0",
    "until": "until-day",
    "reason": "id_reason",
}
CHOICE_FIELDS = (
    "scope",
    "organisation",
    "category",
    "decision",
    "until_day",
    "until_month",
    "until_year",
    "reason",
)


class OrganisationField(forms.ModelChoiceField):
    """Member organisations by name, as patients know them."""

    def label_from_instance(self, obj) -> str:
        return obj.name


class ChoiceForm(forms.Form):
    """One sharing choice as typed. It parses; the rules stay in services.change_consent.
    It offers the kinds of information the actor may choose about (categories_to_choose)."""

    scope = forms.ChoiceField(
        label="What is your choice about?",
        choices=SCOPE_WORDS,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose what your choice is about",
            "invalid_choice": "Choose one of the options",
        },
    )
    organisation = OrganisationField(
        label="Organisation",
        queryset=Organisation.objects.order_by("name"),
        required=False,
        empty_label="Choose an organisation",
        help_text="Only if your choice is about one organisation.",
        error_messages={"invalid_choice": "Choose an organisation from the list"},
    )
    category = forms.ChoiceField(
        label="Kind of information",
        required=False,
        help_text="Only if your choice is about one kind of information.",
        error_messages={"invalid_choice": "Choose a kind of information from the list"},
    )
    decision = forms.ChoiceField(
        label="Your choice",
        choices=DECISION_WORDS,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose share, do not share, or go back to the usual rule"},
    )
    until_day = forms.CharField(required=False, max_length=2)
    until_month = forms.CharField(required=False, max_length=2)
    until_year = forms.CharField(required=False, max_length=4)
    reason = forms.CharField(
        label="Your reason (optional)",
        help_text="Only you and information governance can read this.",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean(self):
        data = super().clean()
        scope = data.get("scope")
        if scope in NEEDS_ORGANISATION:
            if not data.get("organisation") and "organisation" not in self.errors:
                self.add_error("organisation", "Choose an organisation")
        else:
            data["organisation"] = None
        if scope in NEEDS_CATEGORY:
            if not data.get("category") and "category" not in self.errors:
                self.add_error("category", "Choose a kind of information")
        else:
            data["category"] = ""
        data["until"] = self._until(data)
        return data

    def _until(self, data) -> datetime | None:
        until, error = typed_end_date(data)
        if error:
            self.until_error = f"{error}, or leave it empty" if "numbers" in error else error
        elif until is not None and until.date() <= timezone.localdate():
            self.until_error = "The end date must be in the future"
            return None
        return until  # the choice lapses as the chosen day begins

    def __init__(self, *args, actor: Actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.until_error = ""
        self.fields["category"].choices = [("", "Choose a kind of information")] + [
            (c, sharing_text.CATEGORY_WORDS[c].capitalize()) for c in categories_to_choose(actor)
        ]

    def is_valid(self) -> bool:
        return super().is_valid() and not self.until_error

    def error_list(self) -> list[tuple[str, str]]:
        """(anchor, message) for the error summary, in the order of the page."""
        found = []
        for name in ("scope", "organisation", "category", "decision"):
            found += [(ANCHORS[name], str(message)) for message in self.errors.get(name, [])]
        if self.until_error:
            found.append((ANCHORS["until"], self.until_error))
        found += [(ANCHORS["reason"], str(message)) for message in self.errors.get("reason", [])]
        found += [("choice-form", str(m)) for m in self.non_field_errors() if str(m)]
        return found

    def hidden_values(self) -> dict[str, str]:
        """The cleaned choice, to carry through the confirmation page."""
        data = self.cleaned_data
        until = data.get("until")
        local = timezone.localtime(until) if until else None
        return {
            "scope": data["scope"],
            "organisation": str(data["organisation"].pk) if data.get("organisation") else "",
            "category": data.get("category") or "",
            "decision": data["decision"],
            "until_day": str(local.day) if local else "",
            "until_month": str(local.month) if local else "",
            "until_year": str(local.year) if local else "",
            "reason": data.get("reason") or "",
        }

    def add_service_error(self, problem: InvalidChange) -> None:
        """A refusal from change_consent, attached to the field it is about."""
        field = getattr(problem, "field", None) or _field_for(str(problem))
        if field == "until":
            self.until_error = str(problem)
        elif field in self.fields:
            self.add_error(field, str(problem))
        else:
            self.add_error(None, str(problem))


def _field_for(message: str) -> str | None:
    # change_consent names the field for some refusals only; these are the others.
    lowered = message.lower()
    for needle, field in (("organisation", "organisation"), ("kind", "category"), ("end date", "until")):
        if needle in lowered:
            return field
    return None


def _render_form(request, form):
    errors = form.error_list() if form.is_bound else []
    return render(
        request,
        "sharing/choices.html",
        {"form": form, "errors": errors, "until_values": _until_values(form)},
        status=400 if errors else 200,
    )


def _until_values(form) -> dict[str, str]:
    source = form.data if form.is_bound else form.initial
    return {p: source.get(f"until_{p}", "") for p in ("day", "month", "year")}


@require_http_methods(["GET", "POST"])
@patient_page
def choices(request, actor: Actor):
    """The form for one new choice; a POST here comes from "Change" and keeps the values."""
    authorise(actor, Action.CHANGE_CONSENT, actor.patient_id)
    if request.method == "POST":
        initial = {name: request.POST.get(name, "") for name in CHOICE_FIELDS}
        return _render_form(request, ChoiceForm(initial=initial, actor=actor))
    return _render_form(request, ChoiceForm(actor=actor))


@require_POST
@patient_page
def confirm(request, actor: Actor):
    """Say in plain words what the choice will change; save it only when confirmed."""
    patient, _ = authorise(actor, Action.CHANGE_CONSENT, actor.patient_id)
    form = ChoiceForm(request.POST, actor=actor)
    if not form.is_valid():
        return _render_form(request, form)
    data = form.cleaned_data
    if request.POST.get("step") == "save":
        try:
            change_consent(
                actor=actor,
                patient_id=patient.pk,
                scope=data["scope"],
                decision=data["decision"],
                organisation=data["organisation"],
                category=data["category"],
                until=data["until"],
                reason=data["reason"],
            )
        except InvalidChange as problem:
            form.add_service_error(problem)
            return _render_form(request, form)
        messages.success(request, "Your sharing choice has been saved.")
        return redirect("sharing:who_can_see")
    now = timezone.now()
    proposed = ConsentChoice(
        patient=patient,
        scope=data["scope"],
        organisation=data["organisation"],
        category=data["category"],
        decision=data["decision"],
        until=data["until"],
        recorded_at=now,
    )
    # The choices recorded before now, and the same with the proposed one added: the
    # policy's own rule (choices_in_force, sharing_for) answers both.
    earlier = list(
        ConsentChoice.objects.filter(patient=patient, recorded_at__lt=now).select_related("organisation")
    )
    before, after = choices_in_force(earlier, now), choices_in_force([*earlier, proposed], now)
    organisations = list(Organisation.objects.order_by("name"))
    held = holders(patient)
    ruling_before = {org.pk: sharing_for(org, before) for org in organisations}
    ruling_after = {org.pk: sharing_for(org, after) for org in organisations}
    _audit_page(actor, patient, Action.READ_CONSENT.value, "confirm-choice")
    return render(
        request,
        "sharing/confirm.html",
        {
            "choice_sentence": sharing_text.choice_sentence(proposed),
            "changes": sharing_text.change_sentences(
                organisations, ruling_before, ruling_after, holders=held, until=data["until"]
            ),
            "risks": sharing_text.emergency_risks(organisations, ruling_before, ruling_after),
            "after": [
                sharing_text.organisation_sentence(org, ruling_after[org.pk], holds=org.pk in held)
                for org in organisations
            ],
            "reason": data["reason"],
            "hidden": form.hidden_values(),
        },
    )


@require_GET
@patient_page
def history(request, actor: Actor):
    """Every choice the patient has made, oldest first, in words."""
    patient, _ = authorise(actor, Action.READ_CONSENT, actor.patient_id)
    rows = [
        {"choice": choice, "sentence": sharing_text.choice_sentence(choice)}
        for choice in ConsentChoice.objects.filter(patient=patient)
        .select_related("organisation", "recorded_by")
        .order_by("recorded_at", "id")
    ]
    _audit_page(actor, patient, Action.READ_CONSENT.value, "history")
    return render(request, "sharing/history.html", {"rows": rows, "user_id": request.user.pk})


@require_GET
@patient_page
def consent_fhir(request, actor: Actor):
    """The patient's choices in force as one FHIR R4 Consent, to download."""
    patient, _ = authorise(actor, Action.READ_CONSENT, actor.patient_id)
    resource = consent_resource(patient)
    _audit_page(actor, patient, Action.READ_CONSENT.value, "consent-fhir", format="fhir")
    response = HttpResponse(json.dumps(resource, indent=2), content_type="application/fhir+json")
    # No name or NHS number in the file name: downloads folders are not private.
    response["Content-Disposition"] = 'attachment; filename="my-sharing-choices.fhir.json"'
    return response


# --- Who has looked at my record -------------------------------------------------------


class LogFilterForm(DayRangeForm):
    organisation = OrganisationField(
        label="Organisation",
        queryset=Organisation.objects.order_by("name"),
        required=False,
        empty_label="All organisations",
        error_messages={"invalid_choice": "Choose an organisation from the list"},
    )
    date_from = forms.DateField(
        label="From",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a real date"},
    )
    date_to = forms.DateField(
        label="To",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a real date"},
    )
    emergency = forms.BooleanField(label="Only emergency access", required=False)

    def filters(self) -> access_log.LogFilters:
        if not self.is_valid():
            return access_log.LogFilters()
        data = self.cleaned_data
        return access_log.LogFilters(
            organisation=data["organisation"],
            date_from=data["date_from"],
            date_to=data["date_to"],
            emergency_only=data["emergency"],
        )


class AccessAlertsForm(forms.Form):
    """How the patient wants to be told that an organisation looked at their record."""

    mode = forms.ChoiceField(
        label="When should we tell you?",
        choices=AccessAlertPreference.Mode.choices,
        widget=forms.RadioSelect,
        help_text="We send a message to your inbox and an email. They never say what was looked at.",
        error_messages={
            "required": "Choose when we should tell you",
            "invalid_choice": "Choose when we should tell you",
        },
    )


ALERT_SAVED = {
    AccessAlertPreference.Mode.EACH_TIME: "We will tell you each time an organisation looks at your record.",
    AccessAlertPreference.Mode.DAILY: "We will send you one message a day listing who looked.",
    AccessAlertPreference.Mode.EMERGENCY_ONLY: "We will tell you only about emergency access.",
}


@require_http_methods(["GET", "POST"])
@patient_page
def access_log_page(request, actor: Actor):
    """Who has looked at my record: when, what and why, newest first; a POST changes how
    the patient is told when an organisation looks."""
    alerts_form = AccessAlertsForm(
        request.POST if request.method == "POST" else None,
        prefix="alerts",
        initial={"mode": access_alerts.mode_of(actor.patient_id)},
    )
    if alerts_form.is_valid():
        access_alerts.choose_alerts(actor=actor, mode=alerts_form.cleaned_data["mode"])
        messages.success(request, ALERT_SAVED[alerts_form.cleaned_data["mode"]])
        return redirect(reverse("sharing:access_log") + "#alerts")
    form = LogFilterForm(request.GET or None)
    filters = form.filters() if form.is_bound else access_log.LogFilters()
    # The page's one audit event is the patient's read of their own audit trail, naming
    # the items of their record it shows them.
    access = open_record(actor, actor.patient_id, action=Action.READ_AUDIT)
    patient = access.patient
    page = Paginator(access_log.looks(patient, viewer=request.user, filters=filters), LOG_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    # What people acting for the patient did, their reads named in the same audited read.
    acts, acts_capped = access_log.proxy_events(patient, filters=filters)
    looks, people_acting = access_log.shown_log(
        access,
        list(page.object_list),
        acts,
        detail={"page": "access-log", "page_number": page.number, **filters.as_query()},
    )
    return render(
        request,
        "sharing/access_log.html",
        {
            "form": form,
            "alerts_form": alerts_form,
            "looks": looks,
            "people_acting": people_acting,
            "acts_capped": acts_capped,
            "acts_shown": access_log.PROXY_ACTS_SHOWN,
            "page": page,
            "query": urlencode(filters.as_query()),
            "filtered": bool(filters.as_query()),
            "openings": access_log.emergency_openings(patient),
            "refused": access_log.refused_attempts(patient),
            "reviews": [
                (event, access_log.GOVERNANCE_WORDS.get(event.action, "reviewed your record's metadata"))
                for event in access_log.governance_reviews(patient)
            ],
        },
    )
