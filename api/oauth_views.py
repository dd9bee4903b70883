"""The patient's side of OAuth 2.0: the consent screen, the SMART configuration, and
"Apps that can see my record" with the button that stops one."""

from urllib.parse import parse_qs, urlparse

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from oauth2_provider.forms import AllowForm
from oauth2_provider.models import get_application_model
from oauth2_provider.views import AuthorizationView

from accounts.access import PROXY_SESSION_KEY
from accounts.models import Role
from consent.policy import active_grant
from consent.proxies import OWN_RECORD, patient_name, whose_record_choices

from . import scopes as smart
from .oauth_server import (
    acting_grant,
    apps_of_proxies,
    choose_record,
    connected_apps,
    record_grant,
    stop_app,
    stop_proxy_app,
)


def _record_choices(request, scopes) -> list[tuple[str, str]]:
    """Whose record the app may see: the patient's own; with launch/patient (the app
    asks which patient), also each person the user acts for with a grant to see."""
    user = request.user
    if not user.is_authenticated or user.role != Role.PATIENT:
        return []
    choices = whose_record_choices(user, seeing_only=True)
    if "launch/patient" not in smart.parse(scopes or []):
        choices = [choice for choice in choices if choice[0] == OWN_RECORD]
    return choices


class ConnectForm(AllowForm):
    record = forms.CharField(required=False, max_length=20)


class AuthorizeView(AuthorizationView):
    """The consent screen: which app, what it may see, whose record, Allow or not.

    Only a signed-in patient may allow an app, for a record they may see: their own
    linked record, or (when the app asks which patient, launch/patient) that of someone
    they act for under a grant that lets them see it. The token is bound to that account
    and that one record.
    """

    template_name = "oauth/authorize.html"
    form_class = ConnectForm

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            scopes = (
                request.POST.get("scope", "") if request.method == "POST" else request.GET.get("scope", "")
            )
            self.record_choices = _record_choices(request, scopes)
            if not self.record_choices:
                return render(request, "oauth/not_available.html", status=403)
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self):
        initial = super().get_initial()
        values = [value for value, _ in self.record_choices]
        current = str(self.request.session.get(PROXY_SESSION_KEY))
        initial["record"] = current if current in values else values[0]
        return initial

    def get(self, request, *args, **kwargs):
        # oauthlib takes a challenge without a method as "plain"; refuse before the
        # patient is asked anything rather than after they allow it.
        if request.GET.get("code_challenge") and request.GET.get("code_challenge_method") != "S256":
            error = {"error": "invalid_request", "description": 'PKCE code_challenge_method must be "S256".'}
            return self.render_to_response({"error": error}, status=400)
        # The person is asked every time (REQUEST_APPROVAL_PROMPT "force"): an app may not
        # skip the screen with approval_prompt=auto, where a proxy chooses whose record.
        if "approval_prompt" in request.GET:
            request.GET = request.GET.copy()
            del request.GET["approval_prompt"]
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["may_see"] = smart.describe(kwargs.get("scopes") or [])
        context["offline"] = "offline_access" in (kwargs.get("scopes") or [])
        context["token_minutes"] = settings.OAUTH_ACCESS_TOKEN_MINUTES
        context["record_choices"] = self.record_choices
        context["for_others"] = any(value != OWN_RECORD for value, _ in self.record_choices)
        context["chosen_record"] = context["form"].initial.get("record") if "form" in context else None
        return context

    def form_invalid(self, form):
        # Only a tampered form gets here (every field is hidden or a radio we offered).
        error = {"error": "invalid_request", "description": "The app's request was changed on its way here."}
        return self.render_to_response({"error": error}, status=400)

    def form_valid(self, form):
        if form.cleaned_data.get("allow"):
            chosen = form.cleaned_data.get("record") or OWN_RECORD
            grant = None if chosen == OWN_RECORD else active_grant(self.request.user, chosen)
            if chosen not in [value for value, _ in self.record_choices] or (
                chosen != OWN_RECORD and grant is None
            ):
                error = {"error": "invalid_request", "description": "Choose whose record the app may see."}
                return self.render_to_response({"error": error}, status=400)
            application = get_application_model().objects.get(client_id=form.cleaned_data["client_id"])
            choose_record(user=self.request.user, application=application, grant=grant)
        response = super().form_valid(form)
        location = getattr(response, "url", "") or ""
        if form.cleaned_data.get("allow") and "code" in parse_qs(urlparse(location).query):
            application = get_application_model().objects.get(client_id=form.cleaned_data["client_id"])
            record_grant(user=self.request.user, application=application, scope=form.cleaned_data["scope"])
        return response


@require_GET
def smart_configuration(request):
    """SMART App Launch discovery: where to authorise, what is supported."""

    def url(name: str) -> str:
        return request.build_absolute_uri(reverse(name))

    return JsonResponse(
        {
            "issuer": request.build_absolute_uri("/").rstrip("/"),
            "authorization_endpoint": url("oauth:oauth2_provider:authorize"),
            "token_endpoint": url("oauth:oauth2_provider:token"),
            "revocation_endpoint": url("oauth:oauth2_provider:revoke-token"),
            "introspection_endpoint": url("oauth:oauth2_provider:introspect"),
            "management_endpoint": url("oauth:apps"),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": list(smart.ALL_SCOPES),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": [
                "launch-standalone",
                "client-public",
                "client-confidential-symmetric",
                "permission-patient",
                "permission-offline",
                "context-standalone-patient",
            ],
        }
    )


@login_required
@require_http_methods(["GET", "POST"])
def apps(request):
    """Apps the signed-in patient connected (to their record or to that of someone they
    act for), and apps people acting for them connected to theirs; a POST stops one."""
    user = request.user
    if user.role != Role.PATIENT:
        raise Http404
    link = getattr(user, "patient_link", None) if hasattr(user, "patient_link") else None
    if request.method == "POST":
        wanted = request.POST.get("application", "")
        proxy_app = request.POST.get("proxy_app", "")
        if wanted.isdigit() and len(wanted) < 12:
            application = get_application_model().objects.filter(pk=wanted).first()
            grant = acting_grant(user.pk, application.pk) if application is not None else None
            whose = f"the record of {patient_name(grant)}" if grant is not None else "your record"
            if application is None:
                raise Http404
            if stop_app(user=user, application=application):
                messages.success(request, f"{application.name} can no longer see {whose}.")
            else:  # stopped already (a second click), or never connected: nothing changes
                messages.info(request, f"{application.name} has no access to stop.")
        elif proxy_app.isdigit() and len(proxy_app) < 12 and link is not None:
            stopped = stop_proxy_app(patient_user=user, patient_id=link.patient_id, proxy_app_id=proxy_app)
            if stopped is None:
                raise Http404  # not an app connected to this patient's record
            messages.success(
                request,
                f"{stopped.application.name}, connected by {stopped.connected_by}, "
                "can no longer see your record.",
            )
        return redirect("oauth:apps")
    return render(
        request,
        "oauth/apps.html",
        {
            "apps": connected_apps(user),
            "proxy_apps": apps_of_proxies(link.patient_id) if link is not None else [],
        },
    )
