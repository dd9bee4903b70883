"""A correction request as the HL7 Patient Request for Corrections guide shows it: a
FHIR Task, and its conversation as Communication resources."""

from .models import CorrectionRequest, Message

TASK_CODE_SYSTEM = "http://hl7.org/fhir/uv/patient-corrections/CodeSystem/PatientCorrectionTaskTypes"
BUSINESS_STATUS_SYSTEM = (
    "http://hl7.org/fhir/uv/patient-corrections/CodeSystem/PatientCorrectionBusinessStatus"
)
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"


def task_resource(request: CorrectionRequest) -> dict:
    entry = request.entry
    task = {
        "resourceType": "Task",
        "id": str(request.pk),
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
            {"type": {"text": "proposed"}, "valueString": request.proposed},
            {"type": {"text": "reason"}, "valueString": request.reason},
        ],
    }
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


def communication_resource(message: Message) -> dict:
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
        "payload": [{"contentString": message.body}],
    }
