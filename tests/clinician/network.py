"""A small network for the clinician pages: one patient whose record two organisations
hold. Its people are the shared personas (tests/personas.py)."""

from phr.ingest import ingest_documents
from phr.models import Patient

NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
NHS_NUMBER = "9434765919"
UNKNOWN_NHS_NUMBER = "9990000018"  # valid check digit, nobody has it
SNOMED = "http://snomed.info/sct"


def _patient():
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": NHS_SYSTEM, "value": NHS_NUMBER}],
        "name": [{"family": "Okafor", "given": ["Ada"]}],
        "gender": "female",
        "birthDate": "1971-03-04",
    }


def _condition(cid, code, display, recorded="2024-05-01", **extra):
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "recordedDate": recorded,
        **extra,
    }


def _bundle(*resources):
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


IN_ERROR = {
    "clinicalStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    },
    "verificationStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "entered-in-error",
            }
        ]
    },
}


def build_record(gp, hospital) -> Patient:
    """The GP holds hypertension, depression (mental health) and an asthma entry made in
    error; the hospital holds a fractured wrist."""
    ingest_documents(
        [
            (
                "gp.json",
                _bundle(
                    _patient(),
                    _condition("c1", "38341003", "Hypertensive disorder"),
                    _condition("c2", "35489007", "Depressive disorder", recorded="2023-02-10"),
                    _condition("c3", "195967001", "Asthma", recorded="2022-01-01", **IN_ERROR),
                ),
            )
        ],
        organisation=gp,
    )
    ingest_documents(
        [
            (
                "hospital.json",
                _bundle(
                    _patient(),
                    _condition("h1", "263204007", "Fracture of wrist", recorded="2024-08-20"),
                    {
                        "resourceType": "Observation",
                        "id": "o1",
                        "status": "final",
                        "subject": {"reference": "Patient/p1"},
                        "code": {"text": "Serum potassium"},
                        "effectiveDateTime": "2024-08-20T10:00:00Z",
                        "valueQuantity": {"value": 4.1, "unit": "mmol/L"},
                    },
                ),
            )
        ],
        organisation=hospital,
    )
    return Patient.objects.get(nhs_number=NHS_NUMBER)
