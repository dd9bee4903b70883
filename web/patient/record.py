"""The patient's own record: a summary, a page per kind of item, one item with its
history, the whole record as a FHIR Bundle, and a page to print.

Every read goes through consent.policy.open_record for the signed-in patient's own,
verified record, which decides and writes the audit event with exactly the entries a
page shows. A user with no linked record (a patient not yet verified, or staff, who have
no record of their own here) gets a page that says so, never an error.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accuracy import findings
from accuracy import record_display as display
from accuracy.result_series import series_for
from consent import harm_review
from consent.policy import Action, ActorRole, NotFound, RecordAccess, open_record
from consent.web import request_actor
from web.clinician.banner import Banner, patient_banner
from web.common import DayRangeForm, newest_first

PAGE_SIZE = 25
RECENT_ITEMS = 5


def patient_record(request, action: Action) -> RecordAccess | None:
    """The signed-in patient's own record, or None when no record is linked to them."""
    actor = request_actor(request)
    if actor.role != ActorRole.PATIENT or actor.patient_id is None:
        return None
    try:
        return open_record(actor, actor.patient_id, action=action)
    except NotFound:
        return None


def whose_record(access: RecordAccess) -> Banner:
    """The patient's name, date of birth and NHS number for the top of their record pages,
    from their own record's copies of their details (read through the policy, audited)."""
    return patient_banner(access)


def no_record_page(request) -> HttpResponse:
    return render(request, "record/no_record.html", {"is_patient": request.user.role == "patient"})


def not_found_page(request) -> HttpResponse:
    # One answer for an item that does not exist and one the patient may not see.
    return render(request, "record/not_found.html", status=404)


class _AuditedPage:
    """One page of a query, counted and sliced when the policy evaluates it, so that the
    count (which may search item text) is made inside the audited read."""

    def __init__(self, number, per_page: int = PAGE_SIZE):
        self.number, self.per_page = number, per_page
        self.query: QuerySet | None = None
        self.page = None

    def of(self, query: QuerySet) -> _AuditedPage:
        self.query = query
        return self

    def __iter__(self):
        self.page = Paginator(self.query, self.per_page).get_page(self.number)
        self.page.object_list = list(self.page.object_list)
        return iter(self.page.object_list)


class RecordFilterForm(DayRangeForm):
    q = forms.CharField(label="Search for words in an item", required=False, max_length=100)
    owner = forms.TypedChoiceField(label="Held by", coerce=int, required=False, empty_value=None)
    date_from = forms.DateField(
        label="Recorded on or after",
        required=False,
        help_text="For example, 2024-03-27",
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
        error_messages={"invalid": "Enter a real date, for example 2024-03-27"},
    )
    date_to = forms.DateField(
        label="Recorded on or before",
        required=False,
        help_text="For example, 2024-12-31",
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
        error_messages={"invalid": "Enter a real date, for example 2024-12-31"},
    )

    def __init__(self, *args, owners=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [("", "All organisations")] + [
            (o["owner_id"], o["owner__name"]) for o in owners
        ]

    def chosen(self) -> dict:
        """The valid choices made, as query parameters; an invalid form filters nothing."""
        if not self.is_valid():
            return {}
        return {
            key: value.isoformat() if hasattr(value, "isoformat") else value
            for key, value in self.cleaned_data.items()
            if value not in (None, "")
        }

    def apply(self, entries: QuerySet) -> QuerySet:
        chosen = self.cleaned_data if self.is_valid() else {}
        if chosen.get("q"):
            entries = entries.filter(display__icontains=chosen["q"])
        if chosen.get("owner"):
            entries = entries.filter(owner_id=chosen["owner"])
        if chosen.get("date_from"):
            entries = entries.filter(clinical_date__date__gte=chosen["date_from"])
        if chosen.get("date_to"):
            entries = entries.filter(clinical_date__date__lte=chosen["date_to"])
        return entries


@login_required
@require_GET
def summary(request):
    """Counts per kind, the latest items, who holds them, and what needs attention."""
    access = patient_record(request, Action.READ_RECORD)
    if access is None:
        return no_record_page(request)
    who = whose_record(access)
    counted = access.counts(
        lambda entries: {
            "kinds": display.kind_counts(entries),
            "owners": display.owner_counts(entries),
            "disputed_count": display.count_disputed(display.record_items(entries)),
            "in_error_count": display.record_items(entries).filter(entered_in_error=True).count(),
        },
        detail={"page": "summary"},
    )
    recent = access.read(
        lambda qs: newest_first(display.record_items(qs).filter(entered_in_error=False)).select_related(
            "owner"
        )[:RECENT_ITEMS],
        detail={"page": "summary"},
    )
    return render(
        request,
        "record/summary.html",
        {
            **counted,
            "who": who,
            "recent": display.item_rows(recent),
            "corrections": display.correction_counts(access.patient.pk),
            "moved_away": access.moved_away(),
            # Whether any wait, never which: "Some items are waiting for your care team".
            "findings_count": findings.for_patient(access.actor, access.patient.pk).count(),
            "awaiting_review": access.actor.proxy is None
            and harm_review.waiting_for_patient(access.patient) > 0,
        },
    )


@login_required
@require_GET
def kind(request, kind: str):
    """One kind of item, filtered, searched and a page at a time."""
    chosen_kind = display.KINDS_BY_SLUG.get(kind)
    if chosen_kind is None:
        raise Http404
    searching = any(request.GET.get(k) for k in ("q", "owner", "date_from", "date_to"))
    access = patient_record(request, Action.SEARCH_RECORD if searching else Action.READ_RECORD)
    if access is None:
        return no_record_page(request)
    who = whose_record(access)
    owners = access.counts(
        lambda entries: display.owner_counts(chosen_kind.select(entries)), detail={"page": kind}
    )
    form = RecordFilterForm(request.GET or None, owners=owners)
    chosen = form.chosen()
    pager = _AuditedPage(request.GET.get("page"))
    entries = access.read(
        lambda base: pager.of(newest_first(form.apply(chosen_kind.select(base))).select_related("owner")),
        detail={
            "kind": chosen_kind.slug,
            "page": (request.GET.get("page") or "1")[:6],
            # That a text search was made, not its words: the entries shown are the disclosure.
            **{key: ("yes" if key == "q" else value) for key, value in chosen.items()},
        },
    )
    page = pager.page
    return render(
        request,
        "record/kind.html",
        {
            "kind": chosen_kind,
            "who": who,
            "form": form,
            "rows": display.item_rows(entries),
            "page": page,
            "query": urlencode(chosen),
            "filtered": bool(chosen),
            "page_numbers": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        },
    )


@login_required
@require_GET
def item(request, entry_id):
    """One item in full, with every version and what changed between them."""
    access = patient_record(request, Action.READ_RECORD)
    if access is None:
        return no_record_page(request)
    who = whose_record(access)  # read first: the item's own read is the page's last word
    try:
        entry, versions = access.history(entry_id)
    except NotFound:
        return not_found_page(request)
    return render(
        request,
        "record/item.html",
        {
            "entry": entry,
            "who": who,
            "kind": display.kind_of(entry.resource_type),
            "type_name": display.type_name(entry.resource_type),
            "status": display.status_words(entry),
            "details": display.item_details(entry),
            "history": display.version_history(entry, versions),
            "version_count": len(versions),
            "disputed": entry.pk in display.disputed_entry_ids([entry]),
            "disagreements": display.disagreement_statements(entry),
            "open_request": display.open_request_for(entry),
            "series": _series(access, entry),
            "findings": findings.entries_with_findings(access.actor, access.patient.pk).get(entry.pk, []),
        },
    )


def _series(access: RecordAccess, entry):
    """The same test's other results, for the chart on a result's page (a read of its own,
    audited as such), or None for anything but a number measured more than once."""
    if entry.resource_type != "Observation" or not entry.display:
        return None
    same = access.read(
        lambda qs: qs.filter(resource_type="Observation", display=entry.display),
        detail={"page": "result-over-time"},
    )
    return series_for(entry, same)


@login_required
@require_GET
def download(request):
    """The whole permitted record as a FHIR R4 Bundle, each resource exactly as stored."""
    access = patient_record(request, Action.EXPORT_RECORD)
    if access is None:
        return no_record_page(request)
    entries = access.read(
        lambda qs: display.with_dispute_flags(qs, access.patient.pk).order_by("resource_type", "pk"),
        detail={"format": "fhir-bundle"},
    )
    now = timezone.now()
    response = HttpResponse(display.fhir_bundle(entries, now), content_type="application/fhir+json")
    # No name or NHS number in the file name: it may be seen in a downloads folder.
    filename = f"my-record-{timezone.localdate(now).isoformat()}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_GET
def print_record(request):
    """Every item on one page, grouped by kind, laid out for paper."""
    access = patient_record(request, Action.EXPORT_RECORD)
    if access is None:
        return no_record_page(request)
    who = whose_record(access)
    entries = access.read(
        lambda qs: display.with_dispute_flags(
            newest_first(display.record_items(qs)), access.patient.pk
        ).select_related("owner"),
        detail={"format": "print"},
    )
    return render(
        request,
        "record/print.html",
        {
            "groups": display.group_by_kind(entries),
            "who": who,
            "printed_at": timezone.now(),
        },
    )
