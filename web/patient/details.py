"""The patient's personal details as each organisation holds them, side by side."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accuracy.personal_details import side_by_side
from consent.policy import Action

from .record import no_record_page, patient_record


@login_required
@require_GET
def personal_details(request):
    access = patient_record(request, Action.READ_RECORD)
    if access is None:
        return no_record_page(request)
    entries = access.read(
        lambda qs: qs.filter(resource_type="Patient").select_related("owner"),
        detail={"page": "personal-details"},
    )
    holdings, rows = side_by_side(entries)
    return render(
        request,
        "record/personal_details.html",
        {"holdings": holdings, "rows": rows, "differ": any(r.differ for r in rows)},
    )
