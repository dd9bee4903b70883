"""seed_demo: the Northbridge demo network, loaded through the ingest, idempotent, and
never run with DEBUG off."""

import json
from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.core.management import CommandError, call_command
from fhir.resources.R4B import get_fhir_model_class

from accounts.models import Membership, PatientLink, Role, User
from demo import network as demo
from phr.models import Category, EntryVersion, Organisation, Patient, RecordEntry
from phr.nhs_number import is_valid_nhs_number

RECORD_KINDS = {
    "Patient",
    "Condition",
    "AllergyIntolerance",
    "Observation",
    "Encounter",
    "Immunization",
    "Procedure",
    "DiagnosticReport",
    "DocumentReference",
}


def test_every_generated_resource_validates_as_fhir_r4():
    network = demo.build_network()
    resources = list(network.resources())
    assert len(resources) > 500
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for bundle in [*network.bundles.values(), *network.first_versions.values()]:
        get_fhir_model_class("Bundle").model_validate(bundle)


def test_generation_is_the_same_every_time():
    first, second = demo.build_network(), demo.build_network()
    assert json.dumps(first.bundles, sort_keys=True) == json.dumps(second.bundles, sort_keys=True)


def test_resource_ids_are_unique_per_owner_and_type():
    for bundle in demo.build_network().bundles.values():
        keys = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]]
        assert len(keys) == len(set(keys))


def test_every_patient_resource_carries_a_valid_test_range_nhs_number():
    for resource in demo.build_network().resources():
        if resource["resourceType"] == "Patient":
            (nhs,) = [i["value"] for i in resource["identifier"] if i["system"] == demo.NHS_NUMBER_SYSTEM]
            assert is_valid_nhs_number(nhs)
            assert 9990000000 <= int(nhs) <= 9999999999


@pytest.fixture
def seed(settings):
    settings.DEBUG = True  # pytest-django turns DEBUG off for tests
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    def run() -> str:
        out = StringIO()
        call_command("seed_demo", stdout=out)
        return out.getvalue()

    return run


@pytest.fixture
def seeded(db, seed):
    return seed()


def demo_patient(index: int) -> Patient:
    return Patient.objects.get(nhs_number=demo.make_patients()[index].nhs_number)


@pytest.mark.django_db
def test_it_creates_a_network_of_different_kinds_of_organisation(seeded):
    organisations = Organisation.objects.filter(ods_code__in=[o.ods_code for o in demo.ORGANISATIONS])
    assert organisations.count() >= 6
    assert len(set(organisations.values_list("kind", flat=True))) >= 5


@pytest.mark.django_db
def test_it_registers_at_least_twenty_patients_with_test_range_nhs_numbers(seeded):
    patients = Patient.objects.exclude(nhs_number=None)
    assert patients.count() >= 20
    for patient in patients:
        assert is_valid_nhs_number(patient.nhs_number)
        assert 9990000000 <= int(patient.nhs_number) <= 9999999999
        assert patient.family_name
        assert patient.given_names
        assert patient.birth_date
        assert patient.postcode


@pytest.mark.django_db
def test_patients_are_matched_across_owners_by_nhs_number(seeded):
    patient = demo_patient(0)
    holders = RecordEntry.objects.filter(patient=patient, resource_type="Patient").values_list(
        "owner__kind", flat=True
    )
    assert len(holders) == 6  # one GP practice and every other kind of organisation


@pytest.mark.django_db
@pytest.mark.parametrize("index", demo.DEMO_PATIENT_INDEXES)
def test_each_demo_patient_has_every_kind_of_record_from_several_owners(seeded, index):
    entries = RecordEntry.objects.filter(patient=demo_patient(index))
    types = set(entries.values_list("resource_type", flat=True))
    assert types >= RECORD_KINDS
    assert {"MedicationRequest", "MedicationStatement"} & types
    assert entries.values("owner").distinct().count() >= 5
    categories = set(entries.values_list("category", flat=True))
    assert {
        Category.MENTAL_HEALTH,
        Category.SEXUAL_HEALTH,
        Category.SOCIAL_CARE,
        Category.SAFEGUARDING,
    } <= categories


@pytest.mark.django_db
def test_observations_are_results_and_vital_signs_with_quantities(seeded):
    observations = [
        json.loads(e.json)
        for e in RecordEntry.objects.filter(patient=demo_patient(0), resource_type="Observation")
    ]
    categories = {c["coding"][0]["code"] for o in observations for c in o["category"]}
    assert categories == {"laboratory", "vital-signs"}
    assert any("valueQuantity" in o for o in observations)


@pytest.mark.django_db
def test_sensitive_items_come_from_their_owners(seeded):
    mental_health = RecordEntry.objects.filter(category=Category.MENTAL_HEALTH)
    assert mental_health.filter(resource_type="Condition", owner__kind="mental_health_trust").exists()
    assert mental_health.filter(resource_type="Encounter", owner__kind="mental_health_trust").exists()
    sexual_health = RecordEntry.objects.filter(category=Category.SEXUAL_HEALTH, resource_type="Condition")
    assert set(sexual_health.values_list("display", flat=True)) == {
        "Chlamydial infection",
        "Human immunodeficiency virus infection",
    }
    assert RecordEntry.objects.filter(category=Category.SOCIAL_CARE, owner__kind="social_care").exists()
    assert RecordEntry.objects.filter(category=Category.SAFEGUARDING).exists()


@pytest.mark.django_db
def test_a_document_carries_its_text_inline(seeded):
    document = RecordEntry.objects.filter(resource_type="DocumentReference").first()
    attachment = json.loads(document.json)["content"][0]["attachment"]
    assert attachment["contentType"].startswith("text/plain")
    assert attachment["data"]


@pytest.mark.django_db
def test_an_entry_made_in_error_is_marked_so(seeded):
    wrong = RecordEntry.objects.filter(patient=demo_patient(0), entered_in_error=True)
    assert wrong.filter(resource_type="AllergyIntolerance").exists()


@pytest.mark.django_db
def test_the_amended_prescription_keeps_both_versions(seeded):
    entry = RecordEntry.objects.get(patient=demo_patient(0), resource_type="MedicationRequest", version=2)
    first, second = entry.versions.order_by("number")
    assert json.loads(first.json)["dosageInstruction"][0]["text"] == demo.AMENDED_FIRST_DOSE
    assert json.loads(second.json)["dosageInstruction"][0]["text"] == "5mg once daily"
    assert json.loads(entry.json) == json.loads(second.json)


@pytest.mark.django_db
def test_running_it_again_changes_nothing(seeded, seed):
    def counts():
        return (
            Organisation.objects.count(),
            Patient.objects.count(),
            RecordEntry.objects.count(),
            EntryVersion.objects.count(),
            User.objects.count(),
            EmailAddress.objects.count(),
            Membership.objects.count(),
            PatientLink.objects.count(),
        )

    before = counts()
    out = seed()
    assert counts() == before
    assert "0 created, 0 updated" in out


@pytest.mark.django_db
def test_it_refuses_with_debug_off(seed, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("seed_demo", stdout=StringIO())
    assert not User.objects.exists()
    assert not RecordEntry.objects.exists()


@pytest.mark.django_db
def test_it_refuses_without_a_demo_password(seed, settings):
    settings.DEMO_PASSWORD = ""
    with pytest.raises(CommandError, match="DEMO_PASSWORD"):
        seed()
    assert not User.objects.exists()


@pytest.mark.django_db
def test_demo_accounts_sign_in_with_the_demo_password_and_hold_their_roles(seeded, settings):
    expected = {
        "patient@example.com": Role.PATIENT,
        "patient2@example.com": Role.PATIENT,
        "gp@example.com": Role.CLINICIAN,
        "hospital@example.com": Role.CLINICIAN,
        "ig@example.com": Role.IG_OFFICER,
    }
    for email, role in expected.items():
        user = User.objects.get(email=email)
        assert user.role == role
        assert user.check_password(settings.DEMO_PASSWORD)
        assert EmailAddress.objects.filter(user=user, email=email, verified=True, primary=True).exists()


@pytest.mark.django_db
def test_patient_accounts_are_linked_to_different_demo_patients(seeded):
    first = PatientLink.objects.get(user__email="patient@example.com")
    second = PatientLink.objects.get(user__email="patient2@example.com")
    assert first.method == second.method == PatientLink.Method.DEMO
    assert first.patient == demo_patient(0)
    assert second.patient == demo_patient(1)


@pytest.mark.django_db
def test_clinicians_are_members_of_their_organisations(seeded):
    assert Membership.objects.get(user__email="gp@example.com").organisation.kind == "gp_practice"
    assert Membership.objects.get(user__email="hospital@example.com").organisation.kind == "acute_trust"
    assert not Membership.objects.filter(user__email="ig@example.com").exists()


@pytest.mark.django_db
def test_a_changed_password_is_reset_to_the_demo_password(seeded, seed, settings):
    user = User.objects.get(email="gp@example.com")
    user.set_password("something-else-entirely")
    user.save()
    seed()
    user.refresh_from_db()
    assert user.check_password(settings.DEMO_PASSWORD)


@pytest.mark.django_db
def test_it_prints_a_summary(seeded):
    assert "7 organisations" in seeded
    assert "24 patients" in seeded
    assert "record entries" in seeded
    assert "5 demo users" in seeded


@pytest.mark.django_db
def test_the_demo_has_corrections_in_two_queues_and_a_look_in_the_access_log(seeded):
    from accuracy.models import BusinessStatus, CorrectionRequest
    from audit.models import AuditEvent

    tomasz = demo_patient(1)
    requests = {r.owner.ods_code: r for r in CorrectionRequest.objects.filter(patient=tomasz)}
    assert set(requests) == {"Y9N1A", "Y9N3C"}
    assert requests["Y9N1A"].business_status == BusinessStatus.QUEUED
    assert requests["Y9N3C"].business_status == BusinessStatus.WAITING
    assert requests["Y9N1A"].entry.patient == requests["Y9N3C"].entry.patient == tomasz
    # Ordinary items a demo can show anyone: nothing from a sensitive category.
    assert {r.entry.category for r in requests.values()} == {"general"}
    assert {r.entry.resource_type for r in requests.values()} == {"AllergyIntolerance", "Procedure"}
    look = AuditEvent.objects.get(actor__email="hospital@example.com", patient=demo_patient(0))
    assert (look.action, look.outcome) == ("record.read", "permit")
    assert look.entries  # it names what was disclosed


@pytest.mark.django_db
def test_running_it_again_adds_no_activity(seeded, seed):
    from accuracy.models import CorrectionRequest, TimelineEvent
    from audit.models import AuditEvent

    def counts():
        # Each organisation's batch is still received and audited (ingest.batch) on a rerun.
        events = AuditEvent.objects.exclude(action="ingest.batch")
        return CorrectionRequest.objects.count(), TimelineEvent.objects.count(), events.count()

    before = counts()
    out = seed()
    assert counts() == before
    assert "Demo activity" not in out
