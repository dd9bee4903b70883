"""The patient's side of a correction: report what is wrong with an item, follow every
request (status, deadline, timeline, the thread with the organisation), reply, withdraw,
read the decision and, after a refusal, add a statement of disagreement.

Views parse input, call accuracy.services and render. The item always comes from the URL
and is read through the patient's own record (consent.policy, audited); its owner comes
from storage inside submit_correction. Another patient's item or request, and one that
does not exist, get the same page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accuracy import record_display as display
from accuracy import selectors, services
from accuracy.models import BusinessStatus, CorrectionRequest, Status
from accuracy.timeline import timeline_rows
from consent.policy import Action, NotFound, RecordAccess, proxy_may
from phr.models import RecordEntry
from web.patient.correction_forms import (
    CorrectionForm,
    DisagreementForm,
    ReplyForm,
    WithdrawForm,
    current_values,
    element_initial,
)
from web.patient.record import no_record_page, not_found_page, patient_record


@dataclass(frozen=True)
class RequestRow:
    """One request as the list shows it, with its item if the patient may still see it."""

    request: CorrectionRequest
    entry: RecordEntry | None
    overdue: bool


def _rows(requests: list[CorrectionRequest], entries: dict, today) -> list[RequestRow]:
    return [RequestRow(r, entries.get(r.entry_id), r.is_open and r.due_on < today) for r in requests]


# --- Reading --------------------------------------------------------------------------------


def _entries(access: RecordAccess, entry_ids, page: str) -> dict:
    """The items these requests are about, read (and audited) through the patient's record;
    an item no longer shown to the patient is simply absent."""
    if not entry_ids:
        return {}
    found = access.read(
        lambda qs: qs.filter(pk__in=list(entry_ids)).select_related("owner"), detail={"page": page}
    )
    return {entry.pk: entry for entry in found}


def _own_request(access: RecordAccess, request_id) -> CorrectionRequest:
    """The patient's own request, or NotFound alike for another's and a missing one (and,
    for someone acting for the patient, one about an item not shown to them)."""
    return services.request_for(access.actor, request_id)


def _may_act(access: RecordAccess) -> bool:
    """Whether the actor may reply, withdraw or disagree: the patient, or a proxy whose
    grant has the "correct" right (the domain refuses the others anyway)."""
    return proxy_may(access.actor, "correct")


def _acting_request(access: RecordAccess, request_id) -> CorrectionRequest:
    """The request a step is about, or NotFound alike when the actor may not act on it."""
    if not _may_act(access):
        raise NotFound
    return _own_request(access, request_id)


def _request_not_found(request):
    return render(request, "corrections/not_found.html", status=404)


def _detail(request, access: RecordAccess, correction: CorrectionRequest, *, status=200, **forms):
    """The request page: the item, the request, the decision, the thread and the timeline,
    with the forms the request's state allows."""
    entry = _entries(access, [correction.entry_id], "correction request").get(correction.entry_id)
    # What the request copied of the item shows only while the item does; the patient's
    # own words always do.
    copies = selectors.release_copies(
        access.actor, [correction], thread=True, access=access, detail={"page": "correction request"}
    )[correction.pk]
    decided = correction.status == Status.COMPLETED
    may_act = _may_act(access)
    may_disagree = may_act and correction.business_status in (BusinessStatus.DENIED, BusinessStatus.PARTIAL)
    fresh = {"revision": correction.revision}
    reply_form = forms.get("reply_form") or ReplyForm(initial=fresh)
    disagreement_form = forms.get("disagreement_form") or DisagreementForm(initial=fresh)
    today = timezone.localdate()
    context = {
        "correction": correction,
        "copies": copies,
        "entry": entry,
        # Once the item has moved on from the version flagged, what it says now differs.
        "says_now": (
            display.says_now(entry, correction.element)
            if entry is not None and copies.item_shown and entry.version != correction.entry_version
            else None
        ),
        "overdue": correction.is_open and correction.due_on < today,
        "timeline": timeline_rows(correction, list(correction.timeline.all()), reader=access.actor),
        "thread": copies.messages,
        "statements": copies.statements,
        "letter": services.decision_letter(correction, copies.item_name) if decided else "",
        "notices": list(correction.notices.select_related("organisation")),
        "reply_form": reply_form if correction.is_open and may_act else None,
        "may_withdraw": correction.is_open and may_act,
        "disagreement_form": disagreement_form if may_disagree else None,
        "conflict": forms.get("conflict", False),
        "kept_text": forms.get("kept_text", ""),
    }
    return render(request, "corrections/request.html", context, status=status)


@transaction.atomic
def _submit(access: RecordAccess, entry: RecordEntry, form: CorrectionForm) -> CorrectionRequest:
    """The request, with where to phone or write when the patient chose that: both kept,
    or neither."""
    created = services.submit_correction(
        actor=access.actor,
        entry_id=entry.pk,  # from the URL, never from the form
        element=form.element_path,
        proposed=form.cleaned_data["proposed"],
        reason=form.cleaned_data["reason"],
        contact_preference=form.cleaned_data["contact_preference"],
        **form.contact_details(),
    )
    return created


# --- Pages ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def correct(request, entry_id):
    """Report something wrong with one item of the patient's own record."""
    access = patient_record(request, Action.READ_RECORD)
    if access is None:
        return no_record_page(request)
    if not _may_act(access):  # someone acting for the patient without the right
        return not_found_page(request)
    try:
        entry = access.read_one(entry_id, detail={"page": "correction form"})
    except NotFound:
        return not_found_page(request)
    form = CorrectionForm(
        request.POST if request.method == "POST" else None,
        resource_type=entry.resource_type,
        current=current_values(entry.resource_type, display.decode(entry.json), entry.display),
        # A link may pre-select the part that is wrong (checking the record does): a
        # starting point on the page only, never taken from anything but the form.
        initial=element_initial(request.GET.get("element", "")) if request.method == "GET" else None,
    )
    existing = CorrectionRequest.objects.open().filter(entry=entry).first()
    if request.method == "POST" and existing is None and form.is_valid():
        try:
            created = _submit(access, entry, form)
        except services.InvalidStep as error:
            form.apply_error(error)
        except services.DuplicateRequest as duplicate:
            existing = duplicate.existing
        except NotFound:
            return not_found_page(request)
        else:
            messages.success(
                request,
                f"Your request has been sent to {created.owner.name}. Its reference is {created.reference}. "
                f"They must decide by {date_format(created.due_on, 'j F Y')}.",
            )
            return redirect("record:correction", request_id=created.pk)
    return render(
        request,
        "corrections/form.html",
        {
            "entry": entry,
            "kind": display.kind_of(entry.resource_type),
            "type_name": display.type_name(entry.resource_type),
            "form": form,
            "existing": existing,
            "period": services.profile(),
        },
    )


@login_required
@require_GET
def corrections(request):
    """Every correction request the patient has made, newest first."""
    access = patient_record(request, Action.READ_RECORD)
    if access is None:
        return no_record_page(request)
    requests = list(selectors.visible_requests(access.actor))
    entries = _entries(access, {r.entry_id for r in requests}, "correction requests")
    today = timezone.localdate()
    return render(
        request,
        "corrections/list.html",
        {"rows": _rows(requests, entries, today), "open_count": sum(r.is_open for r in requests)},
    )


@login_required
@require_GET
def correction(request, request_id):
    """One request in full."""
    access = patient_record(request, Action.READ_RECORD)
    if access is None:
        return no_record_page(request)
    try:
        found = _own_request(access, request_id)
    except NotFound:
        return _request_not_found(request)
    return _detail(request, access, found)


def _step_page(request, request_id, form_class, form_key: str, step, success: str, keep: str = ""):
    """Run one patient step from a posted form: done → back to the request with a banner;
    a field problem → the page with the error; someone changed the request first → the
    latest version of the page, with what the patient wrote kept."""
    access = patient_record(request, Action.READ_RECORD)
    if access is None:
        return no_record_page(request)
    try:
        found = _acting_request(access, request_id)
    except NotFound:
        return _request_not_found(request)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            step(access.actor, found, form.cleaned_data)
        except NotFound:  # the domain refused: the same page as for a request not shown
            return _request_not_found(request)
        except services.InvalidStep as error:
            form.apply_error(error)
        except services.Conflict:
            # The workflow's message names the member of staff; the patient is shown the
            # request as it is now, whose timeline says what changed.
            latest = services.request_for(access.actor, found.pk)
            text = form.cleaned_data.get(keep, "") if keep else ""
            kept = form_class(initial={"revision": latest.revision, **({keep: text} if keep else {})})
            return _detail(request, access, latest, conflict=True, kept_text=text, **{form_key: kept})
        else:
            messages.success(request, success)
            return redirect("record:correction", request_id=found.pk)
    return _detail(request, access, found, **{form_key: form})


@login_required
@require_POST
def reply(request, request_id):
    """The patient writes on the request's thread (answering a question reopens review)."""
    return _step_page(
        request,
        request_id,
        ReplyForm,
        "reply_form",
        lambda actor, found, data: services.patient_reply(
            actor=actor, request_id=found.pk, revision=data["revision"], body=data["body"]
        ),
        "Your message has been sent.",
        keep="body",
    )


@login_required
@require_POST
def disagree(request, request_id):
    """After a refusal, the patient's statement of disagreement, kept beside the item."""
    return _step_page(
        request,
        request_id,
        DisagreementForm,
        "disagreement_form",
        lambda actor, found, data: services.log_disagreement(
            actor=actor, request_id=found.pk, revision=data["revision"], text=data["text"]
        ),
        "Your statement of disagreement has been added. Everyone who looks at this item will see it.",
        keep="text",
    )


@login_required
@require_http_methods(["GET", "POST"])
def withdraw(request, request_id):
    """Withdraw a request, after a page asking the patient to confirm."""
    access = patient_record(request, Action.READ_RECORD)
    if access is None:
        return no_record_page(request)
    try:
        found = _acting_request(access, request_id)
    except NotFound:
        return _request_not_found(request)
    if request.method == "POST":
        form = WithdrawForm(request.POST)
        if form.is_valid():
            try:
                services.withdraw(
                    actor=access.actor, request_id=found.pk, revision=form.cleaned_data["revision"]
                )
            except NotFound:  # the domain refused: the same page as for a request not shown
                return _request_not_found(request)
            except services.Conflict:
                return _detail(request, access, services.request_for(access.actor, found.pk), conflict=True)
            messages.success(request, "You have withdrawn your request.")
            return redirect("record:correction", request_id=found.pk)
    else:
        form = WithdrawForm(initial={"revision": found.revision})
    if not found.is_open:
        return redirect("record:correction", request_id=found.pk)
    entry = _entries(access, [found.entry_id], "withdraw correction request").get(found.entry_id)
    return render(request, "corrections/withdraw.html", {"correction": found, "entry": entry, "form": form})
