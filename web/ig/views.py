"""The IG console: pages for information governance officers.

Every view needs the ig_officer role and an enrolled second factor, and every view that
shows audit or consent data writes its own audit event. Patients and users travel in
URLs only as opaque ids: an NHS number or an email address is accepted by POST and
answered with a redirect to the id.
"""

from __future__ import annotations

import csv
import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import audit
from accounts.access import staff_required
from accounts.models import User
from accuracy.figures import network_figures
from accuracy.quality import network_quality
from accuracy.record_check import check_figures
from accuracy.record_display import type_name
from audit.models import Outcome
from consent import ig_queries as q
from consent.models import BreakGlassReview
from consent.policy import Action, NotFound, authorise
from consent.services import InvalidChange, review_break_glass
from consent.web import request_actor
from phr.models import Organisation, Patient
from phr.nhs_number import is_valid_nhs_number, normalise
from web.clinician.banner import index_banner
from web.common import CappedPaginator, DayRangeForm

PAGE_SIZE = 50
# The patient's own reads on their page: the latest this many (the search finds the rest).
OWN_READS_SHOWN = 20
ig_officer = staff_required("ig_officer")


# --- Forms ----------------------------------------------------------------------------


class NhsNumberField(forms.CharField):
    """An NHS number typed by an IG officer, resolved to the patient it names."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "NHS number")
        kwargs.setdefault("help_text", "10 digits, for example 485 777 3456")
        kwargs.setdefault("max_length", 14)
        super().__init__(**kwargs)
        self.widget.attrs.update({"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"})

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        if not is_valid_nhs_number(value):
            raise forms.ValidationError("Enter a valid 10-digit NHS number")
        patient = Patient.objects.filter(nhs_number=normalise(value)).first()
        if patient is None:
            raise forms.ValidationError("No patient with this NHS number is known to the network")
        return patient


class AuditSearchForm(DayRangeForm):
    """A search of the audit trail. The NHS number and email fields are read from POST
    only; a search URL carries the patient's and the user's ids instead."""

    nhs_number = NhsNumberField(required=False, label="Patient's NHS number")
    user_email = forms.EmailField(
        required=False, label="User's email address", help_text="The member of staff or patient who acted"
    )
    patient = forms.UUIDField(required=False, widget=forms.HiddenInput)
    actor = forms.IntegerField(required=False, widget=forms.HiddenInput)
    organisation = forms.ModelChoiceField(
        queryset=Organisation.objects.order_by("name"),
        to_field_name="ods_code",
        required=False,
        empty_label="Any organisation",
        label="Organisation",
    )
    action = forms.ChoiceField(
        choices=[("", "Any action"), *q.ACTION_CHOICES], required=False, label="Action"
    )
    outcome = forms.ChoiceField(choices=[("", "Permitted or denied"), *Outcome.choices], required=False)
    date_from = forms.DateField(
        required=False,
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The first day to include",
    )
    date_to = forms.DateField(
        required=False,
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The last day to include",
    )

    def clean_user_email(self):
        email = self.cleaned_data.get("user_email", "").strip().lower()
        if not email:
            return None
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise forms.ValidationError("No user has this email address")
        return user

    def clean_patient(self):
        try:
            return q.searched_patient(self.cleaned_data.get("patient"))
        except q.UnknownSubject as unknown:
            raise forms.ValidationError(unknown.message) from None

    def clean_actor(self):
        try:
            return q.searched_user(self.cleaned_data.get("actor"))
        except q.UnknownSubject as unknown:
            raise forms.ValidationError(unknown.message) from None

    def filters(self) -> q.AuditFilters:
        data = self.cleaned_data
        return q.AuditFilters(
            patient=data.get("nhs_number") or data.get("patient"),
            actor=data.get("user_email") or data.get("actor"),
            organisation=data.get("organisation"),
            action=data.get("action") or "",
            outcome=data.get("outcome") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )


class FindPatientForm(forms.Form):
    nhs_number = NhsNumberField(required=True, label="NHS number")


class VerdictForm(forms.Form):
    verdict = forms.ChoiceField(
        choices=BreakGlassReview.Verdict.choices,
        widget=forms.RadioSelect,
        label="Was the emergency access appropriate?",
        error_messages={"required": "Choose appropriate or not appropriate"},
    )
    note = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Note",
        help_text="Required when the access was not appropriate",
    )


def _search_form_from_url(request) -> AuditSearchForm:
    # Identifying values are never read from a URL, even when someone puts them there.
    data = request.GET.copy()
    for name in ("nhs_number", "user_email"):
        data.pop(name, None)
    return AuditSearchForm(data)


def _page(request, items, size: int = PAGE_SIZE):
    return Paginator(items, size).get_page(request.GET.get("page"))


# The audit search counts this many events at most: past it, the page asks the officer to
# narrow the search (the downloads still give every event).
SEARCH_COUNT_CAP = 10_000


# --- Audit search and export --------------------------------------------------------


@ig_officer
@require_http_methods(["GET", "POST"])
def search(request):
    """Search the audit trail; the search itself is audited."""
    if request.method == "POST":
        form = AuditSearchForm(request.POST)
        if form.is_valid():
            query = form.filters().as_query()
            return redirect(reverse("ig:search") + (f"?{urlencode(query)}" if query else ""))
        events = None
    else:
        form = _search_form_from_url(request)
        events = None
        if form.is_valid():
            filters = form.filters()
            paginator = CappedPaginator(q.search_events(filters), PAGE_SIZE, cap=SEARCH_COUNT_CAP)
            events = paginator.get_page(request.GET.get("page"))
            audit.record(
                "audit.search",
                purpose="governance",
                detail={"filters": filters.as_detail(), "page": events.number},
                **{**request_actor(request).audit_fields(), "organisation": None},
            )
    filters = form.filters() if form.is_valid() else q.AuditFilters()
    query = filters.as_query()
    return render(
        request,
        "ig/search.html",
        {
            "title": "Search the audit trail",
            "form": form,
            "filters": filters,
            "events": events,
            "rows": q.described(events.object_list) if events is not None else [],
            "actor_person": q.people([filters.actor.pk]).get(filters.actor.pk) if filters.actor else None,
            "query": urlencode(query),
            "remove_patient": urlencode({k: v for k, v in query.items() if k != "patient"}),
            "remove_actor": urlencode({k: v for k, v in query.items() if k != "actor"}),
        },
    )


def _export(request, kind: str):
    form = _search_form_from_url(request)
    if not form.is_valid():
        raise Http404
    filters = form.filters()
    matching = q.search_events(filters)
    total = matching.count()
    events = matching[: q.EXPORT_LIMIT]
    audit.record(
        "audit.export",
        purpose="governance",
        detail={"filters": filters.as_detail(), "format": kind, "count": min(total, q.EXPORT_LIMIT)},
        **{**request_actor(request).audit_fields(), "organisation": None},
    )
    stamp = f"audit-events-{timezone.now():%Y%m%d-%H%M%S}"
    if kind == "csv":
        writer = csv.writer(_Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in q.csv_rows(events.iterator())),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{stamp}.csv"'
        return response
    bundle = q.fhir_bundle(events, total=total)
    response = HttpResponse(json.dumps(bundle, indent=1), content_type="application/fhir+json")
    response["Content-Disposition"] = f'attachment; filename="{stamp}.json"'
    return response


class _Echo:
    """A file-like object whose write hands the line back, for streaming csv.writer."""

    def write(self, value: str) -> str:
        return value


@ig_officer
@require_GET
def export_csv(request):
    """The events of a search as CSV: metadata and entry references only."""
    return _export(request, "csv")


@ig_officer
@require_GET
def export_fhir(request):
    """The events of a search as a FHIR R4 Bundle of AuditEvents (IHE BALP style)."""
    return _export(request, "fhir")


# --- A patient's consent and the accesses under it ----------------------------------


@ig_officer
@require_http_methods(["GET", "POST"])
def find_patient(request):
    """Find a patient by NHS number (POST) and go to their consent and access page."""
    form = FindPatientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        return redirect("ig:patient", patient_id=form.cleaned_data["nhs_number"].pk)
    return render(
        request,
        "ig/find_patient.html",
        {"title": "A patient's consent and access", "form": form},
    )


@ig_officer
@require_GET
def patient(request, patient_id):
    """Who read this patient's record, under which consent, and why: one page."""
    actor = request_actor(request)
    try:
        found, _ = authorise(actor, Action.READ_CONSENT, patient_id)
    except NotFound:
        raise Http404 from None
    choices = q.consent_history(found)
    accesses = _page(request, q.others_access_events(found))
    rows = q.accesses_under_consent(accesses.object_list, choices)
    own = q.own_access_events(found)
    own_rows = q.accesses_under_consent(own[:OWN_READS_SHOWN], choices)
    audit.record(
        Action.READ_CONSENT.value,
        patient=found,
        purpose="governance",
        detail={"view": "ig.patient", "page": accesses.number},
        **actor.audit_fields(),
    )
    return render(
        request,
        "ig/patient.html",
        {
            "title": "Consent and access for one patient",
            "patient": found,
            "banner": index_banner(found),
            "choices": choices,
            "choice_numbers": {c.pk: n for n, c in enumerate(choices, start=1)},
            "recorders": q.people(c.recorded_by_id for c in choices),
            "accesses": accesses,
            "rows": rows,
            "own_rows": own_rows,
            "own_count": own.count(),
            "consent_default": (
                "shared for direct care unless the patient objects"
                if settings.CONSENT_MODEL == "opt-out"
                else "not shared until the patient agrees"
            ),
        },
    )


# --- Break-glass review -------------------------------------------------------------


def _queue(request, *, failed: VerdictForm | None = None, failed_id: int | None = None, status: int = 200):
    pending = q.with_read_counts(q.unreviewed_break_glass())
    for item in pending:
        item.form = failed if item.glass.pk == failed_id else VerdictForm(prefix=f"bg-{item.glass.pk}")
    reviewed = _page(request, q.reviewed_break_glass(), size=25)
    audit.record(
        Action.READ_AUDIT.value,
        purpose="governance",
        detail={"view": "ig.break_glass", "page": reviewed.number},
        **request_actor(request).audit_fields(),
    )
    return render(
        request,
        "ig/break_glass.html",
        {
            "title": "Review emergency access",
            "pending": pending,
            "reviewed": reviewed,
            "reviewed_items": q.with_read_counts(reviewed.object_list),
            "form": failed,
        },
        status=status,
    )


@ig_officer
@require_GET
def break_glass(request):
    """The review queue: unjudged emergency openings first, oldest first."""
    return _queue(request)


@ig_officer
@require_POST
def review(request, break_glass_id: int):
    """Record an IG officer's verdict on one emergency opening."""
    form = VerdictForm(request.POST, prefix=f"bg-{break_glass_id}")
    if form.is_valid():
        try:
            review_break_glass(
                actor=request_actor(request),
                break_glass_id=break_glass_id,
                verdict=form.cleaned_data["verdict"],
                note=form.cleaned_data["note"],
            )
        except NotFound:
            raise Http404 from None
        except InvalidChange as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Your verdict on the emergency access has been recorded.")
            return redirect("ig:break_glass")
    return _queue(request, failed=form, failed_id=break_glass_id)


# --- Unusual access -----------------------------------------------------------------


@ig_officer
@require_GET
def signals(request):
    """Unusual-access signals computed from the audit trail."""
    audit.record(
        Action.READ_AUDIT.value,
        purpose="governance",
        detail={"view": "ig.signals"},
        **request_actor(request).audit_fields(),
    )
    return render(
        request,
        "ig/signals.html",
        {
            "title": "Unusual access",
            "unrelated": q.unrelated_access(),
            "staff_reads": q.staff_record_reads(),
            "probing": q.denied_reads(),
            "threshold": settings.UNUSUAL_ACCESS_PATIENTS,
            "days": settings.UNUSUAL_ACCESS_DAYS,
            "lookback": q.SIGNAL_LOOKBACK_DAYS,
        },
    )


# --- Corrections across the network ---------------------------------------------------


@ig_officer
@require_GET
def corrections(request):
    """Every organisation's correction figures side by side: counts only, no clinical content."""
    audit.record(
        Action.READ_AUDIT.value,
        purpose="governance",
        detail={"view": "ig.corrections"},
        **request_actor(request).audit_fields(),
    )
    rows = network_figures()
    charts = [
        (
            "chart-received",
            "Correction requests received",
            [(f.organisation.name, f.received) for f in rows],
            False,
        ),
        ("chart-overdue", "Requests overdue now", [(f.organisation.name, f.overdue_now) for f in rows], True),
        (
            "chart-median",
            "Median days to a decision",
            [(f.organisation.name, f.median_days_to_decision or 0) for f in rows if f.decided],
            False,
        ),
    ]
    return render(
        request,
        "ig/corrections.html",
        {
            "title": "Corrections across the network",
            "rows": [
                (f, ", ".join(f"{type_name(kind)} ({count})" for kind, count in f.most_corrected))
                for f in rows
            ],
            "charts": [
                {
                    "id": chart_id,
                    "caption": caption,
                    "bars": [{"label": name, "value": value, "warning": warning} for name, value in bars],
                    "most": max((value for _, value in bars), default=0),
                }
                for chart_id, caption, bars, warning in charts
            ],
            "total": sum(f.received for f in rows),
            # Checking before sharing: totals only, never a patient or what they marked.
            "pauses_in_force": q.patients_with_a_pause(),
            "checks": check_figures(),
        },
    )


# --- Items withheld from patients -----------------------------------------------------


@ig_officer
@require_GET
def withheld(request):
    """Every item an owner withholds from the patient's own view, with its reason."""
    audit.record(
        Action.READ_AUDIT.value,
        purpose="governance",
        detail={"view": "ig.withheld"},
        **request_actor(request).audit_fields(),
    )
    page = _page(request, q.withholdings())
    return render(
        request,
        "ig/withheld.html",
        {"title": "Items withheld from patients", "page": page},
    )


# --- Data quality across the network ---------------------------------------------------


@ig_officer
@require_GET
def data_quality(request):
    """What the accuracy checks find at each organisation, side by side: counts only."""
    audit.record(
        Action.READ_AUDIT.value,
        purpose="governance",
        detail={"view": "ig.data-quality"},
        **request_actor(request).audit_fields(),
    )
    rows = network_quality()
    bars = [{"label": q.organisation.name, "value": q.found} for q in rows]
    open_bars = [{"label": q.organisation.name, "value": q.open_total, "warning": True} for q in rows]
    return render(
        request,
        "ig/data_quality.html",
        {
            "title": "Data quality across the network",
            "rows": rows,
            "bars": bars,
            "open_bars": open_bars,
            "most": max((b["value"] for b in bars), default=0),
        },
    )
