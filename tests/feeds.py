"""What a member organisation's feed sends, made in one place: FHIR resources in a
collection Bundle, sent through ingest as the organisation's own."""

from phr.ingest import ingest_documents
from phr.models import Organisation, Patient

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def patient_resource(pid: str, nhs: str) -> dict:
    """A Patient resource known only by NHS number."""
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": NHS, "value": nhs}]}


def person(pid: str, nhs: str, family: str) -> dict:
    """A Patient resource: a test person born on 1 January 1970, known by NHS number."""
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": family, "given": ["Test"]}],
        "birthDate": "1970-01-01",
    }


def collection(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def send(organisation: Organisation, *resources: dict):
    """Ingests the resources as one feed of the organisation's, all of them accepted."""
    result = ingest_documents([("feed", collection(*resources))], organisation=organisation)
    assert result.rejected == 0, result.issues
    return result


def one_problem(
    organisation: Organisation,
    *,
    pid: str = "p1",
    nhs: str = "9434765919",
    cid: str = "c1",
    text: str = "Asthma",
) -> Patient:
    """A patient known only by NHS number whose record the organisation holds: one
    Condition, in words only."""
    send(
        organisation,
        patient_resource(pid, nhs),
        {
            "resourceType": "Condition",
            "id": cid,
            "subject": {"reference": f"Patient/{pid}"},
            "code": {"text": text},
        },
    )
    return Patient.objects.get(nhs_number=nhs)


def labelled_problem(cid: str, text: str, label: str | None = None, *, pid: str = "p") -> dict:
    """A Condition in words only, with a security label (``SEX``, ``THIRDPARTY``...) when given."""
    resource = {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"text": text},
    }
    if label:
        resource["meta"] = {"security": [{"code": label}]}
    return resource
