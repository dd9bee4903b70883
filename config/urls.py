from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("ig/", include("web.ig.urls")),
    path("clinician/corrections/", include("web.clinician.workspace_urls")),
    path("clinician/", include("web.clinician.urls")),
    path("record/", include("web.patient.urls")),
    path("sharing/", include("web.patient.sharing_urls")),
    path("fhir/", include("api.fhir.urls")),
    path("api/v1/", include("api.json_urls")),
    path("api/", include("api.schema_urls")),
    path("share/", include("web.share.urls")),
    path("", include("api.oauth_urls")),
    path("", include("web.patient.portal_urls")),
    re_path(r"^assets/images/(?P<name>[\w.-]+\.svg)$", views.nhsuk_icon, name="nhsuk-icon"),
]
# Off unless ADMIN_ENABLED: its addresses then do not exist (404). On, it sits behind the
# portal's sign-in and second factor (accounts.admin_site).
if settings.ADMIN_ENABLED:
    urlpatterns.append(path("admin/", admin.site.urls))

# What no view answered: a page in the portal's style, JSON under /api/, an
# OperationOutcome under /fhir/ (config.errors).
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
