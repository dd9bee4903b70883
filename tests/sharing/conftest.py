"""The people and record the sharing pages' tests share: Ada, her record at the GP and
the hospital, and the four organisations of the network."""

import pytest

from phr.models import Organisation, OrganisationKind, Patient
from tests.clinician.network import build_record
from tests.personas import PatientUserFactory


@pytest.fixture
def ambulance(db):
    return Organisation.objects.create(
        ods_code="RYA", name="Northbridge Ambulance Service", kind=OrganisationKind.AMBULANCE
    )


@pytest.fixture
def ada(gp, hospital, mental_health_trust, ambulance) -> Patient:
    return build_record(gp, hospital)


@pytest.fixture
def ada_user(ada):
    return PatientUserFactory(email="ada@example.com", patient=ada)


@pytest.fixture
def signed_in(client, ada_user):
    client.force_login(ada_user)
    return client
