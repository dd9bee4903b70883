"""Clinician pages: find a patient, read what the policy permits, declare break-glass.

Every page is for clinicians with two-factor authentication; every read of clinical
data goes through policy.open_record, which decides and audits. Patients are named in
URLs only by their random UUID, never by NHS number or name.
"""

import hashlib
import hmac
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import ACTING_FOR_SESSION_KEY, staff_required
from accuracy.models import CorrectionRequest, Statement
from accuracy.record_display import (
    KINDS,
    KINDS_BY_SLUG,
    item_details,
    record_items,
    status_words,
    type_name,
)
from accuracy.services import disputed_entry_ids
from consent.policy import Action, NotFound, categories_kept_to_holder, decide, open_record
from consent.policy import find_patient as patient_by_id
from consent.proxies import practice_of
from consent.services import InvalidChange, declare_break_glass, end_break_glass
from consent.web import request_actor
from phr.models import Category, EntryVersion, Organisation, Patient
from web.clinician.banner import patient_banner
from web.clinician.forms import ActingForForm, BreakGlassForm, FindPatientForm
from web.clinician.sections import build_sections, latest_of_each_type, newest_first, totals_by_kind
from web.common import pretty_json

PAGE_SIZE = 50
# How many of each type's most recent items a section shows before "Show all".
SECTION_LIMIT = 20


def _memberships(user) -> list[Organisation]:
    memberships = user.memberships.select_related("organisation").order_by("organisation__name")
    return [m.organisation for m in memberships]


def _refusal(request, patient_id):
    """One page for "no such patient" and "not permitted": same body, same status."""
    return render(request, "clinician/refused.html", {"patient_id": patient_id}, status=404)


def _no_match_id(nhs_number: str) -> uuid.UUID:
    # A stable, unguessable stand-in for a number that matches nobody: the same number
    # always leads to the same address, just as a real patient's number does.
    digest = hmac.new(settings.SECRET_KEY.encode(), f"no-patient:{nhs_number}".encode(), hashlib.sha256)
    return uuid.UUID(bytes=digest.digest()[:16], version=4)


@staff_required("clinician")
@require_http_methods(["GET", "POST"])
def find_patient(request):
    """Find a patient by NHS number and go to their record page.

    Whether an NHS number belongs to a patient of the network is itself a disclosure.
    So a number that matches nobody is not answered with "no record found": it leads,
    like a real patient's number, to a record address (a stable pseudo-UUID derived
    from the number with the server's secret), and the record page answers both a
    patient who does not exist and one whose choices refuse this organisation with the
    same "You cannot see this record" page. Only declaring emergency access, with a
    stated reason, tells the two apart; a declaration that opens a record is audited,
    and the patient and IG are told.
    """
    organisations = _memberships(request.user)
    if request.session.get(ACTING_FOR_SESSION_KEY) not in {o.pk for o in organisations}:
        # A choice left over from a membership since ended: fall back to a current one.
        request.session.pop(ACTING_FOR_SESSION_KEY, None)
    actor = request_actor(request)
    form = FindPatientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        number = form.cleaned_data["nhs_number"]
        found = Patient.objects.filter(nhs_number=number).values_list("pk", flat=True).first()
        return redirect("clinician:record", patient_id=found or _no_match_id(number))
    acting = actor.organisation
    return render(
        request,
        "clinician/find_patient.html",
        {
            "form": form,
            "acting_for": acting,
            "acting_form": ActingForForm(
                organisations=organisations, initial={"organisation": acting.pk if acting else None}
            )
            if len(organisations) > 1
            else None,
        },
    )


@staff_required("clinician")
@require_POST
def acting_for(request):
    """Choose which of the clinician's own organisations they act for."""
    form = ActingForForm(request.POST, organisations=_memberships(request.user))
    if form.is_valid():
        request.session[ACTING_FOR_SESSION_KEY] = form.cleaned_data["organisation"]
    return redirect("clinician:find_patient")


def _filters(request) -> dict:
    kind = request.GET.get("kind", "")[:64]
    owner = request.GET.get("owner", "")[:9]
    return {"kind": kind if kind in KINDS_BY_SLUG else "", "owner": int(owner) if owner.isdigit() else None}


@staff_required("clinician")
def record(request, patient_id):
    """The patient's record as the policy permits this clinician to see it, in clinical
    sections: each kind's most recent items, or one kind a page at a time."""
    try:
        access = open_record(request_actor(request), patient_id, action=Action.READ_RECORD)
    except NotFound:
        return _refusal(request, patient_id)
    chosen = _filters(request)
    query = {k: v for k, v in chosen.items() if v}
    only = KINDS_BY_SLUG.get(chosen["kind"])

    def filtered(qs):
        qs = record_items(qs)
        if only is not None:
            qs = only.select(qs)
        if chosen["owner"]:
            qs = qs.filter(owner_id=chosen["owner"])
        return qs

    type_counts = access.counts(
        lambda qs: filtered(qs).values_list("resource_type").annotate(n=Count("pk")).order_by(), detail=query
    )
    totals = totals_by_kind(type_counts)
    page = None
    if only is None:
        entries = access.read(
            lambda qs: latest_of_each_type(filtered(qs).select_related("owner"), SECTION_LIMIT), detail=query
        )
    else:
        page = Paginator(range(totals.get(only.slug, 0)), PAGE_SIZE).get_page(request.GET.get("page"))
        start = (page.number - 1) * PAGE_SIZE
        entries = access.read(
            lambda qs: newest_first(filtered(qs).select_related("owner"))[start : start + PAGE_SIZE],
            detail={"page": page.number, **query},
        )
    decision = access.decision
    hidden = set(Category.values) - set(decision.categories)
    return render(
        request,
        "clinician/record.html",
        {
            "patient": access.patient,
            "banner": patient_banner(access),
            "sections": build_sections(entries, totals, only=only),
            "total": sum(totals.values()),
            "page": page,
            "query": urlencode(query),
            "owner_query": urlencode({"owner": chosen["owner"]}) if chosen["owner"] else "",
            "chosen": chosen,
            "kinds": [(kind.slug, kind.title) for kind in KINDS],
            "owners": Organisation.objects.order_by("name"),
            "break_glass": decision.break_glass,
            # The practice that holds the record manages who may act for the patient.
            "manages_proxies": _manages_proxies(access.actor, access.patient.pk),
            # Items this organisation re-filed from this record to another patient's.
            "moved_away": access.moved_away(),
            # The policy's own answer: which categories this organisation may see. Whether
            # any withheld items exist is not asked, since asking would disclose it.
            "partly_withheld": decision.break_glass is None and bool(hidden - categories_kept_to_holder()),
            # Only the categories kept to their holder, as for every patient by default.
            "sensitive_kept": decision.break_glass is None and bool(hidden & categories_kept_to_holder()),
        },
    )


def _manages_proxies(actor, patient_id) -> bool:
    try:
        practice_of(actor, patient_id)
    except NotFound:
        return False
    return True


def _banner_if_readable(request, patient_id):
    """The patient banner when this clinician may already read some of the record, else
    None: a refused record shows nothing of whose it is, as a missing one does not. The
    decision is asked first, so that opening the form is not logged as a refused read."""
    actor = request_actor(request)
    patient = patient_by_id(patient_id)
    if patient is None or not decide(actor, Action.READ_RECORD, patient):
        return None
    try:
        access = open_record(actor, patient_id, action=Action.READ_RECORD)
    except NotFound:  # the decision changed in between: refused, and audited, after all
        return None
    return patient_banner(access)


@staff_required("clinician")
@require_http_methods(["GET", "POST"])
def emergency_access(request, patient_id):
    """Declare break-glass: a justified, time-limited opening the patient and IG are told of."""
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            declare_break_glass(
                actor=request_actor(request),
                patient_id=patient_id,
                reason_code=form.cleaned_data["reason_code"],
                reason_text=form.cleaned_data["reason_text"],
            )
        except NotFound:
            return _refusal(request, patient_id)
        except InvalidChange as problem:
            form.add_service_error(str(problem), getattr(problem, "field", None))
        else:
            return redirect("clinician:record", patient_id=patient_id)
    return render(
        request,
        "clinician/emergency_access.html",
        {"form": form, "patient_id": patient_id, "banner": _banner_if_readable(request, patient_id)},
    )


@staff_required("clinician")
@require_POST
def end_emergency_access(request, patient_id):
    """End this clinician's open emergency access now, rather than let it run its time."""
    try:
        end_break_glass(actor=request_actor(request), patient_id=patient_id)
    except NotFound:
        return _refusal(request, patient_id)
    messages.success(request, "Emergency access has ended. The record is closed to you again.")
    return redirect("clinician:record", patient_id=patient_id)


@staff_required("clinician")
def entry(request, patient_id, entry_id):
    """One permitted entry in full: in words, with its stored FHIR JSON behind a disclosure."""
    try:
        access = open_record(request_actor(request), patient_id, action=Action.READ_RECORD)
        item = access.read_one(entry_id)
    except NotFound:
        return _refusal(request, patient_id)
    organisation = access.actor.organisation
    return render(
        request,
        "clinician/entry.html",
        {
            "patient": access.patient,
            "banner": patient_banner(access),
            "entry": item,
            "kind_name": type_name(item.resource_type),
            "status": status_words(item),
            "details": item_details(item),
            # Art. 18 and NHS guidance: a disputed item says so, and the patient's statement
            # of disagreement (with the owner's response) stands beside it, for every viewer.
            "disputed_ids": disputed_entry_ids([item.pk]),
            "statements": Statement.objects.filter(request__entry=item),
            # The owner's own clinicians are led to the request to decide it.
            "open_request": CorrectionRequest.objects.open()
            .filter(entry=item, owner=organisation)
            .values_list("pk", flat=True)
            .first()
            if organisation is not None and organisation.pk == item.owner_id
            else None,
            # Only the versions filed under this record: a re-filed item's earlier ones
            # belong to another patient.
            "versions": EntryVersion.objects.filter(entry=item).filed_under(access.patient).count(),
            "pretty_json": pretty_json(item.json),
            "break_glass": access.decision.break_glass,
        },
    )
