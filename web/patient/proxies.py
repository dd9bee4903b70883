"""People who can act for the patient, and choosing whose record a proxy looks at.

The patient's page lists every grant on their record, ends any of them and gives a new
one (consent.proxies holds the rules). Someone acting for the patient never sees or
changes who else may act for them: to them these pages do not exist (404), as the
domain refuses them the grants and endings.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import PROXY_SESSION_KEY
from accounts.models import ProxyAccess
from consent.policy import Actor, NotFound, actor_for
from consent.proxies import (
    OWN_RECORD,
    ProxyProblem,
    active_grants_of,
    end_grant,
    grant_by_patient,
    own_grants,
    own_patient,
    patient_name,
    whose_record_choices,
)
from consent.web import client_address
from phr.render.dates import day
from web.patient.sharing import patient_page
from web.proxy_forms import GrantForm, rights_in_words

# The relationships as the patient reads them about their own record.
RELATIONSHIP_WORDS = {
    ProxyAccess.Relationship.CHILD: "Your parent or guardian",
    ProxyAccess.Relationship.YOUNG_PERSON: "Your parent or guardian, agreed by your practice",
    ProxyAccess.Relationship.CHOSEN: "Someone you chose",
    ProxyAccess.Relationship.LASTING_POWER: (
        "Your attorney under a lasting power of attorney for health and welfare"
    ),
}

# The same relationships as the proxy reads them: "You act for Mia Jones as ...".
PROXY_RELATIONSHIP_WORDS = {
    ProxyAccess.Relationship.CHILD: "their parent or guardian",
    ProxyAccess.Relationship.YOUNG_PERSON: "their parent or guardian, agreed by their practice",
    ProxyAccess.Relationship.CHOSEN: "someone they chose",
    ProxyAccess.Relationship.LASTING_POWER: (
        "their attorney under a lasting power of attorney for health and welfare"
    ),
}


@dataclass(frozen=True)
class GrantRow:
    """One grant as a page shows it: who, what, until when, why, given by whom, now."""

    grant: ProxyAccess
    who: str
    relationship: str
    rights: list[str]
    given_by: str
    status: str
    active: bool


def grant_status(grant: ProxyAccess, now=None) -> str:
    """In force, ended (on which day), or not started yet."""
    now = now or timezone.now()
    if grant.is_active(now):
        return "Active"
    if grant.ended_at is not None:
        return f"Ended on {day(grant.ended_at)}"
    if grant.ends_at <= now:
        return f"Ended on {day(grant.ends_at)}"
    return f"Starts on {day(grant.starts_at)}"


def grant_rows(grants: list[ProxyAccess], *, viewer, words: dict | None = None) -> list[GrantRow]:
    """The grants in words, the viewer's own doing named as "You"."""
    now = timezone.now()
    rows = []
    for grant in grants:
        if grant.granted_by_organisation is not None:
            given_by = grant.granted_by_organisation.name
        elif grant.granted_by_id == viewer.pk:
            given_by = "You"
        else:
            given_by = "The patient"
        rows.append(
            GrantRow(
                grant=grant,
                who=grant.proxy.get_full_name() or grant.proxy.email,
                relationship=(words or {}).get(grant.relationship) or grant.get_relationship_display(),
                rights=rights_in_words(grant),
                given_by=given_by,
                status=grant_status(grant, now),
                active=grant.is_active(now),
            )
        )
    return rows


@require_GET
@patient_page
def proxies(request, actor: Actor):
    """Everyone who can act, or could act, for the patient, and a way to end each."""
    rows = grant_rows(own_grants(actor), viewer=request.user, words=RELATIONSHIP_WORDS)
    return render(request, "sharing/proxies.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@patient_page
def proxy_add(request, actor: Actor):
    """Let someone the patient chooses act for them: what they may do, until when, why."""
    own_patient(actor)  # the patient themself, never someone acting for them
    form = GrantForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            grant_by_patient(
                actor=actor,
                email=data["email"],
                rights=form.chosen_rights(),
                until=data["until"],
                reason=data["reason"],
            )
        except ProxyProblem as problem:
            form.add_problem(problem)
        else:
            messages.success(request, f"{data['email']} can now act for you until {day(data['until'])}.")
            return redirect("sharing:proxies")
    return render(
        request,
        "sharing/proxy_add.html",
        {"form": form, "errors": form.error_list(), "until_values": form.until_values()},
        status=400 if form.is_bound and form.error_list() else 200,
    )


@require_POST
@patient_page
def proxy_end(request, actor: Actor, grant_id: int):
    """End one grant on the patient's own record now. A grant the patient holds for
    someone else is not on this page: they stop it from the chooser (acting_for_end)."""
    patient = own_patient(actor)  # the patient themself, never someone acting for them
    if not ProxyAccess.objects.filter(pk=grant_id, patient=patient).exists():
        raise NotFound
    grant = end_grant(actor=actor, grant_id=grant_id, reason="Ended by the patient")  # NotFound: 404
    messages.success(request, f"{grant.proxy.email} can no longer act for you.")
    return redirect("sharing:proxies")


# --- Whose record are you looking at? -------------------------------------------------


class WhoseRecordForm(forms.Form):
    whose = forms.ChoiceField(
        label="Whose record are you looking at?",
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose whose record you want to look at",
            "invalid_choice": "Choose one of the people listed",
        },
    )

    def __init__(self, *args, choices: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["whose"].choices = choices


@dataclass(frozen=True)
class HeldGrant:
    """A grant the signed-in person holds, as they read it: whose, as what, what they may
    do, until when."""

    grant: ProxyAccess
    name: str
    relationship: str
    rights: list[str]


def held_rows(grants: list[ProxyAccess]) -> list[HeldGrant]:
    return [
        HeldGrant(
            grant=grant,
            name=patient_name(grant),
            relationship=PROXY_RELATIONSHIP_WORDS.get(grant.relationship)
            or grant.get_relationship_display().lower(),
            rights=rights_in_words(grant),
        )
        for grant in grants
    ]


@require_http_methods(["GET", "POST"])
def acting_for(request):
    """A proxy chooses whose record they act for: their own, or one their active grants
    name. The choice lives in the session; the policy checks the grant on every request."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if user.role != "patient":
        raise Http404
    grants = active_grants_of(user)
    choices = whose_record_choices(user)
    current = str(request.session.get(PROXY_SESSION_KEY))
    values = [value for value, _ in choices]
    chosen = current if current in values else (OWN_RECORD if OWN_RECORD in values else None)
    form = WhoseRecordForm(
        request.POST if request.method == "POST" else None,
        choices=choices,
        initial={"whose": chosen},
    )
    if request.method == "POST" and form.is_valid():
        whose = form.cleaned_data["whose"]
        if whose == OWN_RECORD:
            request.session.pop(PROXY_SESSION_KEY, None)
            messages.success(request, "You are looking at your own record.")
        else:
            grant = next(g for g in grants if str(g.pk) == whose)
            request.session[PROXY_SESSION_KEY] = grant.pk
            messages.success(request, f"You are now acting for {patient_name(grant)}.")
        return redirect("record:summary")
    return render(
        request,
        "sharing/proxies_acting_for.html",
        {
            "form": form,
            "grants": grants,
            "held": held_rows(grants),
            "has_choices": bool(form.fields["whose"].choices),
        },
        status=400 if form.errors else 200,
    )


@require_POST
def acting_for_end(request, grant_id: int):
    """The proxy stops acting for someone: ends a grant they hold, as themselves (their
    own actor, never the one acting for the patient), whether or not their account is
    linked to a record of their own."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if user.role != "patient":
        raise Http404
    # Only a grant this person holds: the patient's own grants to others end on their
    # "People who can act for you" page.
    if not ProxyAccess.objects.filter(pk=grant_id, proxy=user).exists():
        raise Http404
    actor = actor_for(user, source_address=client_address(request))
    try:
        grant = end_grant(actor=actor, grant_id=grant_id, reason="Ended by the proxy")
    except NotFound:
        raise Http404 from None
    if str(request.session.get(PROXY_SESSION_KEY)) == str(grant.pk):
        request.session.pop(PROXY_SESSION_KEY, None)
    messages.success(request, f"You no longer act for {patient_name(grant)}.")
    return redirect("portal:acting_for")
