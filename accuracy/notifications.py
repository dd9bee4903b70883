"""What the correction workflow's inbox messages say and where they lead.

Each message says who asked or acted and links to the page it is about: the patient's
own request page, the request in the staff workspace, or (for staff elsewhere told of a
correction) the item itself, behind the policy. Links are paths from reverse(): ids
only, never a name or NHS number. The email copy says none of this (accounts.outbox).
"""

from __future__ import annotations

from django.urls import reverse

from consent.policy import actor_for, admits_entry
from phr.models import Organisation, RecordEntry
from phr.vocabulary import NOT_ITEMS

from .models import CorrectionRequest


def patient_page(request: CorrectionRequest) -> str:
    return reverse("record:correction", args=[request.pk])


def staff_page(request: CorrectionRequest) -> str:
    return reverse("workspace:request", args=[request.pk])


def overdue_page() -> str:
    """Where an IG officer follows up requests past their deadline."""
    return reverse("ig:corrections")


def who(actor) -> str:
    """A member of staff as the portal names them elsewhere: full name, else email."""
    user = actor.user
    return (user.get_full_name() if user is not None else "") or actor.label


def _resource_type(request: CorrectionRequest) -> str:
    """The item's kind, without loading its clinical columns (the entry itself is read
    only through the policy)."""
    if CorrectionRequest.entry.is_cached(request):
        return request.entry.resource_type
    found = RecordEntry.objects.filter(pk=request.entry_id).values_list("resource_type", flat=True)
    return next(iter(found), "")


def item(request: CorrectionRequest, *, to_patient: bool = False) -> str:
    """The item by name, in quotation marks; a patient's own details by what they are,
    never by the name they hold ("their personal details", not "Fatima Patel")."""
    if _resource_type(request) in NOT_ITEMS:
        return "your personal details" if to_patient else "their personal details"
    return f'"{request.item_display or request.element_label}"'


def patient(request: CorrectionRequest) -> str:
    """The patient by name, for the staff who hold the request (they see it on the
    request page anyway)."""
    return request.patient.display_name or "A patient"


def asked(request: CorrectionRequest) -> str:
    """Who asked whom to correct what, for the staff who hold the request."""
    return f"{patient(request)} asked {request.owner.name} to correct {item(request)}."


def to_patient(request: CorrectionRequest, body: str) -> str:
    """A message to the patient, saying which organisation wrote and about which item."""
    about = item(request, to_patient=True)
    return f"From {request.owner.name}, about your request to correct {about}:\n\n{body}"


def admits(member, organisation: Organisation, entry: RecordEntry) -> bool:
    """Whether the policy lets this member of staff, acting for this organisation, see the
    item today (emergency access does not count: it is for the emergency, not for later
    notices)."""
    return admits_entry(actor_for(member, organisation=organisation), entry)


def corrected_elsewhere(
    member,
    organisation: Organisation,
    owner: Organisation,
    entry: RecordEntry,
    versions: list[int],
    because: str,
    item_name: str,
    patient_name: str,
) -> tuple[str, str]:
    """The body and link of "An item you saw has been corrected" for one member of staff:
    the patient and the item by name, and a link to the item, when the policy admits them;
    otherwise only who corrected it and whom to ask, with no link to a page they may not open."""
    seen = ", ".join(map(str, versions))
    if not admits(member, organisation, entry):
        return (
            f"{owner.name} corrected an item {organisation.name} saw (version {seen}) {because}. "
            f"The patient's sharing choices do not let {organisation.name} see it now: ask "
            f"{owner.name} before relying on what you saw.",
            "",
        )
    return (
        f"{owner.name} corrected {item_name} in {patient_name}'s record, {because}. "
        f"{organisation.name} saw an earlier version (version {seen}). Read the current version "
        "before relying on it.",
        reverse("clinician:entry", args=[entry.patient_id, entry.pk]),
    )
