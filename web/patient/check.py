"""Check before you share: pause sharing, check the record item by item, holder by holder,
then choose where to share again.

The signed-in patient's own record only (sharing.patient_themself_page). The rules live in
accuracy.record_check (pauses, checks, progress) and consent (the choices and the
policy); these views parse input, call them and render.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accuracy import record_check
from accuracy.models import CheckOutcome
from consent.models import Decision
from consent.policy import Action, Actor, NotFound, authorise, open_record
from consent.services import InvalidChange
from phr.models import Organisation
from web.patient.correction_forms import WHOLE_ITEM
from web.patient.sharing import _audit_page, patient_themself_page


class OrganisationsField(forms.ModelMultipleChoiceField):
    """Member organisations by name, as patients know them (no ODS codes)."""

    def label_from_instance(self, obj) -> str:
        return obj.name


class PauseForm(forms.Form):
    """Which organisations to pause sharing with: some, or all of them."""

    organisations = OrganisationsField(
        label="Pause sharing with",
        queryset=Organisation.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose organisations from the list"},
    )
    everyone = forms.BooleanField(label="Pause sharing with every organisation", required=False)

    def clean(self):
        data = super().clean()
        if not data.get("everyone") and not data.get("organisations") and "organisations" not in self.errors:
            self.add_error(
                "organisations", "Choose the organisations to pause sharing with, or every organisation"
            )
        return data

    def error_list(self) -> list[tuple[str, str]]:
        return [("id_organisations_0", str(message)) for message in self.errors.get("organisations", [])]


END_WORDS = [
    (Decision.PERMIT, "Share my record with them"),
    (Decision.DENY, "Do not share my record with them"),
    (Decision.DEFAULT, "Go back to the usual rule"),
    ("keep", "Keep it paused for now"),
]


class FinishForm(forms.Form):
    """One choice per pause in force: share, do not share, the usual rule, or keep it."""

    def __init__(self, *args, pauses, **kwargs):
        super().__init__(*args, **kwargs)
        self.keys = {}
        for pause in pauses:
            name = f"pause_{pause.organisation_id or 'network'}"
            label = pause.organisation.name if pause.organisation_id else "Every organisation in the network"
            self.fields[name] = forms.ChoiceField(
                label=label,
                choices=END_WORDS,
                widget=forms.RadioSelect,
                error_messages={"required": f"Choose what to do about {label}"},
            )
            self.keys[name] = pause.organisation_id

    def decisions(self) -> dict[int | None, str]:
        return {self.keys[name]: value for name, value in self.cleaned_data.items() if value != "keep"}

    def error_list(self) -> list[tuple[str, str]]:
        return [
            (f"id_{name}_0", str(message)) for name in self.fields for message in self.errors.get(name, [])
        ]


def _start(request, actor: Actor, form: PauseForm, status: int = 200):
    patient, _ = authorise(actor, Action.CHANGE_CONSENT, actor.patient_id)
    pauses = record_check.pauses(patient)
    _audit_page(actor, patient, Action.READ_CONSENT.value, "check-start")
    return render(
        request,
        "check/start.html",
        {
            "form": form,
            "errors": form.error_list() if form.is_bound else [],
            "pauses": pauses,
            "paused_all": any(p.organisation_id is None for p in pauses),
            "paused_ids": {p.organisation_id for p in pauses},
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@patient_themself_page
def start(request, actor: Actor):
    """Check your record before you share it: choose whom to pause sharing with."""
    if request.method == "GET":
        return _start(request, actor, PauseForm())
    form = PauseForm(request.POST)
    if form.is_valid():
        try:
            record_check.pause_sharing(
                actor=actor,
                organisations=list(form.cleaned_data["organisations"]),
                everyone=form.cleaned_data["everyone"],
            )
        except InvalidChange as problem:
            form.add_error("organisations", str(problem))
        else:
            messages.success(
                request,
                "Sharing is paused. The organisations you chose will not see your record until you"
                " choose to share it again.",
            )
            return redirect("sharing:check_items")
    return _start(request, actor, form)


@require_GET
@patient_themself_page
def items(request, actor: Actor):
    """One holder's items at a time, each with "This looks right" and "Something is wrong"."""
    access = open_record(actor, actor.patient_id, action=Action.READ_RECORD)
    holders = record_check.by_holder(access)
    chosen = request.GET.get("holder", "")
    current = next((h for h in holders if str(h.organisation_id) == chosen), None)
    current = current or record_check.next_holder(holders)
    rows = record_check.items_of_holder(access, current.organisation_id) if current else []
    return render(
        request,
        "check/items.html",
        {
            "progress": record_check.progress(access, holders),
            "holders": holders,
            "current": current,
            "items": rows,
            "outcomes": CheckOutcome,
        },
    )


@require_POST
@patient_themself_page
def mark(request, actor: Actor, entry_id):
    """Record the patient's answer for one item; "Something is wrong" goes on to report it."""
    access = open_record(actor, actor.patient_id, action=Action.READ_RECORD)
    outcome = request.POST.get("outcome", "")
    try:
        entry, _ = record_check.mark(access, entry_id, outcome)
    except InvalidChange:
        messages.error(request, "Choose whether the item looks right.")
        return redirect("sharing:check_items")
    except NotFound:
        return render(request, "record/not_found.html", status=404)
    if outcome == CheckOutcome.SOMETHING_WRONG:
        url = reverse("record:correct", kwargs={"entry_id": entry.pk})
        return redirect(f"{url}?{urlencode({'element': WHOLE_ITEM})}")
    url = reverse("sharing:check_items")
    return redirect(f"{url}?{urlencode({'holder': entry.owner_id})}#item-{entry.pk}")


@require_http_methods(["GET", "POST"])
@patient_themself_page
def finish(request, actor: Actor):
    """The pauses in force, each with the patient's choice of what comes next."""
    patient, _ = authorise(actor, Action.CHANGE_CONSENT, actor.patient_id)
    pauses = record_check.pauses(patient)
    form = FinishForm(request.POST if request.method == "POST" else None, pauses=pauses)
    if request.method == "POST" and pauses and form.is_valid():
        try:
            made = record_check.end_pauses(actor=actor, decisions=form.decisions())
        except InvalidChange as problem:
            form.add_error(None, str(problem))
        else:
            messages.success(
                request,
                "Your sharing choices have been saved."
                if made
                else "Nothing has changed: sharing is still paused.",
            )
            return redirect("sharing:who_can_see")
    access = open_record(actor, actor.patient_id, action=Action.READ_RECORD)
    _audit_page(actor, patient, Action.READ_CONSENT.value, "check-finish")
    return render(
        request,
        "check/finish.html",
        {
            "form": form,
            "errors": form.error_list() + [("pause-form", str(m)) for m in form.non_field_errors()]
            if form.is_bound
            else [],
            "pauses": pauses,
            "progress": record_check.progress(access),
        },
    )
