"""FHIR R4 at /fhir/ (see api.fhir_views)."""

from django.urls import path, re_path

from . import fhir_reference as reference
from . import fhir_views as views
from . import fhir_write as writes

app_name = "fhir"
TYPE = r"(?P<resource_type>[A-Z][A-Za-z]{1,63})"
ID = r"(?P<resource_id>[A-Za-z0-9\-.]{1,64})"

urlpatterns = [
    path("", writes.transaction_or_batch, name="transaction"),
    path("metadata", views.metadata, name="metadata"),
    # The same search as GET <Type>, its parameters in a form body (views.post_search).
    re_path(rf"^{TYPE}/_search$", views.post_search, name="post-search"),
    path("Patient/<uuid:patient_uuid>/$everything", views.everything, name="everything"),
    path("Patient/<uuid:patient_uuid>/$summary", views.summary, name="summary"),
    path("Consent", views.consent_search, name="consent-search"),
    re_path(rf"^Consent/{ID}$", views.consent_read, name="consent-read"),
    path("AuditEvent", views.audit_search, name="audit-search"),
    re_path(rf"^AuditEvent/{ID}$", views.audit_read, name="audit-read"),
    path("Provenance", views.provenance_search, name="provenance-search"),
    re_path(rf"^Provenance/{ID}$", views.provenance_read, name="provenance-read"),
    path("Organization", reference.organization_search, name="organization-search"),
    re_path(rf"^Organization/{ID}$", reference.organization_read, name="organization-read"),
    path("Practitioner", reference.practitioner_search, name="practitioner-search"),
    re_path(rf"^Practitioner/{ID}$", reference.practitioner_read, name="practitioner-read"),
    path("Task", views.task_search, name="task-search"),
    # GET reads (views.task_read), PUT takes a correction step (api.fhir_write).
    path("Task/<str:task_id>", writes.task_instance, name="task-read"),
    # part-of: the conversation (views.communication_search); recipient: notices.
    path("Communication", writes.communications, name="communication-search"),
    path("Communication/$correction-request", writes.correction_request, name="correction-request"),
    re_path(rf"^Communication/{ID}$", views.communication_read, name="communication-read"),
    re_path(rf"^{TYPE}$", views.search, name="search"),
    re_path(rf"^{TYPE}/{ID}$", views.read, name="read"),
    re_path(rf"^{TYPE}/{ID}/_history/(?P<version>[0-9]{{1,9}})$", views.vread, name="vread"),
    # Anything else is an OperationOutcome, but the SMART configuration beside the FHIR
    # base is served by api.oauth_urls further down config.urls.
    # ([\s\S], not ".", so that a path with an encoded newline is answered here too.)
    re_path(r"^(?!\.well-known/)(?P<rest>[\s\S]*)$", views.unknown),
]
