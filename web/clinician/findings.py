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
from django.views.decorators.http import require_GET, require_POST

from accounts.access import staff_required
from accuracy import findings, selectors
from accuracy.quality import quality_for
from consent.policy import NotFound
from consent.web import request_actor
from web.clinician.banner import patient_banner

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
                "patient_notes": findings.notes_for_holder(finding),
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
