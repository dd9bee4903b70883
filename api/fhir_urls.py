"""FHIR R4 at /fhir/."""

app_name = "fhir"
urlpatterns: list = []
