"""Share links: the patient's pages to make and revoke them, and the page a link opens.

The viewer's page reads the record through consent.share_links.open_shared_record (the
policy, as the patient, audited as the link). An unknown, expired, revoked or locked
link gets one and the same "This link does not work" page, so nobody can tell which.
The token is never written to the audit trail, the session or a log of ours.
"""

from __future__ import annotations

import hashlib
import time
from io import BytesIO

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from accuracy import record_display as display
from consent import share_links
from consent.policy import Actor, NotFound
from consent.share_models import MAX_DAYS, ShareLink
from consent.web import client_address
from web.common import newest_first
from web.patient.sharing import patient_page

SESSION_KEY = "share_links_open"
ACCESS_SECONDS = 15 * 60
ADDRESS_LIMIT = 20  # wrong passcodes per address per hour, across every link
ADDRESS_WINDOW = 60 * 60
SUMMARY_KINDS = ("problems", "medications", "allergies", "test-results", "immunisations")
RECENT_RESULTS = 10


# --- The patient's pages ------------------------------------------------------------------


class ShareLinkForm(forms.Form):
    label = forms.CharField(
        label="Name this link",
        max_length=60,
        help_text="So you can tell your links apart, for example: For my holiday",
        error_messages={"required": "Enter a name for this link"},
    )
    scope = forms.ChoiceField(
        label="What to share",
        choices=[
            (
                "summary",
                "A summary: health problems, medicines, allergies, recent test results, vaccinations",
            ),
            ("full", "My whole record"),
        ],
        initial="summary",
        widget=forms.RadioSelect,
        error_messages={"required": "Choose what to share"},
    )
    days = forms.IntegerField(
        label="How many days the link works for",
        min_value=1,
        max_value=MAX_DAYS,
        initial=7,
        help_text=f"From 1 to {MAX_DAYS} days. You can stop it sooner at any time.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "class": "nhsuk-input--width-3"}),
        error_messages={
            "required": "Enter how many days the link works for",
            "invalid": f"Enter a whole number of days from 1 to {MAX_DAYS}",
            "min_value": f"Enter a whole number of days from 1 to {MAX_DAYS}",
            "max_value": f"A link can work for {MAX_DAYS} days at most",
        },
    )
    passcode = forms.CharField(
        label="Passcode (optional)",
        required=False,
        min_length=share_links.MIN_PASSCODE_LENGTH,
        max_length=64,
        strip=False,
        help_text=(
            f"At least {share_links.MIN_PASSCODE_LENGTH} characters. "
            "Leave it empty and we will make one for you."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        error_messages={
            "min_length": f"The passcode must be at least {share_links.MIN_PASSCODE_LENGTH} characters",
        },
    )


def _qr_svg(text: str) -> str:
    """The QR code of a link as inline SVG, made here: the link goes to no other service."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=4)
    out = BytesIO()
    image.save(out)
    svg = out.getvalue().decode()
    svg = svg[svg.index("<svg") :]
    return svg.replace("<svg ", '<svg role="img" aria-label="QR code of the link" class="share-qr" ', 1)


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "same-origin"  # "no-referrer" makes a form post say Origin: null
    return response


@require_http_methods(["GET"])
@patient_page
def links(request, actor: Actor):
    """The patient's share links, newest first, with how often each was viewed."""
    own = ShareLink.objects.of_patient(actor.patient_id)
    return render(request, "share/links.html", {"links": list(own), "max_days": MAX_DAYS})


@require_http_methods(["GET", "POST"])
@patient_page
def new(request, actor: Actor):
    """Make a link: shown once with its QR code (and the passcode, when we made it)."""
    form = ShareLinkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = share_links.create_share_link(actor=actor, **form.cleaned_data)
        except share_links.ShareLinkError as error:
            form.add_error(None, str(error))
        else:
            url = request.build_absolute_uri(reverse("share:view", kwargs={"token": created.token}))
            response = render(
                request,
                "share/created.html",
                {
                    "link": created.link,
                    "url": url,
                    "passcode": created.passcode,
                    "qr_svg": mark_safe(_qr_svg(url)),  # noqa: S308 - made here from our own URL
                },
            )
            return _no_store(response)
    return render(request, "share/new.html", {"form": form}, status=400 if form.errors else 200)


@require_POST
@patient_page
def revoke(request, actor: Actor, link_id: int):
    """Stop one of my links working, at once."""
    link = share_links.revoke_share_link(actor=actor, link_id=link_id)  # NotFound -> 404
    messages.success(request, f"The link “{link.label}” no longer works.")
    return redirect("share:links")


# --- The page a link opens ----------------------------------------------------------------


class PasscodeForm(forms.Form):
    passcode = forms.CharField(
        label="Passcode",
        max_length=64,
        strip=False,
        help_text="The person who shared their record will have given it to you separately.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        error_messages={"required": "Enter the passcode"},
    )


def _not_working(request) -> HttpResponse:
    # One page for unknown, expired, revoked and locked links.
    response = render(request, "share/not_working.html", status=404)
    response._has_been_logged = True  # keep the token out of Django's request log
    return _no_store(response)


def _address_key(request) -> str:
    address = client_address(request) or "unknown"
    return "share-passcode:" + hashlib.sha256(address.encode()).hexdigest()


def _address_blocked(request) -> bool:
    return (cache.get(_address_key(request)) or 0) >= ADDRESS_LIMIT


def _count_wrong_from_address(request) -> None:
    key = _address_key(request)
    cache.add(key, 0, ADDRESS_WINDOW)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, ADDRESS_WINDOW)


def _has_access(request, link: ShareLink) -> bool:
    until = request.session.get(SESSION_KEY, {}).get(str(link.pk))
    return until is not None and until > time.time()


def _grant_access(request, link: ShareLink) -> None:
    now = time.time()
    granted = {k: v for k, v in request.session.get(SESSION_KEY, {}).items() if v > now}
    granted[str(link.pk)] = now + ACCESS_SECONDS
    request.session[SESSION_KEY] = granted
    request.session.cycle_key()


def _summary(base):
    items = display.record_items(base).filter(entered_in_error=False)
    chosen = [display.KINDS_BY_SLUG[slug] for slug in SUMMARY_KINDS if slug != "test-results"]
    types = [t for kind in chosen for t in kind.resource_types]
    results = display.KINDS_BY_SLUG["test-results"].select(items)
    recent = newest_first(results).values("pk")[:RECENT_RESULTS]
    return newest_first(items.filter(Q(resource_type__in=types) | Q(pk__in=recent))).select_related("owner")


def _full(base):
    return newest_first(display.record_items(base)).select_related("owner")


def _groups(link: ShareLink, entries) -> list:
    """(kind, [(row, details)]) in the record pages' order; a summary names every one of
    its kinds, empty or not, because "no allergies recorded" is worth saying."""
    grouped = {kind.slug: rows for kind, rows in display.group_by_kind(entries)}
    if link.scope == ShareLink.Scope.SUMMARY:
        kinds = [kind for kind in display.KINDS if kind.slug in SUMMARY_KINDS]
    else:
        kinds = [kind for kind in display.KINDS if kind.slug in grouped]
    return [
        (kind, [(row, display.item_details(row.entry)) for row in grouped.get(kind.slug, [])])
        for kind in kinds
    ]


def _record_page(request, link: ShareLink) -> HttpResponse:
    try:
        access = share_links.open_shared_record(link=link, source_address=client_address(request))
    except NotFound:
        return _not_working(request)
    summary = link.scope == ShareLink.Scope.SUMMARY
    entries = access.read(
        _summary if summary else _full,
        detail={"share_link": link.pk, "label": link.label, "scope": link.scope},
    )
    share_links.count_view(link)
    response = render(
        request,
        "share/view.html",
        {"link": link, "patient": access.patient, "groups": _groups(link, entries), "summary": summary},
    )
    return _no_store(response)


@require_http_methods(["GET", "POST"])
def view(request, token: str):
    """Anyone with the link: the passcode, then the record the patient chose to share."""
    link = share_links.find_usable(token)
    if link is None:
        return _not_working(request)
    if request.method == "GET" and _has_access(request, link):
        return _record_page(request, link)
    form = PasscodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if _address_blocked(request):
            form.full_clean()
            form.add_error("passcode", "Too many wrong passcodes from this network. Try again in an hour")
            status = 429
        elif form.is_valid():
            passcode, address = form.cleaned_data["passcode"], client_address(request)
            if share_links.try_passcode(link=link, passcode=passcode, source_address=address):
                _grant_access(request, link)
                return redirect(request.path)
            _count_wrong_from_address(request)
            link.refresh_from_db()
            if not link.usable():
                return _not_working(request)
            left = share_links.attempts_left(link)
            form.add_error(
                "passcode",
                f"The passcode is not right. You can try {left} more time{'s' if left != 1 else ''}",
            )
            status = 400
        else:
            status = 400
    return _no_store(render(request, "share/passcode.html", {"form": form}, status=status))
