"""FHIR R4 at /fhir/ (docs/fhir.md). The names (``fhir:<name>``) are part of the contract."""

from django.urls import path, re_path

from . import capability, common, corrections, findings, portal, proxies, record, reference, write

app_name = "fhir"


def related_person_search(request):
    if proxies.asks_for_proxies(request.GET):
        return proxies.related_person_search(request)
    return record.search(request, resource_type="RelatedPerson")


def related_person_read(request, resource_id: str):
    if proxies.is_grant_id(resource_id):
        return proxies.related_person_read(request, resource_id=resource_id)
    return record.read(request, resource_type="RelatedPerson", resource_id=resource_id)


TYPE = r"(?P<resource_type>[A-Z][A-Za-z]{1,63})"
ID = r"(?P<resource_id>[A-Za-z0-9\-.]{1,64})"

urlpatterns = [
    path("", write.transaction_or_batch, name="transaction"),
    path("metadata", capability.metadata, name="metadata"),
    # The same search as GET <Type>, its parameters in a form body (common.post_search).
    re_path(rf"^{TYPE}/_search$", common.post_search, name="post-search"),
    path("Patient/<uuid:patient_uuid>/$everything", record.everything, name="everything"),
    path("Patient/<uuid:patient_uuid>/$summary", record.summary, name="summary"),
    path("Consent", portal.consent_search, name="consent-search"),
    re_path(rf"^Consent/{ID}$", portal.consent_read, name="consent-read"),
    path("AuditEvent", portal.audit_search, name="audit-search"),
    re_path(rf"^AuditEvent/{ID}$", portal.audit_read, name="audit-read"),
    path("Provenance", portal.provenance_search, name="provenance-search"),
    re_path(rf"^Provenance/{ID}$", portal.provenance_read, name="provenance-read"),
    # The portal's proxy grants (_tag=proxy; ids are whole numbers) beside the
    # RelatedPersons organisations send (next of kin), which the record search serves.
    path("RelatedPerson", related_person_search, name="relatedperson-search"),
    re_path(rf"^RelatedPerson/{ID}$", related_person_read, name="relatedperson-read"),
    path("Organization", reference.organization_search, name="organization-search"),
    re_path(rf"^Organization/{ID}$", reference.organization_read, name="organization-read"),
    path("Practitioner", reference.practitioner_search, name="practitioner-search"),
    re_path(rf"^Practitioner/{ID}$", reference.practitioner_read, name="practitioner-read"),
    # What the accuracy checks found (accuracy.findings decides who sees which).
    path("DetectedIssue", findings.search, name="detectedissue-search"),
    re_path(rf"^DetectedIssue/{ID}$", findings.read, name="detectedissue-read"),
    path("Task", corrections.task_search, name="task-search"),
    # GET reads (corrections.task_read), PUT takes a correction step.
    path("Task/<str:task_id>", corrections.task_instance, name="task-read"),
    # part-of: the conversation (corrections.communication_search); recipient: notices.
    path("Communication", corrections.communications, name="communication-search"),
    path("Communication/$correction-request", corrections.correction_request, name="correction-request"),
    re_path(rf"^Communication/{ID}$", corrections.communication_read, name="communication-read"),
    re_path(rf"^{TYPE}$", record.search, name="search"),
    re_path(rf"^{TYPE}/{ID}$", record.read, name="read"),
    re_path(rf"^{TYPE}/{ID}/_history/(?P<version>[0-9]{{1,9}})$", record.vread, name="vread"),
    # Anything else is an OperationOutcome, but the SMART configuration beside the FHIR
    # base is served by api.oauth_urls further down config.urls.
    # ([\s\S], not ".", so that a path with an encoded newline is answered here too.)
    re_path(r"^(?!\.well-known/)(?P<rest>[\s\S]*)$", common.unknown),
]
