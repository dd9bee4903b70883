"""Things you may want to check: what the portal's accuracy checks found in the
patient's record, in plain words, naming each holder and what its record says, with
"This is right" and "Ask them to correct it" (accuracy.findings holds the rules)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accuracy import findings
from consent.policy import Action, NotFound, proxy_may
from web.patient.record import no_record_page, not_found_page, patient_record


class NoteForm(forms.Form):
    note = forms.CharField(required=False, max_length=findings.MAX_NOTE, strip=True)
    # Which holder's record is right (an ODS code), or empty: "I am not sure which".
    right = forms.CharField(required=False, max_length=12, strip=True)


def _row(finding):
    """A finding, what each holder says, and the holders once each (to say which is right)."""
    said = findings.what_each_says(finding)
    holders = list({one.holder.pk: one.holder for one in said}.values())
    return finding, said, holders


@login_required
@require_GET
def checks(request):
    access = patient_record(request, Action.READ_RECORD)
    if access is None:
        return no_record_page(request)
    found = list(findings.for_patient(access.actor, access.patient.pk))
    waiting = {f.pk for f in found}
    # What the patient's side already answered, and what a later version put right: so
    # that asking does not make the finding vanish as if it were fixed.
    earlier = [
        f
        for f in findings.for_patient(access.actor, access.patient.pk, settled=True)[: findings.SHOWN_SETTLED]
        if f.pk not in waiting
    ]
    ids = {row.entry_id for finding in found + earlier for row in finding.implicated.all()}
    if ids:  # what each holder says is about these items: the read is audited as theirs
        access.read(lambda qs: qs.filter(pk__in=ids), detail={"page": "things to check"})
    answers = findings.patient_side_answers(earlier)
    return render(
        request,
        "record/checks.html",
        {
            "rows": [_row(finding) for finding in found],
            "earlier": [(finding, answers.get(finding.pk)) for finding in earlier],
            "may_answer": proxy_may(access.actor, "correct"),
        },
    )


@login_required
@require_POST
def finding_right(request, finding_id):
    access = patient_record(request, Action.READ_RECORD)
    if access is None:
        return no_record_page(request)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Your note can be {findings.MAX_NOTE} characters at most.")
        return redirect("record:checks")
    try:
        findings.patient_says_right(
            access, finding_id, form.cleaned_data["note"], right_holder=form.cleaned_data["right"]
        )
    except NotFound:
        return not_found_page(request)
    except findings.NotAHolder:
        messages.error(request, "Choose one of the organisations listed, or that you are not sure which.")
        return redirect("record:checks")
    messages.success(request, "Thank you. The organisations concerned can see that you said this is right.")
    return redirect("record:checks")


@login_required
@require_POST
def finding_ask(request, finding_id):
    access = patient_record(request, Action.READ_RECORD)
    if access is None:
        return no_record_page(request)
    try:
        made = findings.ask_holders(access, finding_id)
    except NotFound:
        return not_found_page(request)
    names = sorted({r.owner.name for r in made})
    messages.success(request, f"Your request has been sent to {' and '.join(names)}.")
    return redirect("record:corrections")
