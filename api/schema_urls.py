"""The JSON API's OpenAPI 3 schema at /api/schema/ and its docs page at /api/docs/.

The docs page's Swagger UI is served from drf-spectacular-sidecar's static files, never
from a CDN: the portal must work on networks without one.
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

app_name = "api_schema"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api_schema:schema"), name="docs"),
]
