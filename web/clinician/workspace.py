"""The clinician's corrections workspace: the organisation's queue of correction
requests, one request with the item, its history and the steps allowed now, and the
organisation's correction figures.

A clinician acts for their organisation (request_actor). A request of another
organisation is not found, as a missing one is (services.request_for). The item itself
is read through consent.policy (the owner always sees its own items), which audits it;
the workflow (accuracy.services) decides every step and refuses a stale one.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.access import staff_required
from accuracy import selectors, services
from accuracy.deadlines import profile
from accuracy.figures import figures_for
from accuracy.models import CorrectionRequest
from accuracy.record_display import says_now, type_name, version_history
from accuracy.timeline import staff_timeline_rows
from consent.policy import NotFound, open_record
from consent.web import request_actor
from phr.models import Patient
from web.clinician.banner import Banner, patient_banner
from web.clinician.workspace_forms import (
    FORMS,
    SHOW_CHOICES,
    STATE_WORDS,
    AmendFieldsForm,
    AmendForm,
    ExtendForm,
    QueueFilterForm,
    actions_for,
)
from web.common import pretty_json

PAGE_SIZE = 50
clinician = staff_required("clinician")


def _request_or_404(actor, request_id) -> CorrectionRequest:
    try:
        return services.request_for(actor, request_id)
    except NotFound:
        raise Http404 from None


# --- The queue ------------------------------------------------------------------------


@clinician
@require_GET
def queue(request):
    """The organisation's requests: open ones first, overdue first, then by deadline."""
    actor = request_actor(request)
    form = QueueFilterForm(request.GET or None)
    show = form.chosen()
    page = None
    if actor.organisation is not None:
        # The queue's requests and order are the selector's; what each says of its item
        # is released through the policy, a page at a time.
        rows = selectors.visible_requests(actor)
        views = services.queue_views(request.user, timezone.localdate())
        if show in views:
            rows = rows.filter(views[show])
        page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
        opened = selectors.open_records(actor, [row.patient_id for row in page])
        copies = selectors.release_copies(
            actor, list(page), accesses=opened, detail={"page": "correction queue"}
        )
        banners = _banners(opened)
        today = timezone.localdate()
        for row in page:
            row.copies = copies[row.pk]
            row.banner = banners.get(row.patient_id)
            row.days_left = services.days_left(row, today)
            row.overdue_by = -row.days_left
            row.kind_name = type_name(row.entry.resource_type)
            row.state_words = STATE_WORDS.get(row.business_status, row.get_business_status_display())
    return render(
        request,
        "workspace/queue.html",
        {
            "organisation": actor.organisation,
            "form": form,
            "show": show,
            "show_label": dict(SHOW_CHOICES)[show],
            "page": page,
        },
    )


def _banners(opened: dict) -> dict:
    """Who each row's patient is, as the banner names them: from the copies of their
    details this clinician may read (audited), or their NHS number alone where the
    policy refused the record; the queue's organisation holds their item and knows
    them by it."""
    refused = [pid for pid, access in opened.items() if access is None]
    numbers = dict(Patient.objects.filter(pk__in=refused).values_list("pk", "nhs_number"))
    return {
        pid: patient_banner(access) if access is not None else Banner.number_only(numbers.get(pid))
        for pid, access in opened.items()
    }


# --- One request ----------------------------------------------------------------------


def _render(request, actor, correction, *, failed=None, conflict: str = "", preview=False, status=200):
    """The request page: the item now, the change asked for, history, thread, actions."""
    try:
        access = open_record(actor, correction.patient_id)
        entry, versions = access.history(
            correction.entry_id, detail={"purpose": "correction review", "request": correction.pk.hex}
        )
    except NotFound:
        raise Http404 from None
    copies = selectors.release_copies(
        actor, [correction], thread=True, access=access, detail={"page": "correction request"}
    )[correction.pk]
    correction.entry = entry  # the letter and the forms use the item as the policy gave it
    offered = actions_for(correction)
    latest = profile().latest_extension(correction.first_due_on)
    forms = {}
    for step in offered | ({failed.step} if failed is not None else set()):
        form_class = FORMS[step]
        extra = {"latest": latest} if form_class is ExtendForm else {}
        if failed is not None and failed.step == step:
            forms[step] = failed
            continue
        initial = {"revision": correction.revision}
        if form_class is AmendForm:
            initial.update(resource=pretty_json(entry.json), based_on_version=entry.version)
        forms[step] = form_class(correction=correction, initial=initial, **extra)
    if conflict and failed is not None:
        failed = _rebased(failed, correction, entry, conflict, offered, latest)
        if failed.step in offered:
            forms[failed.step] = failed
        else:
            forms.pop(failed.step, None)
    today = timezone.localdate()
    timeline = staff_timeline_rows(correction)
    return render(
        request,
        "workspace/request.html",
        {
            "correction": correction,
            "copies": copies,
            "banner": patient_banner(access),
            "entry": entry,
            # Once the item has moved on from the version flagged, what it says now differs.
            "says_now": says_now(entry, correction.element)
            if entry.version != correction.entry_version
            else None,
            "kind_name": type_name(entry.resource_type),
            "state_words": STATE_WORDS.get(correction.business_status, ""),
            "days_left": services.days_left(correction, today),
            "overdue_by": -services.days_left(correction, today),
            "history": version_history(entry, versions),
            "current_json": pretty_json(entry.json),
            "timeline": timeline,
            "thread": copies.messages,
            "statements": copies.statements,
            "notices": correction.notices.select_related("organisation"),
            "offered": offered,
            "forms": forms,
            "form": failed,  # the error summary lists this form's problems
            "conflict": conflict,
            "kept_text": (
                _kept_text(failed)
                if conflict and failed.step not in offered
                else getattr(failed, "stale_edit", "")
            ),
            "extend_intro": (
                f"You can extend the deadline once, before {correction.first_due_on:%-d %B %Y}, to "
                f"{latest:%-d %B %Y} at the latest. The patient is told the new date and your reason."
            ),
            "letter": services.decision_letter(correction, copies.item_name) if correction.decided_at else "",
            "preview": failed.preview_letter(copies.item_name) if preview else "",
        },
        status=status,
    )


def _rebased(form, correction, entry, conflict: str, offered, latest):
    """The clinician's input on the request as it is now: their text kept, the revision and
    the item's version those of what the page now shows, and the conflict said."""
    prefix = form.prefix
    data = form.data.copy()
    data[f"{prefix}-revision"] = str(correction.revision)
    if isinstance(form, AmendForm) and str(form.data.get(f"{prefix}-based_on_version")) != str(entry.version):
        # The item itself changed: start again from its current version rather than
        # re-apply an edit of the old one (that would be the silent merge the rules
        # forbid). The clinician's edit is shown beside it to copy from.
        form.stale_edit = str(form.data.get(f"{prefix}-resource", ""))
        data[f"{prefix}-resource"] = pretty_json(entry.json)
        data[f"{prefix}-based_on_version"] = str(entry.version)
    item_changed = str(form.data.get(f"{prefix}-based_on_version")) != str(entry.version)
    if isinstance(form, AmendFieldsForm) and item_changed:
        # As for the JSON: the fields start again from the current version; the change the
        # clinician asked for is shown in words beside them.
        form.stale_edit = "\n".join(change.sentence for change in form.changes)
        data = _fields_of_current(form.prefix, correction, data)
    extra = {"latest": latest} if isinstance(form, ExtendForm) else {}
    rebased = type(form)(data, correction=correction, **extra)
    rebased.is_valid()
    rebased.add_error(None, conflict)
    rebased.stale_edit = getattr(form, "stale_edit", "")
    return rebased


def _fields_of_current(prefix: str, correction, data):
    """The posted data with every part's inputs as the current version of the item says."""
    current = AmendFieldsForm(correction=correction)
    for name in current.fields:
        if name not in ("note", "outcome"):
            data[f"{prefix}-{name}"] = str(current.initial.get(name, ""))
    return data


def _amend_preview(request, actor, correction, form):
    """The amendment made with fields, said in words before it is stored: confirming posts
    the same fields again, and they are checked again then."""
    if "edit" in request.POST:
        return _render(request, actor, correction, failed=form)
    return render(
        request,
        "workspace/amend_preview.html",
        {
            "correction": correction,
            "form": form,
            "kind_name": type_name(correction.entry.resource_type),
            "entry": correction.entry,
        },
    )


def _read_for_amendment(actor, correction) -> None:
    """The item the fields are written into, read through the policy (and audited)."""
    try:
        access = open_record(actor, correction.patient_id)
        correction.entry = access.read_one(
            correction.entry_id, detail={"purpose": "correction amendment", "request": correction.pk.hex}
        )
    except NotFound:
        raise Http404 from None


def _kept_text(form) -> str:
    """What the clinician typed, when the step can no longer be taken: so nothing is lost."""
    if isinstance(form, AmendFieldsForm) and form.changes:
        said = [change.sentence for change in form.changes]
        return "\n".join([*said, str(form.data.get(f"{form.prefix}-note", "")).strip()]).strip()
    typed = [
        str(form.data.get(f"{form.prefix}-{name}", "")).strip()
        for name, field in form.fields.items()
        if not field.widget.is_hidden
    ]
    return "\n\n".join(text for text in typed if text)


@clinician
@require_GET
def detail(request, request_id):
    """One request of the clinician's organisation (any other: not found)."""
    actor = request_actor(request)
    return _render(request, actor, _request_or_404(actor, request_id))


@clinician
@require_POST
def act(request, request_id, step):
    """Take one step on a request; a refusal is shown on the page with the input kept."""
    form_class = FORMS.get(step)
    if form_class is None:
        raise Http404
    actor = request_actor(request)
    correction = _request_or_404(actor, request_id)
    if form_class is AmendFieldsForm:
        _read_for_amendment(actor, correction)
    extra = (
        {"latest": profile().latest_extension(correction.first_due_on)} if form_class is ExtendForm else {}
    )
    form = form_class(request.POST, correction=correction, **extra)
    if form.is_valid():
        if step == "deny" and "preview" in request.POST:
            return _render(request, actor, correction, failed=form, preview=True)
        previewing = request.POST.get("confirm") != "1" and step in actions_for(correction)
        if form_class is AmendFieldsForm and previewing:
            return _amend_preview(request, actor, correction, form)
        try:
            form.perform(actor)
        except services.InvalidStep as invalid:
            form.add_service_error(str(invalid), invalid.field)
        except services.Conflict as conflict:
            # Someone acted first, or the item changed: show the request as it is now.
            return _render(
                request,
                actor,
                _request_or_404(actor, request_id),
                failed=form,
                conflict=str(conflict),
                status=409,
            )
        except NotFound:
            raise Http404 from None
        else:
            messages.success(request, form.done)
            return redirect("workspace:request", request_id=correction.pk)
    return _render(request, actor, correction, failed=form)


# --- Figures --------------------------------------------------------------------------


@clinician
@require_GET
def figures(request):
    """The organisation's own correction figures: what changes practice is seeing them."""
    actor = request_actor(request)
    numbers = figures_for(actor.organisation) if actor.organisation is not None else None
    bars = []
    if numbers is not None:
        bars = [
            {"label": "Received", "value": numbers.received},
            {"label": "Corrected", "value": numbers.accepted},
            {"label": "Partly corrected", "value": numbers.partly_accepted},
            {"label": "Not corrected", "value": numbers.denied},
            {"label": "Withdrawn", "value": numbers.withdrawn},
            {"label": "Open now", "value": numbers.open_now},
            {"label": "Overdue now", "value": numbers.overdue_now},
        ]
    return render(
        request,
        "workspace/figures.html",
        {
            "organisation": actor.organisation,
            "figures": numbers,
            "bars": bars,
            "most": max((bar["value"] for bar in bars), default=0),
            "most_corrected": [(type_name(kind), count) for kind, count in numbers.most_corrected]
            if numbers
            else [],
        },
    )
