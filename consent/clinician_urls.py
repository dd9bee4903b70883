"""Clinician pages: find a patient, read what the policy permits, declare break-glass."""

app_name = "clinician"
urlpatterns: list = []
