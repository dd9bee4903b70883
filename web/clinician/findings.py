"""What the accuracy checks found in the organisation's items, for its clinicians: each
finding with who the patient is, what each holder's record says and what the patient
said, marked "Checked, correct" or put right by amending the item (then the next check
resolves it); and the organisation's data-quality figures (counts only, no one named).

Findings come from the domain (accuracy.findings: only those about items the clinician
may see); who the patient is, and the items, are read through the policy, audited.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import staff_required
from accuracy import findings, selectors, services
from accuracy.quality import quality_for
from consent.policy import NotFound, open_record
from consent.web import request_actor
from phr.ingest import canonical_json
from phr.vocabulary import type_name
from web.clinician.banner import patient_banner
from web.clinician.workspace_forms import FindingAmendForm

clinician = staff_required("clinician")


class CheckedForm(forms.Form):
    note = forms.CharField(required=False, max_length=findings.MAX_NOTE, strip=True)


def rows_for(actor, found):
    """Each finding with the patient's banner, read through the policy."""
    opened = selectors.open_records(actor, [f.patient_id for f in found])
    rows = []
    for finding in found:
        access = opened.get(finding.patient_id)
        if access is None:
            continue
        ids = [row.entry_id for row in finding.implicated.all()]
        access.read(lambda qs, ids=ids: qs.filter(pk__in=ids), detail={"page": "accuracy findings"})
        rows.append(
            {
                "finding": finding,
                "banner": patient_banner(access),
                "said": findings.what_each_says(finding),
                "notes": findings.notes_for_holder(finding, actor.organisation),
            }
        )
    return rows


@clinician
@require_GET
def findings_list(request):
    actor = request_actor(request)
    found = findings.for_holder(actor)
    return render(
        request,
        "clinician/findings.html",
        {"rows": rows_for(actor, found), "organisation": actor.organisation},
    )


@clinician
@require_POST
def finding_checked(request, finding_id):
    actor = request_actor(request)
    form = CheckedForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"The note can be {findings.MAX_NOTE} characters at most.")
        return redirect("clinician:findings")
    try:
        findings.holder_checked(actor, finding_id, form.cleaned_data["note"])
    except NotFound:
        raise Http404 from None
    messages.success(
        request, "Marked as checked and correct. The patient's side still sees it if it is theirs."
    )
    return redirect("clinician:findings")


@clinician
@require_GET
def quality(request):
    actor = request_actor(request)
    if actor.organisation is None:
        raise Http404
    figures = quality_for(actor.organisation)
    return render(
        request,
        "clinician/data_quality.html",
        {
            "figures": figures,
            "organisation": actor.organisation,
            "month_bars": [{"label": label, "value": n} for label, n in figures.by_month],
            "most_in_a_month": max((n for _, n in figures.by_month), default=0),
            "rule_bars": [{"label": r.title, "value": r.open + r.resolved} for r in figures.by_rule],
            "most_of_a_rule": max((r.open + r.resolved for r in figures.by_rule), default=0),
            "service_bars": [{"label": label, "value": n} for label, n in figures.by_service],
            "most_of_a_service": max((n for _, n in figures.by_service), default=0),
        },
    )


def _item_to_correct(actor, finding_id, entry_id):
    """The finding, the clinician's own item it is about (read through the policy, audited)
    and the patient's banner; 404 alike for anything the clinician may not correct."""
    try:
        finding, row = findings.own_item(actor, finding_id, entry_id)
        access = open_record(actor, finding.patient_id)
        entry = access.read_one(
            row.entry_id, detail={"purpose": "correction after an accuracy check", "finding": finding.pk.hex}
        )
    except NotFound:
        raise Http404 from None
    return finding, entry, patient_banner(access)


def _as_it_is_now(entry, problem: str) -> FindingAmendForm:
    """The form filled from the item's current version, saying why the edit was not saved."""
    form = FindingAmendForm(entry=entry)
    fresh = FindingAmendForm(
        {name: "" if value is None else value for name, value in form.initial.items()}, entry=entry
    )
    fresh.is_valid()  # "you have not changed anything" gives way to the problem
    fresh.add_error(None, problem)
    return fresh


@clinician
@require_http_methods(["GET", "POST"])
def finding_correct(request, finding_id, entry_id):
    """Correct the organisation's item a finding is about, in the fields of the correction
    form: the change in words first, then saved as the item's next version."""
    actor = request_actor(request)
    if request.method == "POST" and findings.already_amended(actor, finding_id):
        # A second click of "Save" (or the form sent again): the first one was saved.
        messages.info(request, "Your correction was already saved. The finding clears at the next check.")
        return redirect("clinician:findings")
    finding, entry, banner = _item_to_correct(actor, finding_id, entry_id)
    asked = findings.open_request_about(actor, entry.pk)
    if asked is not None:
        # The patient asked for it: decide their request (same fields), so they get the
        # decision letter and the request does not wait on with the item already changed.
        messages.info(request, "The patient has asked you to correct this item: decide their request here.")
        return redirect("workspace:request", request_id=asked.pk)
    page = {
        "finding": finding,
        "entry": entry,
        "banner": banner,
        "kind_name": type_name(entry.resource_type),
        "said": findings.what_each_says(finding),
        "organisation": actor.organisation,
    }
    if request.method == "GET":
        return render(
            request, "clinician/finding_correct.html", {**page, "form": FindingAmendForm(entry=entry)}
        )
    form = FindingAmendForm(request.POST, entry=entry)
    posted = str(form.data.get("based_on_version", ""))
    if not posted.isdigit() or not 1 <= int(posted) <= 10**9:
        fresh = _as_it_is_now(
            entry, "The form was incomplete. Here is the item as it is now: change it again."
        )
        return render(request, "clinician/finding_correct.html", {**page, "form": fresh}, status=400)
    if int(posted) != entry.version:
        # The item changed while the page was open: start again from the current version.
        fresh = _as_it_is_now(entry, "The item changed while you were correcting it. Here it is now.")
        return render(request, "clinician/finding_correct.html", {**page, "form": fresh}, status=409)
    if not form.is_valid() or "edit" in request.POST:
        status = 200 if form.is_valid() else 400
        return render(request, "clinician/finding_correct.html", {**page, "form": form}, status=status)
    if request.POST.get("confirm") != "1":
        return render(request, "clinician/finding_correct_check.html", {**page, "form": form})
    try:
        number = findings.holder_amended(
            actor,
            finding.pk,
            entry.pk,
            resource_json=canonical_json(form.amended).decode(),
            based_on_version=form.cleaned_data["based_on_version"],
            note=form.cleaned_data["note"],
        )
    except services.Conflict as conflict:
        fresh = _as_it_is_now(entry, str(conflict))
        return render(request, "clinician/finding_correct.html", {**page, "form": fresh}, status=409)
    except services.InvalidStep as invalid:
        form.add_error(None, str(invalid))
        return render(request, "clinician/finding_correct.html", {**page, "form": form})
    except NotFound:
        raise Http404 from None
    messages.success(
        request,
        f"Saved as version {number} of the item. Everyone who saw an earlier version has been told; "
        "the finding clears at the next check if the records now agree.",
    )
    return redirect("clinician:findings")
