"""Share links: the patient's pages to make and revoke them, the page a link opens and
the link's SMART Health Link manifest, for apps.

The viewer's page and the manifest read the record through
consent.share_links.open_shared_record (the policy, as the patient, audited as the link)
and release only consent.share_links.released of it. An unknown, expired, revoked or
locked link gets one and the same "This link does not work" page (404 from the
manifest), so nobody can tell which. The token is never written to the audit trail, the
session or a log of ours.
"""

from __future__ import annotations

import hashlib
import json
import time
from io import BytesIO

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accuracy import record_display as display
from consent import share_links
from consent.policy import Action, Actor, NotFound, kept_to_holder, open_record
from consent.share_models import MAX_DAYS, ShareLink
from consent.web import client_address
from phr.models import Category
from web.common import newest_first
from web.patient.sharing import patient_themself_page

SESSION_KEY = "share_links_open"
ACCESS_SECONDS = 15 * 60
ADDRESS_LIMIT = 20  # wrong passcodes per address per hour, across every link
ADDRESS_WINDOW = 60 * 60
SUMMARY_KINDS = share_links.SUMMARY_KINDS
RECIPIENT_LENGTH = 80


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
            ("items", "Only the items I tick below"),
        ],
        initial="summary",
        widget=forms.RadioSelect,
        error_messages={"required": "Choose what to share"},
    )
    categories = forms.MultipleChoiceField(
        label="Which kinds of information a summary or whole record includes",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=(
            "Sexual health, assisted conception, gender identity and safeguarding "
            "are left out unless you tick them."
        ),
    )
    item_ids = forms.MultipleChoiceField(
        label="Items to share",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only used when you choose to share the items you tick.",
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

    def __init__(self, *args, items=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["categories"].choices = [
            (value, f"{label} (left out unless you tick it)" if kept_to_holder(value) else label)
            for value, label in Category.choices
        ]
        self.fields["categories"].initial = share_links.default_categories()
        self.fields["item_ids"].choices = [(str(entry.pk), _item_label(entry)) for entry in items]

    def clean(self):
        data = super().clean()
        if data.get("scope") != "items":
            data["item_ids"] = []
        return data


def _item_label(entry) -> str:
    words = f"{display.patient_title(entry)} ({display.type_name(entry.resource_type).lower()})"
    if kept_to_holder(entry.category):
        words += f", {Category(entry.category).label.lower()}: left out unless you tick it"
    return words


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


def _own_record(actor: Actor):
    # The patient's own view, read as on their record pages (their own looks are not
    # listed in their access log).
    return open_record(actor, actor.patient_id, action=Action.READ_RECORD)


@require_http_methods(["GET"])
@patient_themself_page
def links(request, actor: Actor):
    """The patient's share links, newest first, with how often each was viewed and what
    each leaves out (never shown to whoever opens the link)."""
    own = list(ShareLink.objects.of_patient(actor.patient_id))
    access = _own_record(actor)

    def left_out(entries):
        return {
            link.pk: list(
                share_links.left_out(share_links.Selection.of(link), entries).values_list(
                    "category", flat=True
                )
            )
            for link in own
        }

    left = access.counts(left_out, detail={"page": "share-links"})
    rows = [(link, share_links.left_out_words(left[link.pk])) for link in own]
    return render(request, "share/links.html", {"links": own, "rows": rows, "max_days": MAX_DAYS})


@require_http_methods(["GET", "POST"])
@patient_themself_page
def new(request, actor: Actor):
    """Make a link: shown once with its QR code (and the passcode, when we made it); the
    page says what the patient's choice leaves out."""
    access = _own_record(actor)
    items = access.read(
        lambda entries: newest_first(display.record_items(entries).filter(entered_in_error=False)),
        detail={"page": "share-link-new"},
    )
    form = ShareLinkForm(request.POST or None, items=items)
    if request.method == "POST" and form.is_valid():
        try:
            created = share_links.create_share_link(actor=actor, **form.cleaned_data)
        except share_links.ShareLinkError as error:
            form.add_error(None, str(error))
        else:
            return _created_page(request, access, created)
    default = share_links.Selection("summary", tuple(share_links.default_categories()))
    context = {"form": form, "left_out": share_links.count_left_out(access=access, selection=default)}
    return render(request, "share/new.html", context, status=400 if form.errors else 200)


def _created_page(request, access, created) -> HttpResponse:
    link = created.link
    url = request.build_absolute_uri(reverse("share:view", kwargs={"token": created.token}))
    manifest = request.build_absolute_uri(reverse("share:manifest", kwargs={"token": created.token}))
    shl = share_links.shlink(link=link, key=created.key, manifest_url=manifest, viewer_url=url)
    left = share_links.count_left_out(access=access, selection=share_links.Selection.of(link))
    response = render(
        request,
        "share/created.html",
        {
            "link": link,
            "url": url,
            "shlink": shl,
            "passcode": created.passcode,
            "left_out": left,
            # The viewer page's address, then "#shlink:/...": a camera opens our page, an
            # app that reads SMART Health Links finds the link after "#".
            "qr_svg": mark_safe(_qr_svg(shl)),  # noqa: S308 - made here from our own URL
        },
    )
    return _no_store(response)


@require_POST
@patient_themself_page
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
    selection = share_links.Selection.of(link)
    entries = access.read(
        lambda base: newest_first(share_links.released(selection, base)).select_related("owner"),
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


# --- The SMART Health Link's manifest, for apps -------------------------------------------


def _manifest_refusal(status: int, body: dict | None = None) -> JsonResponse:
    response = JsonResponse(body or {}, status=status)
    response._has_been_logged = True  # keep the token out of Django's request log
    return _no_store(response)


@csrf_exempt  # an app's POST, with no session or cookie: the passcode is the credential
@require_POST
def manifest(request, token: str):
    """The link's manifest (SMART Health Links): with the right passcode, one file, the
    FHIR Bundle of what the link releases, encrypted with the link's key. A wrong passcode
    counts towards the same lock as the viewer page's and is answered 401 with the
    attempts left; a link that does not work, 404."""
    link = share_links.find_usable(token)
    if link is None or not link.sealed_key:
        return _manifest_refusal(404)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    recipient = body.get("recipient") if isinstance(body, dict) else None
    passcode = body.get("passcode") if isinstance(body, dict) else None
    if not isinstance(recipient, str) or not recipient.strip() or not isinstance(passcode, (str, type(None))):
        return _manifest_refusal(400, {"error": "Send JSON with a recipient and the passcode"})
    if _address_blocked(request):
        return _manifest_refusal(429, {"error": "Too many wrong passcodes from this network"})
    address = client_address(request)
    if not share_links.try_passcode(link=link, passcode=passcode or "", source_address=address):
        _count_wrong_from_address(request)
        link.refresh_from_db()
        if link.locked_at is None and not link.usable():
            return _manifest_refusal(404)
        return _manifest_refusal(401, {"remainingAttempts": share_links.attempts_left(link)})
    try:
        access = share_links.open_shared_record(link=link, source_address=address)
    except NotFound:
        return _manifest_refusal(404)
    selection = share_links.Selection.of(link)
    patient_id = access.patient.pk
    entries = access.read(
        lambda base: display.with_dispute_flags(share_links.released(selection, base), patient_id).order_by(
            "resource_type", "pk"
        ),
        detail={
            "share_link": link.pk,
            "label": link.label,
            "scope": link.scope,
            "format": "smart-health-link",
            "recipient": "".join(ch for ch in recipient if ch.isprintable()).strip()[:RECIPIENT_LENGTH],
        },
    )
    share_links.count_view(link)
    bundle = display.fhir_bundle(entries, timezone.now())
    embedded = share_links.encrypt_file(link=link, content=bundle)
    return _no_store(JsonResponse({"files": [{"contentType": share_links.FILE_TYPE, "embedded": embedded}]}))
