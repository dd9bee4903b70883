"""People and records for the account tests: Ada, whose record Riverside Surgery holds;
Dr Bell, a clinician there; Dr Chen, a clinician at the hospital, which holds nothing
about Ada; and Ben, a new patient account not yet linked to anything."""

import pytest
from account_people import ADA_BORN, ADA_NHS_NUMBER
from allauth.mfa.totp.internal.auth import TOTP

from accounts.models import User
from phr.ingest import ingest_documents
from phr.models import Patient
from tests.personas import TOTP_SECRET, ClinicianFactory, PatientUserFactory


@pytest.fixture
def ada(gp) -> Patient:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "ada",
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": ADA_NHS_NUMBER}],
                    "name": [{"family": "Okafor", "given": ["Ada"]}],
                    "birthDate": ADA_BORN.isoformat(),
                }
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "c1",
                    "subject": {"reference": "Patient/ada"},
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
                }
            },
        ],
    }
    ingest_documents([("feed.json", bundle)], organisation=gp)
    return Patient.objects.get(nhs_number=ADA_NHS_NUMBER)


@pytest.fixture
def dr_bell(gp) -> User:
    return ClinicianFactory(
        email="dr.bell@riverside.example", organisation=gp, second_factor=False, verified_email=True
    )


@pytest.fixture
def dr_chen(hospital) -> User:
    return ClinicianFactory(
        email="dr.chen@hospital.example", organisation=hospital, second_factor=False, verified_email=True
    )


@pytest.fixture
def ben(db) -> User:
    return PatientUserFactory(email="ben@example.com", patient=None, verified_email=True)


@pytest.fixture
def with_totp():
    def enrol(user: User) -> User:
        TOTP.activate(user, TOTP_SECRET)
        return user

    return enrol
