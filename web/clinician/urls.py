"""Clinician pages: find a patient, read what the policy permits, declare break-glass.

Patients appear in these addresses only as their random UUID: never an NHS number or name.
"""

from django.urls import path

from web.clinician import findings, proxies, reviews
from web.clinician import record as views

app_name = "clinician"
urlpatterns = [
    path("", views.find_patient, name="find_patient"),
    path("acting-for/", views.acting_for, name="acting_for"),
    path("patients/<uuid:patient_id>/", views.record, name="record"),
    path("patients/<uuid:patient_id>/emergency-access/", views.emergency_access, name="emergency_access"),
    path(
        "patients/<uuid:patient_id>/emergency-access/end/",
        views.end_emergency_access,
        name="end_emergency_access",
    ),
    path("patients/<uuid:patient_id>/entries/<uuid:entry_id>/", views.entry, name="entry"),
    path("patients/<uuid:patient_id>/proxies/", proxies.proxies, name="proxies"),
    path("patients/<uuid:patient_id>/proxies/<int:grant_id>/end/", proxies.proxy_end, name="proxy_end"),
    path("reviews/", reviews.reviews, name="reviews"),
    path("findings/", findings.findings_list, name="findings"),
    path("findings/<uuid:finding_id>/checked/", findings.finding_checked, name="finding_checked"),
    path(
        "findings/<uuid:finding_id>/items/<uuid:entry_id>/correct/",
        findings.finding_correct,
        name="finding_correct",
    ),
    path("data-quality/", findings.quality, name="data_quality"),
    path("reviews/<uuid:entry_id>/<slug:decision>/", reviews.decide, name="review_decide"),
]
