"""FHIR R4 at /fhir/. The contract (ids, reads, searches, POSTed searches, no NHS number
or name in a URL, and each write) is docs/fhir.md; these modules carry it out:

- common: errors as OperationOutcomes, the one door of every view (``fhir_view``: methods,
  CSRF for a session, errors), who is calling and with which scopes, paging and Bundles;
- record: the record's read, vread, search, Patient search, $everything and $summary;
- portal: the portal's own Consent, AuditEvent and Provenance;
- corrections: correction requests as Task and Communication, read and written;
- write: transaction and batch Bundles from an organisation's system;
- reference: Organization and Practitioner; capability: /fhir/metadata;
- bundle, search: responses from stored text, and search parameters (no HTTP, no policy).
"""
