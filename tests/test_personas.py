"""The shared personas (tests/personas.py) are who they say they are: what the other
tests rely on when they make a clinician, a patient or an IG officer in one line."""

import pytest
from allauth.mfa.models import Authenticator

from accounts.access import has_mfa
from accounts.models import Role
from phr.nhs_number import is_valid_nhs_number
from tests.feeds import one_problem
from tests.personas import (
    PASSWORD,
    ClinicianFactory,
    CorrectionRequestFactory,
    IGOfficerFactory,
    PatientFactory,
    PatientUserFactory,
    UserFactory,
    totp_code,
)

pytestmark = pytest.mark.django_db


def test_a_clinician_is_a_member_of_an_organisation_with_a_second_factor():
    clinician = ClinicianFactory()
    assert clinician.role == Role.CLINICIAN
    assert clinician.memberships.count() == 1
    assert has_mfa(clinician)


def test_a_clinician_can_be_a_member_of_several_organisations_or_of_none(gp, hospital):
    assert {m.organisation for m in ClinicianFactory(organisation=[gp, hospital]).memberships.all()} == {
        gp,
        hospital,
    }
    assert not ClinicianFactory(organisation=None).memberships.exists()


def test_staff_without_a_second_factor_are_made_on_request():
    assert not has_mfa(ClinicianFactory(second_factor=False))
    assert not has_mfa(IGOfficerFactory(second_factor=False))


def test_an_ig_officer_belongs_to_no_organisation_and_has_a_second_factor():
    officer = IGOfficerFactory()
    assert officer.role == Role.IG_OFFICER
    assert not officer.memberships.exists()
    assert has_mfa(officer)


def test_a_patient_account_is_linked_to_a_record_unless_told_otherwise():
    record = PatientFactory()
    assert PatientUserFactory(patient=record).patient_link.patient == record
    assert PatientUserFactory().patient_link.patient != record
    assert not hasattr(PatientUserFactory(patient=None), "patient_link")


def test_made_patients_have_distinct_valid_nhs_numbers():
    numbers = {PatientFactory().nhs_number for _ in range(12)}
    assert len(numbers) == 12
    assert all(is_valid_nhs_number(n) for n in numbers)


def test_a_persona_signs_in_with_the_password_and_the_shared_code(client):
    doctor = ClinicianFactory(email="dr@example.com", verified_email=True)
    assert Authenticator.objects.filter(user=doctor, type=Authenticator.Type.TOTP).exists()
    signed_in = client.post("/accounts/login/", {"login": "dr@example.com", "password": PASSWORD})
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/accounts/2fa/authenticate/"
    done = client.post("/accounts/2fa/authenticate/", {"code": totp_code()})
    assert done.status_code == 302
    assert client.session.get("_auth_user_id") == str(doctor.pk)


def test_a_plain_user_is_a_patient_with_nothing_attached():
    user = UserFactory()
    assert user.role == Role.PATIENT
    assert not user.memberships.exists()
    assert not hasattr(user, "patient_link")


def test_a_stored_correction_request_is_on_the_entrys_record_and_its_owner(gp):
    ada = one_problem(gp)
    entry = ada.entries.get(resource_type="Condition")
    request = CorrectionRequestFactory(entry=entry, requested_by=PatientUserFactory(patient=ada))
    assert (request.patient, request.owner, request.entry_version) == (ada, gp, entry.version)
    assert request.is_open
