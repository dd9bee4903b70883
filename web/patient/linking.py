"""Pages for linking an account to a record: the patient redeems a linkage key, and a
clinician issues one. The rules live in accounts.linking; these parse and render."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.access import ACTING_FOR_SESSION_KEY, staff_required
from accounts.client_address import client_address
from accounts.linking import NOT_HELD, LinkingError, issue_linkage_key, redeem_linkage_key
from accounts.models import PatientLink, Role
from phr.models import Organisation, Patient
from web.patient.linking_forms import IssueLinkageKeyForm, LinkRecordForm


@login_required
@require_http_methods(["GET", "POST"])
def link_record(request):
    if request.user.role != Role.PATIENT:
        raise Http404
    link = PatientLink.objects.filter(user=request.user).select_related("patient").first()
    if link is not None:
        return render(request, "linking/linked.html", {"link": link})
    form = LinkRecordForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            redeem_linkage_key(
                user=request.user,
                account_id=form.cleaned_data["account_id"],
                passphrase=form.cleaned_data["passphrase"],
                ods_code=form.cleaned_data["ods_code"],
                date_of_birth=form.cleaned_data["date_of_birth"],
                source_address=client_address(request),
            )
        except LinkingError as refusal:
            form.add_error(None, refusal.message)
        else:
            messages.success(request, "Your account is now linked to your record.")
            return redirect("home")
    return render(request, "linking/link_record.html", {"form": form})


def _acting_for(request) -> Organisation | None:
    """The organisation the clinician chose to act for, else their first membership."""
    organisations = {
        m.organisation_id: m.organisation for m in request.user.memberships.select_related("organisation")
    }
    chosen = request.session.get(ACTING_FOR_SESSION_KEY)
    if chosen in organisations:
        return organisations[chosen]
    return organisations[min(organisations)] if organisations else None


@never_cache  # the letter carries a passphrase: no copy may stay in a cache
@staff_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def issue_key(request):
    organisation = _acting_for(request)
    if organisation is None:
        raise Http404
    form = IssueLinkageKeyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        patient = Patient.objects.filter(nhs_number=form.cleaned_data["nhs_number"]).first()
        try:
            if patient is None:  # told apart from "not held" by nobody: same message
                raise LinkingError(NOT_HELD)
            key, passphrase = issue_linkage_key(
                issued_by=request.user, organisation=organisation, patient=patient
            )
        except LinkingError as refusal:
            form.add_error("nhs_number", refusal.message)
        else:
            return render(
                request, "linking/key_letter.html", {"key": key, "passphrase": passphrase, "patient": patient}
            )
    return render(request, "linking/issue_key.html", {"form": form, "organisation": organisation})
