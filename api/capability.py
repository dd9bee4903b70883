"""The CapabilityStatement served at /fhir/metadata: only what the views really do."""

from __future__ import annotations

from django.utils import timezone

CORRECTION_REQUEST = "https://patient-record-portal.example/OperationDefinition/correction-request"
SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
RECORD_TYPES = (
    "AllergyIntolerance",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Immunization",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
)
PAGING = (("_count", "number"), ("_offset", "number"))
RECORD_SEARCH = (
    ("patient", "reference"),
    ("_id", "token"),
    ("_lastUpdated", "date"),
    ("category", "token"),
    ("code", "token"),
    ("date", "date"),
    *PAGING,
)


def _params(params) -> list[dict]:
    return [{"name": name, "type": kind} for name, kind in params]


def _resource(kind: str, interactions: tuple[str, ...], params, **extra) -> dict:
    return {
        "type": kind,
        "interaction": [{"code": code} for code in interactions],
        "searchParam": _params(params),
        **extra,
    }


def capability_statement(request, base: str) -> dict:
    """What this server supports, with the SMART on FHIR OAuth 2.0 endpoints."""
    resources = [
        _resource(
            "Patient",
            ("read", "search-type"),
            (("_id", "token"), *PAGING),
            operation=[
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                },
                {"name": "summary", "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"},
            ],
        ),
        *(_resource(kind, ("read", "vread", "search-type"), RECORD_SEARCH) for kind in RECORD_TYPES),
        _resource("Consent", ("search-type",), (("patient", "reference"),)),
        _resource("AuditEvent", ("search-type",), (("patient", "reference"), *PAGING)),
        _resource(
            "Provenance", ("search-type",), (("target", "reference"), ("patient", "reference"), *PAGING)
        ),
        _resource(
            "Task",
            ("read", "update", "search-type"),
            (("patient", "reference"), ("owner", "reference"), *PAGING),
            versioning="versioned-update",
            updateCreate=False,
            documentation=(
                "An organisation system (system/Task.write) takes a correction step on its own"
                ' tasks with PUT and If-Match: W/"<revision>" (the ETag of a read): businessStatus'
                " in-review, denied (statusReason.coding[0].code and text), amendment-completed or"
                " partial-amendment-completed (the amended item contained, referenced from"
                " output[].valueReference, based on the version in focus)."
            ),
        ),
        _resource(
            "Communication",
            ("search-type",),
            (("part-of", "reference"), ("recipient", "reference"), *PAGING),
            operation=[{"name": "correction-request", "definition": CORRECTION_REQUEST}],
            documentation=(
                "part-of=Task/<id>: a correction request's conversation. recipient=<ODS code>:"
                " the correction notices sent to the caller's organisation. $correction-request:"
                " a patient (patient/Communication.write) asks for an item to be corrected."
            ),
        ),
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": timezone.now().date().isoformat(),
        "publisher": "Patient Record Portal",
        "kind": "instance",
        "software": {"name": "Patient Record Portal"},
        "implementation": {"description": "The shared care record, FHIR R4 facade", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Other stored resource types can be read and searched the same way as the"
                    " record types listed here. Resource ids are the data owner's; see the API notes."
                ),
                "security": {
                    "cors": True,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "extension": [
                        {
                            "url": SMART_OAUTH_URIS,
                            "extension": [
                                {"url": "authorize", "valueUri": request.build_absolute_uri("/o/authorize/")},
                                {"url": "token", "valueUri": request.build_absolute_uri("/o/token/")},
                            ],
                        }
                    ],
                },
                "resource": resources,
                "interaction": [
                    {
                        "code": "transaction",
                        "documentation": "An organisation system (system/Bundle.write) sends its records",
                    },
                    {
                        "code": "batch",
                        "documentation": "An organisation system (system/Bundle.write) sends its records",
                    },
                ],
            }
        ],
    }
