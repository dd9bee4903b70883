"""OAuth 2.0 (django-oauth-toolkit at /o/), SMART configuration and the patient's
connected apps.

Only DOT's protocol endpoints are mounted (authorize, token, revoke_token,
introspect); its application-management pages are not: clients are registered by an
operator (the admin, or ``issue_token``), never by whoever is signed in.
"""

from django.urls import include, path
from oauth2_provider import views as dot

from . import oauth_views

provider = [
    path("authorize/", oauth_views.AuthorizeView.as_view(), name="authorize"),
    path("token/", dot.TokenView.as_view(), name="token"),
    path("revoke_token/", dot.RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", dot.IntrospectTokenView.as_view(), name="introspect"),
]

app_name = "oauth"
urlpatterns = [
    path("o/", include((provider, "oauth2_provider"))),
    path(".well-known/smart-configuration", oauth_views.smart_configuration, name="smart_configuration"),
    # Mounted at the root, so the FHIR base's copy is spelled out in full.
    path(
        "fhir/.well-known/smart-configuration",
        oauth_views.smart_configuration,
        name="fhir_smart_configuration",
    ),
    path("apps/", oauth_views.apps, name="apps"),
]
