"""The JSON API's OpenAPI 3 schema at /api/schema/ and its docs page at /api/docs/.

The docs page's Swagger UI is served from drf-spectacular-sidecar's static files, never
from a CDN: the portal must work on networks without one. Its set-up script is a file
(the split view's ?script), not inline, so the Content-Security-Policy runs no inline code.
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

app_name = "api_schema"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema:schema"), name="docs"),
]
