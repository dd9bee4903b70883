"""The clinician's view of a record: the patient banner on every page about the patient,
the record in clinical sections (allergies first) with each item in words and its FHIR
behind a disclosure, a filter by kind of record, and ending emergency access early."""

import re
from datetime import date, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accuracy.record_display import KINDS
from audit.models import AuditEvent
from consent.models import BreakGlass
from consent.policy import Actor, ActorRole, NotFound, actor_for, open_record
from consent.services import end_break_glass
from phr.ingest import ingest_documents
from phr.models import RecordEntry
from tests.clinician.network import NHS_NUMBER, NHS_SYSTEM, SNOMED, build_record
from tests.clinician.test_clinician_pages import deny
from tests.personas import ClinicianFactory, PatientUserFactory
from web.clinician.banner import age_in_words, patient_banner, spaced_nhs_number
from web.clinician.record import SECTION_LIMIT

pytestmark = pytest.mark.django_db

REASON = {"reason_code": "emergency", "reason_text": "Unconscious in the emergency department, no history"}


def record_url(patient_id) -> str:
    return reverse("clinician:record", kwargs={"patient_id": patient_id})


def end_url(patient_id) -> str:
    return reverse("clinician:end_emergency_access", kwargs={"patient_id": patient_id})


def headings(html: str) -> list[str]:
    return re.findall(r'<h2 class="nhsuk-heading-m" id="section-[\w-]+-heading">([^<]+)</h2>', html)


def more_of_the_record(hospital) -> None:
    """An allergy, a medicine taken now and one stopped, a resolved problem, a vaccination."""
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": NHS_SYSTEM, "value": NHS_NUMBER}],
        "name": [{"family": "Okafor", "given": ["Ada"]}],
    }
    subject = {"reference": "Patient/p1"}
    resources = [
        patient,
        {
            "resourceType": "AllergyIntolerance",
            "id": "a1",
            "patient": subject,
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"coding": [{"system": SNOMED, "code": "764146007", "display": "Penicillin"}]},
            "reaction": [{"manifestation": [{"text": "Anaphylaxis"}], "severity": "severe"}],
            "recordedDate": "2019-06-01",
        },
        {
            "resourceType": "MedicationStatement",
            "id": "m1",
            "status": "active",
            "subject": subject,
            "medicationCodeableConcept": {"text": "Ramipril 5mg capsules"},
            "dosage": [{"text": "One capsule once a day"}],
            "effectiveDateTime": "2024-01-01",
        },
        {
            "resourceType": "MedicationStatement",
            "id": "m2",
            "status": "stopped",
            "subject": subject,
            "medicationCodeableConcept": {"text": "Amoxicillin 500mg capsules"},
            "effectiveDateTime": "2018-01-01",
        },
        {
            "resourceType": "Condition",
            "id": "h2",
            "subject": subject,
            "clinicalStatus": {"coding": [{"code": "resolved"}]},
            "code": {
                "coding": [{"system": SNOMED, "code": "68566005", "display": "Urinary tract infection"}]
            },
            "recordedDate": "2021-03-01",
        },
        {
            "resourceType": "Immunization",
            "id": "i1",
            "status": "completed",
            "patient": subject,
            "vaccineCode": {"text": "Influenza vaccine"},
            "occurrenceDateTime": "2024-10-01",
        },
    ]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    ingest_documents([("more.json", bundle)], organisation=hospital)


@pytest.fixture
def ada(gp, hospital):
    patient = build_record(gp, hospital)
    more_of_the_record(hospital)
    return patient


@pytest.fixture
def ada_actor(ada):
    return actor_for(PatientUserFactory(email="ada@example.com", patient=ada))


@pytest.fixture
def dr_hospital(hospital):
    return ClinicianFactory(email="dr.bell@hospital.example", organisation=hospital)


@pytest.fixture
def dr_mind(mental_health_trust):
    return ClinicianFactory(email="dr.moss@mind.example", organisation=mental_health_trust)


@pytest.fixture
def under_break_glass(client, ada, ada_actor, mental_health_trust, dr_mind):
    deny(ada_actor, ada, organisation=mental_health_trust)
    client.force_login(dr_mind)
    assert (
        client.post(reverse("clinician:emergency_access", kwargs={"patient_id": ada.pk}), REASON).status_code
        == 302
    )
    return ada


# --- The patient banner ------------------------------------------------------------------


def test_the_banner_names_the_patient_with_birth_date_age_and_spaced_nhs_number(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    with time_machine.travel(date(2026, 12, 7)):
        html = client.get(record_url(ada.pk)).content.decode()
    banner = html[
        html.index('id="patient-banner"') : html.index("</section>", html.index('id="patient-banner"'))
    ]
    assert "OKAFOR, Ada" in banner
    assert "4 March 1971" in banner
    assert "(55 years)" in banner
    assert "Female" in banner
    assert "943 476 5919" in banner


def test_the_banner_is_on_the_item_the_emergency_form_and_the_request_pages(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    item = RecordEntry.objects.get(display="Serum potassium")
    for url in (
        reverse("clinician:entry", kwargs={"patient_id": ada.pk, "entry_id": item.pk}),
        reverse("clinician:emergency_access", kwargs={"patient_id": ada.pk}),
    ):
        html = client.get(url).content.decode()
        assert 'id="patient-banner"' in html, url
        assert "OKAFOR, Ada" in html, url


def test_a_refused_clinician_is_shown_no_banner_on_the_emergency_form(
    client, ada, ada_actor, dr_mind, mental_health_trust
):
    deny(ada_actor, ada, organisation=mental_health_trust)
    client.force_login(dr_mind)
    html = client.get(reverse("clinician:emergency_access", kwargs={"patient_id": ada.pk})).content.decode()
    assert 'id="patient-banner"' not in html
    assert "Okafor" not in html
    assert "943 476 5919" not in html
    # Opening the form is not a refused read of the record.
    assert not AuditEvent.objects.filter(action="record.read", actor=dr_mind).exists()


def test_the_banner_reads_the_patients_details_through_the_policy_and_audits_it(ada, dr_hospital):
    access = open_record(actor_for(dr_hospital), ada.pk)
    banner = patient_banner(access)
    assert banner.name == "OKAFOR, Ada"
    event = AuditEvent.objects.filter(action="record.read", actor=dr_hospital).last()
    copies = RecordEntry.objects.filter(patient=ada, resource_type="Patient")
    assert event.detail["purpose"] == "patient banner"
    assert sorted(event.entries) == sorted(f"{c.pk.hex}:{c.version}" for c in copies)


def test_with_no_readable_details_the_banner_gives_the_nhs_number_only(ada, hospital, dr_hospital):
    # Credentials that release conditions only: no Patient resource is readable.
    narrow = Actor(
        ActorRole.CLINICIAN, user=dr_hospital, organisation=hospital, readable_types=frozenset({"Condition"})
    )
    banner = patient_banner(open_record(narrow, ada.pk))
    assert (banner.name, banner.birth_date, banner.gender) == ("", None, "")
    assert banner.nhs_number == "943 476 5919"


@pytest.mark.parametrize(
    ("born", "today", "words"),
    [
        (date(1971, 3, 4), date(2026, 3, 3), "54 years"),
        (date(1971, 3, 4), date(2026, 3, 4), "55 years"),
        (date(2025, 1, 10), date(2026, 12, 7), "22 months"),
        (date(2026, 11, 7), date(2026, 12, 7), "1 month"),
        (date(2026, 12, 1), date(2026, 12, 7), "6 days"),
    ],
)
def test_age_in_words(born, today, words):
    assert age_in_words(born, today) == words


def test_nhs_numbers_are_spaced_three_three_four():
    assert spaced_nhs_number("9434765919") == "943 476 5919"
    assert spaced_nhs_number(None) == ""


# --- Clinical sections ---------------------------------------------------------------------


def test_the_record_is_in_clinical_sections_allergies_first(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    html = client.get(record_url(ada.pk)).content.decode()
    assert headings(html) == [
        "Allergies and adverse reactions",
        "Current medicines",
        "Problems",
        "Recent results",
        "Vaccinations",
    ]


def test_problems_and_medicines_list_current_ones_before_past_ones(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    html = client.get(record_url(ada.pk)).content.decode()
    assert html.index("Active problems") < html.index("Hypertensive disorder") < html.index("Past problems")
    assert html.index("Past problems") < html.index("Urinary tract infection")
    assert html.index("Ramipril") < html.index("Past medicines") < html.index("Amoxicillin")


def test_each_item_is_in_words_with_its_fhir_behind_a_disclosure(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    html = client.get(record_url(ada.pk)).content.decode()
    allergy = html[html.index('id="section-allergies"') : html.index('id="section-medications"')]
    assert "Penicillin" in allergy
    assert "Anaphylaxis" in allergy
    assert "City Teaching Hospitals" in allergy
    assert "1 June 2019" in allergy
    assert "<details" in allergy
    assert "Show the FHIR resource" in allergy
    assert "&quot;resourceType&quot;: &quot;AllergyIntolerance&quot;" in allergy
    results = html[html.index('id="section-test-results"') :]
    assert "Serum potassium" in results
    assert "4.1" in results


def test_the_filter_offers_kinds_of_record_not_fhir_type_names(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    html = client.get(record_url(ada.pk)).content.decode()
    options = re.findall(
        r'<option value="([^"]*)"[^>]*>([^<]+)</option>', html[html.index('id="filter-kind"') :]
    )
    offered = dict(options[: options.index(next(o for o in options if o[1] == "All organisations"))])
    assert offered == {"": "Every kind", **{kind.slug: kind.title for kind in KINDS}}
    for fhir_name in ("Claim", "ExplanationOfBenefit", "AllergyIntolerance", "Observation"):
        assert fhir_name not in offered
        assert fhir_name not in offered.values()


def test_choosing_a_kind_shows_only_that_section_and_reads_only_it(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    html = client.get(record_url(ada.pk), {"kind": "test-results"}).content.decode()
    assert headings(html) == ["Recent results"]
    assert "Serum potassium" in html
    assert "Hypertensive disorder" not in html
    read = AuditEvent.objects.filter(action="record.read", actor=dr_hospital, detail__kind="test-results")
    assert read.exists()
    # A kind that is not one is ignored, never an error.
    assert client.get(record_url(ada.pk), {"kind": "ExplanationOfBenefit"}).status_code == 200


def test_a_long_section_shows_its_most_recent_items_and_links_to_all(client, ada, hospital, dr_hospital):
    readings = [
        {
            "resourceType": "Observation",
            "id": f"bp{n}",
            "status": "final",
            "subject": {"reference": "Patient/p1"},
            "code": {"text": f"Blood pressure reading {n}"},
            "effectiveDateTime": f"2020-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
        }
        for n in range(SECTION_LIMIT + 5)
    ]
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": NHS_SYSTEM, "value": NHS_NUMBER}],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in [patient, *readings]],
    }
    ingest_documents([("bp.json", bundle)], organisation=hospital)
    client.force_login(dr_hospital)
    html = client.get(record_url(ada.pk)).content.decode()
    total = SECTION_LIMIT + 5 + 1  # the readings and the potassium
    assert f"Showing the most recent {SECTION_LIMIT} of {total}" in html
    assert 'href="?kind=test-results"' in html
    every = client.get(record_url(ada.pk), {"kind": "test-results"}).content.decode()
    assert f"Items 1 to {total} of {total}" in every


def test_under_break_glass_the_allergies_come_first_before_the_filter(client, under_break_glass):
    html = client.get(record_url(under_break_glass.pk)).content.decode()
    main = html[html.index("<main") :]
    assert main.index('id="emergency-access-banner"') < main.index('id="section-allergies"')
    assert main.index('id="section-allergies"') < main.index('id="record-filter"')
    assert headings(html)[0] == "Allergies and adverse reactions"


# --- Ending emergency access ---------------------------------------------------------------


def test_the_break_glass_banner_offers_to_end_it_now(client, under_break_glass):
    html = client.get(record_url(under_break_glass.pk)).content.decode()
    assert f'action="{end_url(under_break_glass.pk)}"' in html
    assert "End emergency access now" in html


def test_ending_emergency_access_closes_the_record_and_is_audited(client, under_break_glass, dr_mind):
    ada = under_break_glass
    glass = BreakGlass.objects.get()
    granted = glass.expires_at
    response = client.post(end_url(ada.pk))
    assert response.status_code == 302
    assert response["Location"] == record_url(ada.pk)
    glass.refresh_from_db()
    assert glass.expires_at == granted  # the opening is never changed: its ending is a row of its own
    assert glass.ending.ended_at <= timezone.now() < granted
    closed = client.get(record_url(ada.pk))
    assert closed.status_code == 404
    assert b"You cannot see this record" in closed.content
    event = AuditEvent.objects.get(action="breakglass.end", actor=dr_mind)
    assert event.outcome == "permit"
    assert event.detail["break_glass"] == glass.pk
    assert event.detail["was_due_to_end"] == granted.isoformat()
    # Ending it again finds nothing open.
    assert client.post(end_url(ada.pk)).status_code == 404


def test_only_the_clinician_who_opened_it_can_end_it(client, under_break_glass, mental_health_trust):
    ada = under_break_glass
    glass = BreakGlass.objects.get()
    colleague = ClinicianFactory(email="dr.other@mind.example", organisation=mental_health_trust)
    client.force_login(colleague)
    response = client.post(end_url(ada.pk))
    assert response.status_code == 404
    assert b"You cannot see this record" in response.content
    assert BreakGlass.objects.get().expires_at == glass.expires_at
    refused = AuditEvent.objects.get(action="breakglass.end", actor=colleague)
    assert refused.outcome == "deny"
    with pytest.raises(NotFound):
        end_break_glass(actor=actor_for(colleague), patient_id=ada.pk)


def test_ending_is_a_post_and_a_missing_patient_is_refused_alike(client, under_break_glass):
    missing = client.post(end_url("00000000-0000-4000-8000-000000000000"))
    assert missing.status_code == 404
    assert client.get(end_url(under_break_glass.pk)).status_code == 405


def test_an_expired_opening_cannot_be_ended(client, under_break_glass):
    glass = BreakGlass.objects.get()
    with time_machine.travel(glass.expires_at + timedelta(seconds=1)):
        client.logout()  # an hour idle signs anyone out: sign in afresh
        client.force_login(glass.clinician)
        assert client.post(end_url(under_break_glass.pk)).status_code == 404
