"""The IG console: audit and consent review for information governance officers."""

from django.urls import path

from web.ig import views as ig_views

app_name = "ig"
urlpatterns = [
    path("", ig_views.search, name="search"),
    path("export/csv/", ig_views.export_csv, name="export_csv"),
    path("export/fhir/", ig_views.export_fhir, name="export_fhir"),
    path("patients/", ig_views.find_patient, name="find_patient"),
    path("patients/<uuid:patient_id>/", ig_views.patient, name="patient"),
    path("break-glass/", ig_views.break_glass, name="break_glass"),
    path("break-glass/<int:break_glass_id>/review/", ig_views.review, name="review"),
    path("signals/", ig_views.signals, name="signals"),
    path("withheld/", ig_views.withheld, name="withheld"),
    path("corrections/", ig_views.corrections, name="corrections"),
    path("data-quality/", ig_views.data_quality, name="data_quality"),
]
