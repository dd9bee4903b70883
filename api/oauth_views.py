"""The patient's side of OAuth 2.0: the consent screen, the SMART configuration, and
"Apps that can see my record" with the button that stops one."""

from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from oauth2_provider.models import get_application_model
from oauth2_provider.views import AuthorizationView

from accounts.models import Role

from . import scopes as smart
from .oauth_server import connected_apps, record_grant, stop_app


def _linked_patient(user) -> bool:
    return user.role == Role.PATIENT and hasattr(user, "patient_link")


class AuthorizeView(AuthorizationView):
    """The consent screen: which app, what it may see, Allow or Do not allow.

    Only a signed-in patient whose account is linked to a record may allow an app: the
    token is bound to that account, and so to that one record.
    """

    template_name = "oauth/authorize.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not _linked_patient(request.user):
            return render(request, "oauth/not_available.html", status=403)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        # oauthlib takes a challenge without a method as "plain"; refuse before the
        # patient is asked anything rather than after they allow it.
        if request.GET.get("code_challenge") and request.GET.get("code_challenge_method") != "S256":
            error = {"error": "invalid_request", "description": 'PKCE code_challenge_method must be "S256".'}
            return self.render_to_response({"error": error}, status=400)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["may_see"] = smart.describe(kwargs.get("scopes") or [])
        context["offline"] = "offline_access" in (kwargs.get("scopes") or [])
        context["token_minutes"] = settings.OAUTH_ACCESS_TOKEN_MINUTES
        return context

    def form_valid(self, form):
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
    """Apps that can see the signed-in patient's record; a POST stops one of them."""
    user = request.user
    if user.role != Role.PATIENT:
        raise Http404
    if request.method == "POST":
        application = (
            get_application_model().objects.filter(pk=request.POST.get("application", "")).first()
            if request.POST.get("application", "").isdigit()
            else None
        )
        if application is not None and stop_app(user=user, application=application):
            messages.success(request, f"{application.name} can no longer see your record.")
        return redirect("oauth:apps")
    return render(request, "oauth/apps.html", {"apps": connected_apps(user)})
