"""The JSON API at /api/v1/ and its OpenAPI schema."""

app_name = "api"
urlpatterns: list = []
