"""Corrections made with fields: for each kind of item the clinician changes parts in form
fields, sees the change in words, confirms, and the item's next version is the current
one with exactly those elements changed, stored as the JSON path stores it. Bad input is
told at the field that has it, never a server error."""

import html
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import User
from accuracy import services
from accuracy.models import BusinessStatus, CorrectionRequest, TimelineEvent
from audit.models import AuditEvent
from consent.policy import actor_for
from phr.ingest import ingest_documents
from phr.models import EntryVersion, RecordEntry
from tests.clinician.network import build_record
from tests.personas import ClinicianFactory, PatientUserFactory

pytestmark = pytest.mark.django_db

SUBJECT = {"reference": "Patient/p1"}
MEDICINE = {
    "resourceType": "MedicationStatement",
    "id": "m1",
    "status": "active",
    "subject": SUBJECT,
    "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
    "dosage": [
        {
            "text": "50mg once daily",
            "doseAndRate": [
                {
                    "doseQuantity": {
                        "value": 50,
                        "unit": "mg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mg",
                    }
                }
            ],
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        }
    ],
    "note": [{"text": "Review in March"}],
}
ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "id": "a1",
    "patient": SUBJECT,
    "clinicalStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
        ]
    },
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "764146007", "display": "Penicillin"}]},
    "criticality": "low",
    "reaction": [{"manifestation": [{"text": "Rash"}], "severity": "mild"}],
}
VACCINE = {
    "resourceType": "Immunization",
    "id": "i1",
    "status": "completed",
    "patient": SUBJECT,
    "vaccineCode": {"text": "Influenza vaccine"},
    "occurrenceDateTime": "2024-10-01",
    "lotNumber": "AB123",
}
RESULT = {
    "resourceType": "Observation",
    "id": "o2",
    "status": "final",
    "subject": SUBJECT,
    "code": {"text": "Serum sodium"},
    "effectiveDateTime": "2024-09-01T09:00:00Z",
    "valueQuantity": {
        "value": 140,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    },
}

OPERATION = {
    "resourceType": "Procedure",
    "id": "pr1",
    "status": "completed",
    "subject": SUBJECT,
    "code": {"text": "Appendicectomy"},
}


@pytest.fixture
def world(gp, hospital, dr_gp):
    ada = build_record(gp, hospital)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (MEDICINE, ALLERGY, VACCINE, RESULT, OPERATION)],
    }
    ingest_documents([("gp-more.json", bundle)], organisation=gp)
    return {
        "gp": gp,
        "ada": PatientUserFactory(email="ada@example.com", patient=ada),
        "dr_gp": dr_gp,
        "dr_hosp": ClinicianFactory(email="dr.hosp@example.com", organisation=hospital),
    }


def entry_of(fhir_id: str, resource_type: str | None = None) -> RecordEntry:
    found = RecordEntry.objects.filter(owner__ods_code="A10001", fhir_id=fhir_id)
    if resource_type:
        found = found.filter(resource_type=resource_type)
    return found.get()


def flagged(world, fhir_id: str, element: str, *, resource_type: str | None = None) -> CorrectionRequest:
    """Ada flags a part of a GP item, and the GP starts reviewing it."""
    request = services.submit_correction(
        actor=actor_for(world["ada"]),
        entry_id=entry_of(fhir_id, resource_type).pk,
        element=element,
        proposed="It should say something else",
        reason="The surgery wrote it down wrongly",
        contact_preference="portal",
    )
    return services.start_review(
        actor=actor_for(User.objects.get(pk=world["dr_gp"].pk)),
        request_id=request.pk,
        revision=request.revision,
    )


def act_url(correction) -> str:
    return reverse("workspace:act", kwargs={"request_id": correction.pk, "step": "amend"})


def request_url(correction) -> str:
    return reverse("workspace:request", kwargs={"request_id": correction.pk})


def fields_shown(client, correction) -> dict[str, str]:
    """The amendment form's inputs as the request page fills them: the item as it is now."""
    page = client.get(request_url(correction)).content.decode()
    form = page.split('id="amend-fields"')[1].split("</form>")[0]
    shown = {}
    for tag in re.findall(r"<input[^>]*>", form):
        attrs = dict(re.findall(r'([a-z]+)="([^"]*)"', tag))
        if not attrs.get("name", "").startswith("amend-"):
            continue
        if attrs.get("type") == "radio" and " checked" not in tag:
            continue
        shown[attrs["name"].removeprefix("amend-")] = html.unescape(attrs.get("value", ""))
    for name, options in re.findall(r'<select[^>]*name="amend-([a-z_]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', options)
        shown[name] = chosen.group(1) if chosen else ""
    for name, text in re.findall(r'<textarea[^>]*name="amend-([a-z_]+)"[^>]*>(.*?)</textarea>', form, re.S):
        shown[name] = html.unescape(text.strip())
    return shown


def submit(client, correction, *, confirm: bool, outcome: str = "accept", note: str = "", **changes):
    """Post the form as the page would, with the fields the test changes."""
    data = {f"amend-{k}": v for k, v in fields_shown(client, correction).items()}
    data.update({f"amend-{k}": v for k, v in changes.items()})
    data.update({"amend-outcome": outcome, "amend-note": note})
    if confirm:
        data["confirm"] = "1"
    return client.post(act_url(correction), data)


def stored(entry: RecordEntry, number: int) -> dict:
    return json.loads(EntryVersion.objects.get(entry=entry, number=number).json)


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# --- Each kind of item ----------------------------------------------------------------------


def test_a_dose_and_status_change_makes_the_next_version_with_everything_else_kept(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    changes = {
        "dose_text": "5mg once daily",
        "dose_quantity_value": "5",
        "frequency_times": "2",
        "status": "entered-in-error",
    }

    preview = submit(client, correction, confirm=False, **changes)
    words = text_of(preview)
    assert preview.status_code == 200
    assert "The dose changes from 50mg once daily to 5mg once daily" in words
    assert "The amount changes from 50 mg to 5 mg" in words
    assert "The frequency changes from once a day to twice a day" in words
    assert "The status changes from active to entered in error" in words
    assert EntryVersion.objects.filter(entry=entry_of("m1")).count() == 1  # nothing stored yet
    for not_confirmed in ("0", "", "yes"):  # only the page's own confirm=1 saves
        again = client.post(
            act_url(correction), {**preview.wsgi_request.POST.dict(), "confirm": not_confirmed}
        )
        assert "Confirm and save the correction" in again.content.decode()
    assert EntryVersion.objects.filter(entry=entry_of("m1")).count() == 1

    response = submit(client, correction, confirm=True, **changes)
    assert response.status_code == 302
    expected = json.loads(json.dumps(MEDICINE))
    expected["status"] = "entered-in-error"
    expected["dosage"][0]["text"] = "5mg once daily"
    expected["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 5
    expected["dosage"][0]["timing"]["repeat"]["frequency"] = 2
    assert stored(entry_of("m1"), 2) == expected
    correction = CorrectionRequest.objects.get(pk=correction.pk)
    assert correction.business_status == BusinessStatus.AMENDED
    assert correction.amended_version == 2


def test_a_condition_is_corrected_by_status_dates_and_a_code_from_its_own_system(world, client):
    correction = flagged(world, "c1", "clinicalStatus", resource_type="Condition")
    client.force_login(world["dr_gp"])
    response = submit(
        client,
        correction,
        confirm=True,
        clinical_status="resolved",
        verification_status="confirmed",
        abatement_day="3",
        abatement_month="2",
        abatement_year="2025",
        onset_year="2019",
        concept_text="Essential hypertension",
        concept_code="59621000",
    )
    assert response.status_code == 302
    amended = stored(entry_of("c1", "Condition"), 2)
    assert amended["clinicalStatus"] == {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]
    }
    assert amended["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert amended["abatementDateTime"] == "2025-02-03"
    assert amended["onsetDateTime"] == "2019"
    assert amended["code"] == {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "59621000", "display": "Essential hypertension"}
        ],
        "text": "Essential hypertension",
    }
    assert amended["recordedDate"] == "2024-05-01"
    assert amended["subject"] == SUBJECT


def test_a_condition_marked_entered_in_error_loses_its_clinical_status_and_the_preview_says_so(world, client):
    correction = flagged(world, "c1", "clinicalStatus", resource_type="Condition")
    client.force_login(world["dr_gp"])
    fields = {"verification_status": "entered-in-error", "clinical_status": "active"}
    preview = text_of(submit(client, correction, confirm=False, **fields))
    assert "Whether it is confirmed is set to entered in error" in preview
    assert "Whether it is current" not in preview.split("What changes")[1]  # con-5 leaves none
    assert submit(client, correction, confirm=True, **fields).status_code == 302
    amended = stored(entry_of("c1", "Condition"), 2)
    assert "clinicalStatus" not in amended
    assert amended["verificationStatus"]["coding"][0]["code"] == "entered-in-error"


def test_an_allergy_reaction_and_criticality_change_and_the_substance_keeps_its_coding(world, client):
    correction = flagged(world, "a1", "reaction[0].manifestation")
    client.force_login(world["dr_gp"])
    assert (
        submit(client, correction, confirm=True, reaction="Anaphylaxis", criticality="high").status_code
        == 302
    )
    expected = json.loads(json.dumps(ALLERGY))
    expected["reaction"][0]["manifestation"] = [{"text": "Anaphylaxis"}]
    expected["criticality"] = "high"
    assert stored(entry_of("a1"), 2) == expected


def test_an_observation_value_keeps_its_unit_and_can_be_marked_entered_in_error(world, client):
    correction = flagged(world, "o2", "valueQuantity")
    client.force_login(world["dr_gp"])
    preview = text_of(submit(client, correction, confirm=False, value="135.50", status="entered-in-error"))
    assert "The result changes from 140 mmol/L to 135.50 mmol/L" in preview
    assert (
        submit(client, correction, confirm=True, value="135.50", status="entered-in-error").status_code == 302
    )
    amended = stored(entry_of("o2"), 2)
    assert amended["valueQuantity"] == {
        "value": 135.5,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert EntryVersion.objects.get(entry=entry_of("o2"), number=2).json.count("135.50") == 1  # as typed
    assert amended["status"] == "entered-in-error"
    assert amended["effectiveDateTime"] == RESULT["effectiveDateTime"]


def test_an_immunisation_date_changes_and_nothing_else(world, client):
    correction = flagged(world, "i1", "occurrenceDateTime")
    client.force_login(world["dr_gp"])
    preview = text_of(submit(client, correction, confirm=False, occurrence_day="8", occurrence_month="10"))
    assert "When it was given changes from 1 October 2024 to 8 October 2024" in preview
    assert (
        submit(client, correction, confirm=True, occurrence_day="8", occurrence_month="10").status_code == 302
    )
    assert stored(entry_of("i1"), 2) == {**VACCINE, "occurrenceDateTime": "2024-10-08"}


def test_personal_details_are_corrected_in_fields(world, client):
    correction = flagged(world, "p1", "name", resource_type="Patient")
    client.force_login(world["dr_gp"])
    before = json.loads(entry_of("p1", "Patient").json)
    response = submit(
        client,
        correction,
        confirm=True,
        given="Adaeze Ngozi",
        family="Okafor-Smith",
        birth_date_day="5",
        address_lines="1 High Street\nFlat 2",
        city="Leeds",
        postcode="LS1 4AP",
        phone="0113 496 0000",
    )
    assert response.status_code == 302
    amended = stored(entry_of("p1", "Patient"), 2)
    assert amended["name"] == [{"family": "Okafor-Smith", "given": ["Adaeze", "Ngozi"]}]
    assert amended["birthDate"] == "1971-03-05"
    assert amended["address"] == [
        {"line": ["1 High Street", "Flat 2"], "city": "Leeds", "postalCode": "LS1 4AP"}
    ]
    assert amended["telecom"] == [{"system": "phone", "value": "0113 496 0000"}]
    assert amended["identifier"] == before["identifier"]
    assert amended["gender"] == before["gender"]


def test_only_the_flagged_parts_show_first_and_the_rest_are_folded_away(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    form = (
        client.get(request_url(correction)).content.decode().split('id="amend-fields"')[1].split("</form>")[0]
    )
    folded = form.split("Change another part of the item")[1]
    assert 'name="amend-dose_text"' not in folded
    assert 'name="amend-status"' in folded
    assert "Edit the FHIR resource" in client.get(request_url(correction)).content.decode()


def test_a_kind_with_no_fields_offers_the_fhir_resource_open_and_a_forged_post_is_refused(world, client):
    correction = flagged(world, "pr1", "code")
    client.force_login(world["dr_gp"])
    page = client.get(request_url(correction)).content.decode()
    assert 'id="amend-fields"' not in page
    assert 'id="amend-no-fields"' in page
    assert re.search(r'<details class="nhsuk-details" id="edit-fhir" open>', page)
    data = {"amend-revision": str(correction.revision), "amend-based_on_version": "1", "confirm": "1"}
    response = client.post(act_url(correction), data)
    assert response.status_code == 200
    assert "You have not changed anything" in response.content.decode()


# --- Refusals said at the field -------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"dose_quantity_value": "five"}, "dose_quantity_value", "Enter the amount as a number"),
        ({"dose_quantity_value": "9" * 40}, "dose_quantity_value", "characters or fewer"),
        ({"dose_quantity_value": "99999999999"}, "dose_quantity_value", "too large"),
        ({"dose_quantity_value": "NaN"}, "dose_quantity_value", "as a number"),
        ({"dose_quantity_unit": ""}, "dose_quantity_unit", "Enter the unit of the amount"),
        ({"frequency_times": "0"}, "frequency_times", "whole number from 1 to 24"),
        ({"frequency_period": "month"}, "frequency_period", "Choose a day or a week"),
        ({"dose_text": "5mg\x00daily"}, "dose_text", "a character that cannot be stored"),
        ({"status": "lost"}, "status", "Choose the status from the list"),
        ({}, None, "You have not changed anything"),
    ],
)
def test_bad_input_is_named_at_its_field_and_nothing_is_stored(world, client, changes, field, words):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    response = submit(client, correction, confirm=True, **changes)
    page = response.content.decode()
    assert response.status_code == 200
    assert words in page
    assert "There is a problem" in page
    if field:
        assert f'href="#id_amend-{field}"' in page
    assert EntryVersion.objects.filter(entry=entry_of("m1")).count() == 1


@pytest.mark.parametrize(
    ("day", "month", "year", "words"),
    [
        ("31", "2", "2024", "must be a real date"),
        ("1", "1", "3000", "must be today or in the past"),
        ("x", "1", "2020", "using numbers only"),
        ("1", "1", "20", "The year must have 4 numbers"),
        ("1", "", "2020", "must include a month"),
        ("", "", "", "Enter when it was given"),
        ("99999999999", "1", "2020", "2 characters or fewer"),
    ],
)
def test_impossible_dates_are_refused_in_words(world, client, day, month, year, words):
    correction = flagged(world, "i1", "occurrenceDateTime")
    client.force_login(world["dr_gp"])
    response = submit(
        client, correction, confirm=True, occurrence_day=day, occurrence_month=month, occurrence_year=year
    )
    assert response.status_code == 200
    assert words in response.content.decode()
    assert EntryVersion.objects.filter(entry=entry_of("i1")).count() == 1


def test_a_confirmation_is_checked_again_and_a_stale_version_is_a_conflict(world, client, gp):
    correction = flagged(world, "i1", "occurrenceDateTime")
    client.force_login(world["dr_gp"])
    data = {f"amend-{k}": v for k, v in fields_shown(client, correction).items()}
    data.update({"amend-occurrence_day": "8", "amend-outcome": "accept", "amend-note": "", "confirm": "1"})
    # The surgery sends a new version while the clinician looks at the preview.
    ingest_documents([("again.json", {**VACCINE, "lotNumber": "CD456"})], organisation=gp)
    response = client.post(act_url(correction), data)
    assert response.status_code == 409
    page = text_of(response)
    assert "The item changed while you were editing it" in page
    assert "When it was given changes from 1 October 2024 to 8 October 2024" in page  # kept, in words
    assert EntryVersion.objects.filter(entry=entry_of("i1")).count() == 2
    assert 'name="amend-based_on_version" value="2"' in response.content.decode()


def test_change_the_correction_goes_back_to_the_fields_as_typed_and_stores_nothing(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    data = {f"amend-{k}": v for k, v in fields_shown(client, correction).items()}
    data.update({"amend-dose_text": "5mg once daily", "amend-outcome": "accept", "edit": "1"})
    page = client.post(act_url(correction), data).content.decode()
    assert 'name="amend-dose_text" value="5mg once daily"' in page
    assert EntryVersion.objects.filter(entry=entry_of("m1")).count() == 1


def test_a_decided_request_gets_no_preview_and_its_confirmation_is_a_conflict(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    submit(client, correction, confirm=True, dose_text="5mg once daily")
    response = client.post(
        act_url(correction),
        {
            "amend-revision": str(CorrectionRequest.objects.get(pk=correction.pk).revision),
            "amend-based_on_version": "2",
            "amend-dose_text": "6mg once daily",
            "amend-status": "active",
        },
    )
    assert response.status_code == 409
    assert "Check the correction</h1>" not in response.content.decode()
    assert "The dose changes from 5mg once daily to 6mg once daily" in text_of(response)  # kept in words
    assert EntryVersion.objects.filter(entry=entry_of("m1")).count() == 2


# --- In part, the patient, other organisations, the record of it -----------------------------


def test_accept_in_part_uses_the_same_fields_and_needs_a_note(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    refused = submit(client, correction, confirm=False, outcome="in_part", dose_text="5mg once daily")
    assert "Say which part you corrected" in refused.content.decode()

    note = "The dose was wrong; the medicine itself is right."
    preview = submit(
        client, correction, confirm=False, outcome="in_part", note=note, dose_text="5mg once daily"
    )
    assert "You are correcting part of what the patient asked for" in text_of(preview)
    response = submit(
        client, correction, confirm=True, outcome="in_part", note=note, dose_text="5mg once daily"
    )
    assert response.status_code == 302
    correction = CorrectionRequest.objects.get(pk=correction.pk)
    assert correction.business_status == BusinessStatus.PARTIAL
    assert correction.decision_text == note
    assert stored(entry_of("m1"), 2)["dosage"][0]["text"] == "5mg once daily"


def test_the_patient_then_sees_the_new_dose_on_the_item_page(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    submit(client, correction, confirm=True, dose_text="5mg once daily")
    client.force_login(world["ada"])
    page = text_of(client.get(reverse("record:item", kwargs={"entry_id": entry_of("m1").pk})))
    assert "5mg once daily" in page
    assert "50mg once daily" not in page.split("History")[0]


def test_another_organisations_clinician_cannot_amend(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    data = {f"amend-{k}": v for k, v in fields_shown(client, correction).items()}
    data.update({"amend-dose_text": "5mg", "amend-outcome": "accept", "confirm": "1"})
    client.force_login(world["dr_hosp"])
    assert client.post(act_url(correction), data).status_code == 404
    assert EntryVersion.objects.filter(entry=entry_of("m1")).count() == 1


def test_the_amendment_is_audited_and_on_the_timeline_as_the_json_path_records_it(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    submit(client, correction, confirm=True, dose_text="5mg once daily")
    assert AuditEvent.objects.filter(action="correction.accept").count() == 1
    assert TimelineEvent.objects.filter(request=correction, kind="accept").count() == 1
    version = EntryVersion.objects.get(entry=entry_of("m1"), number=2)
    assert version.source == EntryVersion.Source.CORRECTION
    assert version.produced_by == f"correction:{correction.pk.hex}"
    assert RecordEntry.objects.filter(
        resource_type="Provenance", fhir_id=f"correction-{correction.pk.hex}"
    ).exists()


def test_a_huge_or_nul_post_to_the_amend_step_is_never_a_server_error(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    for junk in ({"amend-revision": "x"}, {"amend-based_on_version": "9" * 50}, {"amend-note": "\x00"}):
        data = {f"amend-{k}": v for k, v in fields_shown(client, correction).items()}
        data.update({"amend-dose_text": "5mg", **junk, "confirm": "1"})
        assert client.post(act_url(correction), data).status_code in (200, 409)
    assert (
        Decimal(str(stored(entry_of("m1"), 1)["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"])) == 50
    )
