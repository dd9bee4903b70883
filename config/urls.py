from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from config import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    # The compiled nhsuk-frontend stylesheet points its icons at /assets/images/...;
    # send those requests to where the files are really served.
    re_path(
        r"^assets/images/(?P<name>[\w.-]+\.svg)$",
        lambda request, name: RedirectView.as_view(
            url=static(f"nhsuk/assets/images/{name}"), permanent=True
        )(request),
    ),
]
