"""The practice's page of a patient's proxy access: who can act for them, ending any, and
giving a parent or an attorney access (consent.proxies holds the rules).

Only a clinician of a GP practice that holds the patient's record reaches it
(consent.proxies.practice_of); to anyone else it does not exist (404), alike for a
patient who does not exist and one the practice does not hold.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_required
from consent.policy import NotFound
from consent.proxies import ProxyProblem, end_grant, grant_by_practice, grants_for, practice_of
from consent.web import request_actor
from phr.render.dates import day
from web.clinician.record import _banner_if_readable
from web.patient.proxies import grant_rows
from web.proxy_forms import PracticeGrantForm


@staff_required("clinician")
@require_http_methods(["GET", "POST"])
def proxies(request, patient_id):
    """Every grant on the patient's record, and the form to give a new one."""
    actor = request_actor(request)
    try:
        patient = practice_of(actor, patient_id)
    except NotFound:
        raise Http404 from None
    form = PracticeGrantForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            grant_by_practice(
                actor=actor,
                patient_id=patient.pk,
                email=data["email"],
                relationship=data["relationship"],
                rights=form.chosen_rights(),
                until=data["until"],
                reason=data["reason"],
            )
        except ProxyProblem as problem:
            form.add_problem(problem)
        except NotFound:
            raise Http404 from None
        else:
            messages.success(
                request, f"{data['email']} can now act for the patient until {day(data['until'])}."
            )
            return redirect("clinician:proxies", patient_id=patient.pk)
    errors = form.error_list()
    return render(
        request,
        "clinician/proxies.html",
        {
            "patient_id": patient.pk,
            "banner": _banner_if_readable(request, patient.pk),
            "rows": grant_rows(grants_for(patient.pk), viewer=request.user),
            "form": form,
            "errors": errors,
            "until_values": form.until_values(),
        },
        status=400 if errors else 200,
    )


@staff_required("clinician")
@require_POST
def proxy_end(request, patient_id, grant_id: int):
    """End one of the patient's grants now."""
    actor = request_actor(request)
    try:
        patient = practice_of(actor, patient_id)
        if grant_id not in {grant.pk for grant in grants_for(patient.pk)}:
            raise NotFound
        grant = end_grant(actor=actor, grant_id=grant_id, reason="Ended by the practice")
    except NotFound:
        raise Http404 from None
    messages.success(request, f"{grant.proxy.email} can no longer act for the patient.")
    return redirect("clinician:proxies", patient_id=patient.pk)
