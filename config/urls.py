from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from config import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("ig/", include("consent.ig_urls")),
    path("clinician/corrections/", include("accuracy.workspace_urls")),
    path("clinician/", include("consent.clinician_urls")),
    path("record/", include("accuracy.record_urls")),
    path("sharing/", include("consent.sharing_urls")),
    path("fhir/", include("api.fhir_urls")),
    path("api/v1/", include("api.json_urls")),
    path("api/", include("api.schema_urls")),
    path("share/", include("api.share_urls")),
    path("", include("api.oauth_urls")),
    path("", include("accounts.portal_urls")),
    re_path(r"^assets/images/(?P<name>[\w.-]+\.svg)$", views.nhsuk_icon, name="nhsuk-icon"),
]
# Off unless ADMIN_ENABLED: its addresses then do not exist (404). On, it sits behind the
# portal's sign-in and second factor (accounts.admin_site).
if settings.ADMIN_ENABLED:
    urlpatterns.append(path("admin/", admin.site.urls))
