"""A correction request as the HL7 Patient Request for Corrections guide shows it: a
FHIR Task, and its conversation as Communication resources."""

from phr.nhs_number import ODS_SYSTEM as ODS

from .models import CorrectionRequest, Message, Statement
from .selectors import Copies

TASK_CODE_SYSTEM = "http://hl7.org/fhir/uv/patient-corrections/CodeSystem/PatientCorrectionTaskTypes"
BUSINESS_STATUS_SYSTEM = (
    "http://hl7.org/fhir/uv/patient-corrections/CodeSystem/PatientCorrectionBusinessStatus"
)
COMMUNICATION_TYPE_SYSTEM = (
    "http://hl7.org/fhir/uv/patient-corrections/CodeSystem/PatientCorrectionCommunicationTypes"
)
DISAGREEMENT = "medRecCxDenialDisagree"  # the guide's category of a disagreement's Communications
# Who at the owning organisation handles the request: Practitioner/staff-<user pk>.
ASSIGNEE_EXTENSION = "https://portal.example/fhir/StructureDefinition/task-assignee"


def practitioner_reference(user_pk) -> str:
    return f"Practitioner/staff-{user_pk}"


def task_resource(request: CorrectionRequest, copies: Copies, *, for_patient: bool = False) -> dict:
    """The request as a Task; meta.versionId is its revision, the ETag clients send as If-Match.
    Its texts are ``copies``, as selectors.release_copies released them to the reader.

    The patient is not shown which member of staff handles it (the assignee extension):
    that is the owner's internal routing, not part of their request.
    """
    entry = request.entry
    task = {
        "resourceType": "Task",
        "id": str(request.pk),
        "meta": {"versionId": str(request.revision)},
        "status": request.status,
        "businessStatus": {
            "coding": [{"system": BUSINESS_STATUS_SYSTEM, "code": request.business_status}],
            "text": request.get_business_status_display(),
        },
        "intent": "order",
        "code": {
            "coding": [{"system": TASK_CODE_SYSTEM, "code": "medRecCxReq"}],
            "text": "Correction request",
        },
        "focus": {"reference": f"{entry.resource_type}/{entry.fhir_id}/_history/{request.entry_version}"},
        "for": {"reference": f"Patient/{request.patient_id}"},
        "authoredOn": request.created_at.isoformat(),
        "lastModified": (request.decided_at or request.created_at).isoformat(),
        "requester": {"reference": f"Patient/{request.patient_id}"},
        "owner": {
            "identifier": {"system": ODS, "value": request.owner.ods_code},
            "display": request.owner.name,
        },
        "restriction": {"period": {"end": request.due_on.isoformat()}},
        "input": [
            {"type": {"text": "element"}, "valueString": request.element or "(whole item)"},
            {"type": {"text": "proposed"}, "valueString": copies.proposed},
            {"type": {"text": "reason"}, "valueString": copies.reason},
        ],
    }
    if request.assigned_to_id and not for_patient:
        task["extension"] = [
            {
                "url": ASSIGNEE_EXTENSION,
                "valueReference": {"reference": practitioner_reference(request.assigned_to_id)},
            }
        ]
    if request.decision_text:
        task["statusReason"] = {"text": request.decision_text}
    if request.amended_version:
        task["output"] = [
            {
                "type": {"text": "amended"},
                "valueReference": {
                    "reference": f"{entry.resource_type}/{entry.fhir_id}/_history/{request.amended_version}"
                },
            }
        ]
    return task


def communication_resource(message: Message, text: str) -> dict:
    """A message of a correction request's conversation, id ``<request prefix>-m<pk>``,
    with its body as released to the reader (``text``)."""
    request = message.request
    patient = {"reference": f"Patient/{request.patient_id}"}
    owner = {"identifier": {"system": ODS, "value": request.owner.ods_code}, "display": request.owner.name}
    return {
        "resourceType": "Communication",
        "id": f"{request.pk.hex[:24]}-m{message.pk}",
        "status": "completed",
        "partOf": [{"reference": f"Task/{request.pk}"}],
        "subject": patient,
        "sent": message.sent_at.isoformat(),
        "sender": patient if message.from_patient else owner,
        "recipient": [owner if message.from_patient else patient],
        "payload": [{"contentString": text}],
    }


def statement_resource(statement: Statement, text: str) -> dict:
    """A statement of disagreement (or the owner's response to one) as the guide's
    Communication of the disagreement process, its words as released (``text``)."""
    request = statement.request
    patient = {"reference": f"Patient/{request.patient_id}"}
    owner = {"identifier": {"system": ODS, "value": request.owner.ods_code}, "display": request.owner.name}
    by_patient = statement.kind == Statement.Kind.DISAGREEMENT
    return {
        "resourceType": "Communication",
        "id": f"{request.pk.hex[:24]}-s{statement.pk}",
        "status": "completed",
        "category": [
            {
                "coding": [{"system": COMMUNICATION_TYPE_SYSTEM, "code": DISAGREEMENT}],
                "text": statement.get_kind_display(),
            }
        ],
        "partOf": [{"reference": f"Task/{request.pk}"}],
        "subject": patient,
        "sent": statement.made_at.isoformat(),
        "sender": patient if by_patient else owner,
        "recipient": [owner if by_patient else patient],
        "payload": [{"contentString": text}],
    }


def conversation(copies: Copies) -> list[dict]:
    """A request's conversation as Communications: its messages and its statements of
    disagreement (and the owner's response), in the order they were written, as released
    to the reader (selectors.release_copies with the thread)."""
    messages = [
        (message.sent_at, 0, message.pk, communication_resource(message, text))
        for message, text in copies.messages
    ]
    statements = [
        (statement.made_at, 1, statement.pk, statement_resource(statement, text))
        for statement, text in copies.statements
    ]
    return [resource for *_, resource in sorted(messages + statements, key=lambda row: row[:3])]
