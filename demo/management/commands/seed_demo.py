"""python manage.py seed_demo: the Northbridge demo network, its patients' records and
the demo accounts, loaded through the ingest exactly as member organisations send data.

Safe to run again: the same content is sent, so nothing new is stored and no account,
organisation or version is duplicated.
"""

from collections import Counter
from dataclasses import dataclass

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Membership, PatientLink, Role, User
from demo import network as demo
from demo.totp import DEMO_TOTP_SECRET
from phr.ingest import IngestResult, ingest_documents
from phr.models import Organisation, Patient, RecordEntry

# How many rejection messages to show before summarising the rest.
SHOWN_ISSUES = 10


@dataclass(frozen=True)
class DemoAccount:
    email: str
    role: str
    first_name: str
    last_name: str
    organisation: str | None = None  # DemoOrganisation.key of a clinician's employer
    job_title: str = ""
    patient: int | None = None  # index of the demo patient a patient account is linked to


DEMO_ACCOUNTS = [
    DemoAccount("patient@example.com", Role.PATIENT, "", "", patient=demo.DEMO_PATIENT_INDEXES[0]),
    DemoAccount("patient2@example.com", Role.PATIENT, "", "", patient=demo.DEMO_PATIENT_INDEXES[1]),
    DemoAccount(
        "gp@example.com",
        Role.CLINICIAN,
        "Helen",
        "Okoro",
        organisation="riverside",
        job_title="General practitioner",
    ),
    DemoAccount(
        "hospital@example.com",
        Role.CLINICIAN,
        "David",
        "Brennan",
        organisation="hospital",
        job_title="Health records manager",
    ),
    DemoAccount(
        "ig@example.com", Role.IG_OFFICER, "Sarah", "Lindqvist", job_title="Information governance lead"
    ),
]


class Command(BaseCommand):
    help = (
        "Load the Northbridge demo network: organisations, patients and their records (sent "
        "through the ingest) and demo accounts with DEMO_PASSWORD. Runs only with DEBUG on; "
        "running it again changes nothing."
    )

    def handle(self, *args, **options):
        # The accounts share one known password: never in a deployment.
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates demo accounts with a shared, known password and refuses to run "
                "with DEBUG off. Use it on a development machine only."
            )
        password = settings.DEMO_PASSWORD
        if not password:
            raise CommandError("DEMO_PASSWORD is empty: set it to the password the demo accounts should use.")

        network = demo.build_network()
        with transaction.atomic():  # a rejection leaves nothing half-seeded
            organisations = {org.key: register(org) for org in demo.ORGANISATIONS}
            totals = send_records(network, organisations)
            patients = {p.index: find_patient(p.nhs_number) for p in network.patients if p.is_demo}
            accounts = [seed_account(a, password, organisations, patients) for a in DEMO_ACCOUNTS]
            activity = seed_activity({account.email: account for account in accounts}, organisations)

        nhs_numbers = [p.nhs_number for p in network.patients]
        entries = RecordEntry.objects.filter(owner__in=organisations.values())
        self.stdout.write(
            f"Demo network {demo.CITY}: {len(organisations)} organisations, "
            f"{Patient.objects.filter(nhs_number__in=nhs_numbers).count()} patients, "
            f"{entries.count()} record entries "
            f"({totals['created']} created, {totals['updated']} updated, {totals['unchanged']} unchanged), "
            f"{len(accounts)} demo users."
        )
        for account in accounts:
            self.stdout.write(f"  {account.email} ({account.get_role_display()})")
        for line in activity:
            self.stdout.write(f"Demo activity: {line}")


def register(org: demo.DemoOrganisation) -> Organisation:
    organisation, _ = Organisation.objects.update_or_create(
        ods_code=org.ods_code, defaults={"name": org.name, "kind": org.kind}
    )
    return organisation


def send_records(network: demo.NetworkSnapshot, organisations: dict[str, Organisation]) -> Counter:
    """Send each organisation's bundle through the ingest, first versions of amended items first."""
    totals: Counter = Counter()
    for key, bundle in network.bundles.items():
        organisation = organisations[key]
        earlier = network.first_versions.get(key)
        # An earlier version is sent only while its item is new; sending it on a later run
        # would store it again as a third version, and the current one as a fourth.
        if earlier and not any(
            RecordEntry.objects.filter(owner=organisation, resource_type=rtype, fhir_id=fid).exists()
            for owner_key, rtype, fid in network.amended
            if owner_key == key
        ):
            totals.update(ingest(organisation, f"{organisation.ods_code}-first-versions", earlier))
        totals.update(ingest(organisation, f"{organisation.ods_code}-records", bundle))
    return totals


def ingest(organisation: Organisation, label: str, bundle: dict) -> Counter:
    result: IngestResult = ingest_documents(
        [(label, bundle)], organisation=organisation, atomic=False, source="seed_demo"
    )
    if result.rejected:
        shown = [str(issue.get("diagnostics") or issue) for issue in result.issues[:SHOWN_ISSUES]]
        more = len(result.issues) - len(shown)
        raise CommandError(
            f"the ingest rejected {result.rejected} demo resource(s) from {organisation.ods_code}:\n  "
            + "\n  ".join(shown)
            + (f"\n  ... and {more} more" if more > 0 else "")
        )
    return Counter(created=result.created, updated=result.updated, unchanged=result.unchanged)


def find_patient(nhs_number: str) -> Patient:
    patient = Patient.objects.filter(nhs_number=nhs_number).first()
    if patient is None:
        raise CommandError(f"the ingest did not register demo patient {nhs_number}")
    return patient


def seed_account(
    account: DemoAccount, password: str, organisations: dict[str, Organisation], patients: dict[int, Patient]
) -> User:
    patient = patients[account.patient] if account.patient is not None else None
    first_name = patient.given_names if patient else account.first_name
    last_name = patient.family_name if patient else account.last_name
    user = User.objects.filter(email=account.email).first()
    if user is None:
        user = User.objects.create_user(
            account.email, password, role=account.role, first_name=first_name, last_name=last_name
        )
    else:
        changed = {"role": account.role, "first_name": first_name, "last_name": last_name}
        for name, value in changed.items():
            setattr(user, name, value)
        if not user.check_password(password):
            user.set_password(password)
        user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    if account.organisation:
        Membership.objects.get_or_create(
            user=user,
            organisation=organisations[account.organisation],
            defaults={"job_title": account.job_title},
        )
    if account.role != Role.PATIENT and not Authenticator.objects.filter(user=user, type="totp").exists():
        # Staff cannot reach patient or audit data without a second factor; the demo
        # staff share one known authenticator secret (python manage.py demo_totp).
        TOTP.activate(user, DEMO_TOTP_SECRET)
    if patient:
        PatientLink.objects.update_or_create(
            user=user, defaults={"patient": patient, "method": PatientLink.Method.DEMO}
        )
    return user


def seed_activity(users: dict[str, User], organisations: dict[str, Organisation]) -> list[str]:
    """A little of what the portal is for, so that its pages are not empty the first
    time: the second demo patient asks the GP practice and the hospital to correct an
    item each (the hospital has asked them a question), and a hospital clinician has
    looked at the first demo patient's record. Everything goes through the same
    services as the pages, so it is audited like any other activity. Only once: a
    patient with requests already, or a look already made, is left as it is."""
    from accuracy import services
    from accuracy.models import CorrectionRequest
    from audit.models import AuditEvent
    from consent.policy import Action, actor_for, open_record

    done = []
    tomasz = actor_for(users["patient2@example.com"])
    if not CorrectionRequest.objects.filter(patient_id=tomasz.patient_id).exists():
        own = RecordEntry.objects.filter(patient_id=tomasz.patient_id, entered_in_error=False)
        gp, hospital = organisations["riverside"], organisations["hospital"]
        allergy = own.get(owner=gp, resource_type="AllergyIntolerance", display__icontains="peanut")
        services.submit_correction(
            actor=tomasz,
            entry_id=allergy.pk,
            element="code",
            proposed="Tree nuts (almonds), not peanuts",
            reason="The allergy clinic tested me in 2019: peanuts were negative and almonds positive.",
            contact_preference="portal",
        )
        operation = own.get(owner=hospital, resource_type="Procedure", display__icontains="hip")
        asked = services.submit_correction(
            actor=tomasz,
            entry_id=operation.pk,
            element="code",
            proposed="Total replacement of the left hip",
            reason="It was my left hip that was replaced. The record does not say which one.",
            contact_preference="portal",
        )
        records = actor_for(users["hospital@example.com"])
        asked = services.start_review(actor=records, request_id=asked.pk, revision=asked.revision)
        services.ask_information(
            actor=records,
            request_id=asked.pk,
            revision=asked.revision,
            question="Do you have the discharge letter from the operation? It will name the side.",
        )
        done.append("patient2@example.com asked the GP practice and the hospital for a correction each")
    fatima = users["patient@example.com"].patient_link.patient
    doctor = users["hospital@example.com"]
    if not AuditEvent.objects.filter(actor=doctor, patient=fatima).exists():
        access = open_record(actor_for(doctor), fatima.pk, action=Action.READ_RECORD)
        access.read(lambda entries: entries.filter(resource_type__in=["Condition", "MedicationRequest"]))
        done.append("hospital@example.com looked at patient@example.com's problems and medicines")
    return done
