"""The people the tests act as, made in one place with factory_boy.

A patient's account is linked to a record; a clinician is a member of an organisation;
an IG officer belongs to none. Staff have a second factor unless a test says otherwise
(staff see no clinical content without one), and every second factor is the one shared
TOTP secret, so that any test can type its code. Each person signs in with PASSWORD.
A correction request can be made here too, when a test needs one stored without the
workflow that files it.
"""

from datetime import date

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP
from factory.django import DjangoModelFactory

from accounts.models import Membership, PatientLink, Role, User
from accuracy.models import CorrectionRequest
from demo.totp import current_code
from phr.models import Organisation, OrganisationKind, Patient
from phr.nhs_number import unissued_numbers

TOTP_SECRET = "NBSWY3DPORVXA4TPMFZWI3LPNRXXEYLM"  # base32, as an authenticator app takes it
PASSWORD = "a-long-and-unguessable-phrase"

_NHS_NUMBERS = unissued_numbers(9_991_000_000)


def totp_code() -> str:
    """The code an authenticator app holding TOTP_SECRET shows now."""
    return current_code(TOTP_SECRET)


def link_record(user: User, patient: Patient) -> PatientLink:
    """Ties an account to a patient's record as the demo does, without a linkage key."""
    return PatientLink.objects.create(user=user, patient=patient, method=PatientLink.Method.DEMO)


class OrganisationFactory(DjangoModelFactory):
    class Meta:
        model = Organisation

    ods_code = factory.Sequence(lambda n: f"T{n:05d}")
    name = factory.Sequence(lambda n: f"Test Organisation {n}")
    kind = OrganisationKind.OTHER


class PatientFactory(DjangoModelFactory):
    """A patient known only by an NHS number; records sent by ingest make their own."""

    class Meta:
        model = Patient

    nhs_number = factory.LazyFunction(lambda: next(_NHS_NUMBERS))


class UserFactory(DjangoModelFactory):
    """Anyone who signs in. Beyond User's fields it takes:

    - organisation: a member of it (or of each one, given a list or tuple); None, of none;
    - patient: the record the account is linked to; None, linked to nothing;
    - second_factor: True activates TOTP with TOTP_SECRET;
    - verified_email: True records the address as verified, as password sign-in needs.
    """

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    password = PASSWORD
    role = Role.PATIENT
    organisation = None
    patient = None
    second_factor = False
    verified_email = False

    @classmethod
    def _create(
        cls, model_class, *args, organisation, patient, second_factor, verified_email, **kwargs
    ) -> User:
        user = model_class.objects.create_user(*args, **kwargs)
        memberships = organisation if isinstance(organisation, list | tuple) else [organisation]
        for each in memberships:
            if each is not None:
                Membership.objects.create(user=user, organisation=each)
        if patient is not None:
            link_record(user, patient)
        if second_factor:
            TOTP.activate(user, TOTP_SECRET)
        if verified_email:
            EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        return user


class PatientUserFactory(UserFactory):
    """A patient's account, linked to a new record unless given patient= (None: unlinked)."""

    role = Role.PATIENT
    patient = factory.SubFactory(PatientFactory)


class ClinicianFactory(UserFactory):
    """A clinician with a second factor, a member of a new organisation unless given one."""

    role = Role.CLINICIAN
    organisation = factory.SubFactory(OrganisationFactory)
    second_factor = True


class IGOfficerFactory(UserFactory):
    """An information governance officer, with a second factor and no organisation."""

    role = Role.IG_OFFICER
    second_factor = True


class CorrectionRequestFactory(DjangoModelFactory):
    """A correction request on the whole of entry=, stored as it is, without the workflow
    (accuracy.services.submit_correction) that would route, notify and audit it. Give
    requested_by= the account of the entry's patient."""

    class Meta:
        model = CorrectionRequest

    patient = factory.SelfAttribute("entry.patient")
    owner = factory.SelfAttribute("entry.owner")
    entry_version = factory.SelfAttribute("entry.version")
    element_label = "The whole item"
    proposed = "Checked"
    reason = "Please check"
    contact_preference = "email"
    jurisdiction = "uk"
    received_on = date(2026, 11, 1)
    first_due_on = date(2026, 12, 1)
    due_on = date(2026, 12, 1)
