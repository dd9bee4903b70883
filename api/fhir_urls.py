"""FHIR R4 at /fhir/ (see api.fhir_views)."""

from django.urls import path, re_path

from . import fhir_views as views
from . import fhir_write as writes

app_name = "fhir"
TYPE = r"(?P<resource_type>[A-Z][A-Za-z]{1,63})"
ID = r"(?P<resource_id>[A-Za-z0-9\-.]{1,64})"

urlpatterns = [
    path("", writes.transaction_or_batch, name="transaction"),
    path("metadata", views.metadata, name="metadata"),
    path("Patient/<uuid:patient_uuid>/$everything", views.everything, name="everything"),
    path("Patient/<uuid:patient_uuid>/$summary", views.summary, name="summary"),
    path("Consent", views.consent_search, name="consent-search"),
    path("AuditEvent", views.audit_search, name="audit-search"),
    path("Provenance", views.provenance_search, name="provenance-search"),
    path("Task", views.task_search, name="task-search"),
    # GET reads (views.task_read), PUT takes a correction step (api.fhir_write).
    path("Task/<str:task_id>", writes.task_instance, name="task-read"),
    # part-of: the conversation (views.communication_search); recipient: notices.
    path("Communication", writes.communications, name="communication-search"),
    path("Communication/$correction-request", writes.correction_request, name="correction-request"),
    re_path(rf"^{TYPE}$", views.search, name="search"),
    re_path(rf"^{TYPE}/{ID}$", views.read, name="read"),
    re_path(rf"^{TYPE}/{ID}/_history/(?P<version>[0-9]{{1,9}})$", views.vread, name="vread"),
    # Anything else is an OperationOutcome, but the SMART configuration beside the FHIR
    # base is served by api.oauth_urls further down config.urls.
    re_path(r"^(?!\.well-known/)(?P<rest>.*)$", views.unknown),
]
