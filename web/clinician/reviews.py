"""The review queue: items the organisation holds that wait for a clinician before the
patient sees them (consent.harm_review), each released or kept withheld with a reason.

The queue lists ids from the domain; each item's name, and who the patient is, are read
through the policy (the organisation holds these items, so it may read them), audited.
"""

from __future__ import annotations

from collections import defaultdict

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import staff_required
from accuracy import selectors
from accuracy.record_display import item_rows
from consent import harm_review
from consent.policy import NotFound
from consent.web import request_actor
from phr.models import Category
from web.clinician.banner import Banner, patient_banner

PAGE_SIZE = 25
clinician = staff_required("clinician")


class KeepForm(forms.Form):
    reason = forms.CharField(
        label="Why the patient should not see it",
        help_text="The patient's care team and information governance read this; the patient does not.",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        error_messages={"required": "Say why the patient should not see it"},
    )


def _why(entry) -> str:
    if entry.category == Category.SAFEGUARDING:
        return "Safeguarding information"
    if entry.third_party:
        return "Information about someone else"
    return "A new result"


def _rows(actor, entries):
    """Each waiting item with who the patient is and its name, read through the policy."""
    by_patient = defaultdict(list)
    for entry in entries:
        by_patient[entry.patient_id].append(entry)
    opened = selectors.open_records(actor, list(by_patient))
    rows = []
    for patient_id, waiting in by_patient.items():
        access = opened.get(patient_id)
        if access is None:
            banner, named = Banner.number_only(None), {}
        else:
            banner = patient_banner(access)
            read = access.read(
                lambda qs, ids=[e.pk for e in waiting]: qs.filter(pk__in=ids),
                detail={"page": "review queue"},
            )
            named = {row.entry.pk: row for row in item_rows(read)}
        for entry in waiting:
            rows.append({"entry": entry, "banner": banner, "item": named.get(entry.pk), "why": _why(entry)})
    rows.sort(key=lambda row: (row["entry"].first_received_at, str(row["entry"].pk)))
    return rows


def _page(request, actor, *, failed: KeepForm | None = None, failed_id=None, status: int = 200):
    page = Paginator(harm_review.pending(actor), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = _rows(actor, list(page))
    for row in rows:
        row["form"] = (
            failed
            if failed is not None and str(row["entry"].pk) == str(failed_id)
            else KeepForm(prefix=f"keep-{row['entry'].pk.hex}")
        )
    return render(
        request,
        "clinician/reviews.html",
        {"page": page, "rows": rows, "organisation": actor.organisation},
        status=status,
    )


@clinician
@require_GET
def reviews(request):
    """Items waiting for review before the patient sees them, oldest first."""
    actor = request_actor(request)
    try:
        return _page(request, actor)
    except NotFound:
        raise Http404 from None


@clinician
@require_POST
def decide(request, entry_id, decision: str):
    """Release an item to the patient, or keep it withheld with a reason."""
    actor = request_actor(request)
    try:
        if decision == "release":
            harm_review.release(actor=actor, entry_id=entry_id)
            messages.success(request, "The item is released: the patient can now see it.")
        elif decision == "keep":
            form = KeepForm(request.POST, prefix=f"keep-{entry_id.hex}")
            if not form.is_valid():
                return _page(request, actor, failed=form, failed_id=entry_id, status=400)
            try:
                harm_review.keep_withheld(actor=actor, entry_id=entry_id, reason=form.cleaned_data["reason"])
            except harm_review.ReasonNeeded as problem:
                form.add_error("reason", str(problem))
                return _page(request, actor, failed=form, failed_id=entry_id, status=400)
            messages.success(request, "The item is kept from the patient, with your reason.")
        else:
            raise Http404
    except NotFound:
        raise Http404 from None
    except harm_review.AlreadyReviewed:
        messages.info(request, "Someone else at your organisation reviewed this item first. Nothing changed.")
    return redirect("clinician:reviews")
