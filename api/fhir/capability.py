"""The CapabilityStatement served at /fhir/metadata: only what the views really do."""

from __future__ import annotations

from django.utils import timezone

from accuracy.fhir import ASSIGNEE_EXTENSION, DISAGREEMENT

from .bundle import response
from .common import base_url, fhir_view
from .findings import CHECK_SYSTEM
from .proxies import RIGHTS_EXTENSION as PROXY_RIGHTS

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
# _summary=count (or false), and _elements: top-level names, the mandatory ones always kept.
SHAPING = (("_summary", "token"), ("_elements", "string"))
RECORD_SEARCH = (
    ("patient", "reference"),
    ("_id", "token"),
    ("_lastUpdated", "date"),
    ("category", "token"),
    ("code", "token"),
    ("date", "date"),
    ("_sort", "string"),
    *SHAPING,
    *PAGING,
)


def _params(params) -> list[dict]:
    """Each (name, type) or (name, type, documentation) as a searchParam."""
    return [dict(zip(("name", "type", "documentation"), param, strict=False)) for param in params]


def _portal_answers(sort: str) -> tuple:
    """How a search of the portal's own resources answers: _sort by the dates it names
    (with - for newest first), _summary and _elements, and paging."""
    return (("_sort", "string", f"{sort}; -<key> for newest first"), *SHAPING, *PAGING)


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
            (
                ("_id", "token"),
                ("identifier", "token"),
                ("family", "string"),
                ("given", "string"),
                ("name", "string"),
                ("birthdate", "date"),
                *SHAPING,
                *PAGING,
            ),
            documentation=(
                "identifier, family, given, name and birthdate never go in a URL: POST them to"
                " Patient/_search as application/x-www-form-urlencoded (a GET with them is a 400)."
                " A name needs birthdate too. Only the patients the caller may see are found."
            ),
            operation=[
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                },
                {"name": "summary", "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"},
            ],
        ),
        *(_resource(kind, ("read", "vread", "search-type"), RECORD_SEARCH) for kind in RECORD_TYPES),
        _resource(
            "Consent",
            ("read", "search-type"),
            (("patient", "reference"), *_portal_answers("date or _lastUpdated: its dateTime")),
            documentation="One Consent per patient, the choices in force; its id is the patient's.",
        ),
        _resource(
            "AuditEvent",
            ("read", "search-type"),
            (("patient", "reference"), *_portal_answers("date: recorded")),
        ),
        _resource(
            "Provenance",
            ("read", "search-type"),
            (
                ("target", "reference"),
                ("patient", "reference"),
                *_portal_answers("date: recorded; _lastUpdated: when it was stored"),
            ),
        ),
        _resource(
            "Task",
            ("read", "update", "search-type"),
            (
                ("patient", "reference"),
                ("owner", "reference"),
                *_portal_answers("date: authoredOn; _lastUpdated: lastModified"),
            ),
            versioning="versioned-update",
            updateCreate=False,
            documentation=(
                "An organisation system (system/Task.write) updates its own tasks with PUT and"
                ' If-Match: W/"<revision>" (the ETag of a read, also its meta.versionId; missing:'
                " 428, stale: 412). In one PUT, all or none, it may assign the request (the"
                f" extension {ASSIGNEE_EXTENSION} with valueReference Practitioner/staff-<id>),"
                " extend the deadline (a later restriction.period.end, the reason in"
                " statusReason.text) and take a step by businessStatus: in-review,"
                " waiting-for-information (the question in note[0].text), denied"
                " (statusReason.coding[0].code and text), amendment-completed or"
                " partial-amendment-completed (the amended item contained, referenced from"
                " output[].valueReference, based on the version in focus). A patient's app"
                " (patient/Task.write) may only withdraw its own request: status cancelled, the"
                " note in statusReason.text."
            ),
        ),
        _resource(
            "Communication",
            ("read", "create", "search-type"),
            (
                ("part-of", "reference"),
                ("recipient", "reference"),
                *_portal_answers("date: sent"),
            ),
            operation=[{"name": "correction-request", "definition": CORRECTION_REQUEST}],
            documentation=(
                "part-of=Task/<id>: a correction request's conversation, its messages and"
                " statements of disagreement in the order they were written."
                " recipient=<ODS code>: the correction notices sent to the caller's organisation,"
                " oldest first. Both take _sort, _summary and _elements."
                " $correction-request: a patient (patient/Communication.write) asks for an item"
                " to be corrected. POST with partOf Task/<id> and the words in"
                " payload[0].contentString: the owner's system (system/Communication.write)"
                f" writes to the patient or, with category {DISAGREEMENT}, responds to a"
                " statement of disagreement; the patient's app (patient/Communication.write)"
                " replies, or with that category logs a disagreement after a refusal. The"
                " Location answered reads it back."
            ),
        ),
        _resource(
            "DetectedIssue",
            ("read", "search-type"),
            (
                ("patient", "reference"),
                ("code", "token", f"A rule id of the accuracy checks ({CHECK_SYSTEM})"),
                *_portal_answers("date: identifiedDateTime"),
            ),
            documentation=(
                "What the portal's accuracy checks found across the holders of a record, one"
                " DetectedIssue per finding (its id the finding's): to the patient's app (or a"
                " proxy's) those meant for the patient, to an organisation's system those about"
                " its organisation's items, each only while the caller may see every item it"
                " implicates. status final while open, amended once a later version resolved it;"
                " each answer (This is right, Asked the holders to correct it, Checked, correct)"
                " and the resolution is a mitigation. Without patient, a patient's app searches"
                " its own record and a system every record."
            ),
        ),
        _resource(
            "RelatedPerson",
            ("read", "search-type"),
            (("patient", "reference"), *_portal_answers("date: period.start")),
            documentation=(
                "The people who can act, or could act, for the patient (proxy access), shown to"
                " the patient themself alone; the id is the grant's. What each may do is the"
                f" extension {PROXY_RIGHTS} (valueCode see, correct or share, one per right)."
            ),
        ),
        _resource(
            "Organization",
            ("read", "search-type"),
            (("identifier", "token"), ("name", "string"), ("_id", "token"), *SHAPING, *PAGING),
            documentation="The network's member organisations; the id is the ODS code.",
        ),
        _resource(
            "Practitioner",
            ("read", "search-type"),
            (("name", "string"), ("_id", "token"), *SHAPING, *PAGING),
            documentation="Clinical staff of member organisations, by name only (staff-<n>).",
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
                    " Any search may be POSTed to <Type>/_search with its parameters as"
                    " application/x-www-form-urlencoded; its Bundle then links only to"
                    " <Type>/_search itself (page by POSTing again with _offset)."
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


@fhir_view
def metadata(request):
    """The CapabilityStatement: what this server really does. No sign-in needed."""
    return response(capability_statement(request, base_url(request)))
