"""What an outside probe of the amendment fields found, each held: a dose whose words
contradict its new amount, data in a hint shown as HTML, digits of other scripts and
exponents in numbers, unchecked personal details, a double message on a conflict, and a
code system shown as its URL."""

import html

import pytest
from django.urls import reverse

from accuracy.models import CorrectionRequest
from phr.ingest import ingest_documents
from phr.models import EntryVersion
from tests.workspace import test_amend_fields
from tests.workspace.test_amend_fields import (
    SUBJECT,
    entry_of,
    fields_shown,
    flagged,
    request_url,
    stored,
    submit,
    text_of,
)

pytestmark = pytest.mark.django_db

world = test_amend_fields.world  # the same network, item and people as the main tests

STRUCTURED_ONLY = {
    "dose_quantity_value": "1000",
    "dose_quantity_unit": "mg",
    "frequency_times": "3",
    "frequency_period": "d",
}


def words_of(response) -> str:
    return html.unescape(text_of(response))


def refused_at(response, field: str, words: str, *, shown_at: str = "") -> None:
    """The summary links to ``field`` and the message is said at it (a date's at its day)."""
    page = response.content.decode()
    assert response.status_code == 200
    assert f'href="#id_amend-{field}"' in page
    assert words in html.unescape(page.split(f'id="id_amend-{shown_at or field}-error"')[1][:400])


def ingest(world, *resources) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    ingest_documents([("probe.json", bundle)], organisation=world["gp"])


# --- F1: the dose in words agrees with the dose in numbers ----------------------------------


@pytest.mark.parametrize("confirm", [False, True])
def test_a_new_amount_and_frequency_with_the_old_words_are_refused_at_the_words(world, client, confirm):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    response = submit(client, correction, confirm=confirm, **STRUCTURED_ONLY)
    refused_at(
        response,
        "dose_text",
        'The instructions still say "50mg once daily": change them to match the new amount and how often',
    )
    assert EntryVersion.objects.filter(entry=entry_of("m1")).count() == 1


def test_a_new_frequency_alone_with_the_old_words_is_refused_too(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    refused_at(
        submit(client, correction, confirm=True, frequency_times="2"),
        "dose_text",
        "The instructions still say",
    )


def test_a_dose_with_no_words_gets_them_from_the_new_amount_and_the_patient_reads_them(world, client):
    ingest(
        world,
        {
            "resourceType": "MedicationRequest",
            "id": "mr9",
            "status": "active",
            "intent": "order",
            "subject": SUBJECT,
            "medicationCodeableConcept": {"text": "Metformin 500mg tablets"},
            "dosageInstruction": [
                {
                    "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg"}}],
                    "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                }
            ],
        },
    )
    correction = flagged(world, "mr9", "dosageInstruction[0].text")
    client.force_login(world["dr_gp"])
    preview = words_of(submit(client, correction, confirm=False, **STRUCTURED_ONLY))
    assert "The dose is set to 1000 mg 3 times a day" in preview
    assert submit(client, correction, confirm=True, **STRUCTURED_ONLY).status_code == 302
    dosage = stored(entry_of("mr9"), 2)["dosageInstruction"][0]
    assert dosage["text"] == "1000 mg 3 times a day"
    assert dosage["doseAndRate"][0]["doseQuantity"] == {"value": 1000, "unit": "mg"}

    client.force_login(world["ada"])
    page = words_of(client.get(reverse("record:item", kwargs={"entry_id": entry_of("mr9").pk})))
    assert "1000 mg 3 times a day" in page.split("History")[0]
    assert "500 mg" not in page.split("History")[0]


def test_new_words_with_the_new_amount_are_what_the_patient_reads(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    changes = {**STRUCTURED_ONLY, "dose_text": "1000mg three times a day"}
    assert submit(client, correction, confirm=True, **changes).status_code == 302
    client.force_login(world["ada"])
    page = words_of(client.get(reverse("record:item", kwargs={"entry_id": entry_of("m1").pk})))
    assert "1000mg three times a day" in page.split("History")[0]


# --- F2: item data in a hint is text, never HTML ---------------------------------------------


def test_a_unit_holding_markup_is_shown_escaped_in_the_hint(world, client):
    ingest(
        world,
        {
            "resourceType": "Observation",
            "id": "o9",
            "status": "final",
            "subject": SUBJECT,
            "code": {"text": "Weight"},
            "valueQuantity": {"value": 70, "unit": "kg<img src=x onerror=alert(1)>"},
        },
    )
    correction = flagged(world, "o9", "valueQuantity")
    client.force_login(world["dr_gp"])
    page = client.get(request_url(correction)).content.decode()
    hint = page.split('id="id_amend-value-hint"')[1].split("</div>")[0]
    assert "<img" not in hint
    assert "In kg&lt;img src=x onerror=alert(1)&gt;, the unit it was recorded in." in hint
    assert "<img src=x" not in page


# --- F3 and F4: numbers are ASCII digits, without exponents or endless places ----------------


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"frequency_times": "\u00b2"},
            "frequency_times",
            "Enter how many times as a whole number from 1 to 24",
        ),
        (
            {"frequency_times": "\u0663"},
            "frequency_times",
            "Enter how many times as a whole number from 1 to 24",
        ),
        ({"dose_quantity_value": "\u0665"}, "dose_quantity_value", "Enter the amount as a number"),
        ({"dose_quantity_value": "1e3"}, "dose_quantity_value", "Enter the amount as a number"),
        ({"dose_quantity_value": "5.1234567"}, "dose_quantity_value", "at most 6 decimal places"),
        ({"dose_quantity_value": "-5"}, "dose_quantity_value", "cannot be less than 0"),
    ],
)
def test_numbers_in_other_scripts_or_notations_are_refused_at_their_field(
    world, client, changes, field, words
):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    refused_at(submit(client, correction, confirm=True, dose_text="Changed", **changes), field, words)
    assert EntryVersion.objects.filter(entry=entry_of("m1")).count() == 1


@pytest.mark.parametrize("value", ["1e-9999999", "1E+5", "Infinity", "5.1234567", "\u0661\u0663\u0665"])
def test_a_result_in_exponent_notation_or_too_fine_is_refused_quickly(world, client, value):
    correction = flagged(world, "o2", "valueQuantity")
    client.force_login(world["dr_gp"])
    response = submit(client, correction, confirm=True, value=value)
    assert response.status_code == 200
    assert len(response.content) < 200_000  # nothing written out in full
    assert 'href="#id_amend-value"' in response.content.decode()
    assert EntryVersion.objects.filter(entry=entry_of("o2")).count() == 1


def test_a_result_with_six_places_is_kept(world, client):
    correction = flagged(world, "o2", "valueQuantity")
    client.force_login(world["dr_gp"])
    assert submit(client, correction, confirm=True, value="1,135.123456").status_code == 302


def test_a_year_in_arabic_indic_digits_is_refused_not_read_as_2024(world, client):
    correction = flagged(world, "i1", "occurrenceDateTime")
    client.force_login(world["dr_gp"])
    response = submit(
        client,
        correction,
        confirm=True,
        occurrence_day="2",
        occurrence_month="1",
        occurrence_year="\u0662\u0660\u0662\u0664",
    )
    refused_at(response, "occurrence_year", "using numbers only", shown_at="occurrence_day")
    assert EntryVersion.objects.filter(entry=entry_of("i1")).count() == 1


# --- F9: personal details and free text ------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"phone": "call me after 6pm please"}, "phone", "Enter a phone number"),
        ({"phone": "0" * 21}, "phone", "Enter a phone number of up to 20 characters"),
        ({"phone": "\u0660\u0661\u0661\u0663 496 0000"}, "phone", "Enter a phone number"),
        ({"postcode": "NOT A POSTCODE"}, "postcode", "Enter a real postcode, like LS1 4AP"),
        ({"postcode": "\u212a1 4AP"}, "postcode", "Enter a real postcode"),  # a Kelvin sign
        ({"family": "Okafor\u202eevil"}, "family", "Remove the hidden text-direction characters"),
        ({"given": "Ada\u2066"}, "given", "Remove the hidden text-direction characters"),
        ({"city": "Leeds\u202b"}, "city", "Remove the hidden text-direction characters"),
        ({"address_lines": "1 High St\n\u2069Flat 2"}, "address_lines", "Remove the hidden text-direction"),
    ],
)
def test_personal_details_that_cannot_be_real_are_refused_at_their_field(
    world, client, changes, field, words
):
    correction = flagged(world, "p1", "name", resource_type="Patient")
    client.force_login(world["dr_gp"])
    refused_at(submit(client, correction, confirm=True, **changes), field, words)
    assert EntryVersion.objects.filter(entry=entry_of("p1", "Patient")).count() == 1


def test_a_phone_with_brackets_and_dashes_and_a_postcode_in_lower_case_are_kept_tidily(world, client):
    correction = flagged(world, "p1", "name", resource_type="Patient")
    client.force_login(world["dr_gp"])
    response = submit(client, correction, confirm=True, phone="+44 (0)113-496-0000", postcode="ls14ap")
    assert response.status_code == 302
    amended = stored(entry_of("p1", "Patient"), 2)
    assert amended["address"][0]["postalCode"] == "LS1 4AP"
    assert {"system": "phone", "value": "+44 (0)113-496-0000"} in amended["telecom"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"dose_text": "5mg \u202eylaid"}, "dose_text"),
        (
            {
                "dose_text": "500 mg once a day",
                "dose_quantity_value": "500",
                "dose_quantity_unit": "mg\u2067",
            },
            "dose_quantity_unit",
        ),
    ],
)
def test_free_text_with_direction_controls_is_refused_in_a_medicine(world, client, changes, field):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    refused_at(submit(client, correction, confirm=True, **changes), field, "Remove the hidden text-direction")


def test_a_note_with_direction_controls_is_refused_at_the_note(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    response = submit(client, correction, confirm=True, dose_text="5mg once daily", note="Fixed\u202e")
    refused_at(response, "note", "Remove the hidden text-direction characters")
    assert EntryVersion.objects.filter(entry=entry_of("m1")).count() == 1


def test_a_condition_cannot_end_before_it_started(world, client):
    correction = flagged(world, "c1", "clinicalStatus", resource_type="Condition")
    client.force_login(world["dr_gp"])
    dates = {"onset_year": "2019", "abatement_day": "3", "abatement_month": "2", "abatement_year": "2018"}
    refused_at(
        submit(client, correction, confirm=False, clinical_status="resolved", **dates),
        "abatement_day",
        "When it ended must be the same as or after when it started",
    )
    same_year = {**dates, "abatement_year": "", "abatement_day": "", "abatement_month": ""}
    same_year["abatement_year"] = "2019"
    assert (
        submit(client, correction, confirm=True, clinical_status="resolved", **same_year).status_code == 302
    )


# --- F10: a conflict is said alone -----------------------------------------------------------


@pytest.mark.parametrize("version", ["99", "9" * 15])
def test_a_stale_or_huge_version_says_only_that_the_item_changed(world, client, version):
    correction = flagged(world, "i1", "occurrenceDateTime")
    client.force_login(world["dr_gp"])
    response = submit(client, correction, confirm=True, occurrence_day="8", based_on_version=version)
    assert response.status_code == 409
    page = text_of(response)
    assert "The item changed while you were editing it" in page
    assert "You have not changed anything" not in page
    assert CorrectionRequest.objects.get(pk=correction.pk).amended_version is None


# --- F11: a code system is named in words ----------------------------------------------------


def test_the_code_hint_names_the_code_system_in_words_and_never_its_address(world, client):
    ingest(
        world,
        {
            "resourceType": "Condition",
            "id": "c8",
            "subject": SUBJECT,
            "code": {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J45", "display": "Asthma"}]
            },
        },
        {
            "resourceType": "Condition",
            "id": "c9",
            "subject": SUBJECT,
            "code": {
                "coding": [{"system": "http://example.org/local-codes", "code": "X1", "display": "Local"}]
            },
        },
    )
    client.force_login(world["dr_gp"])
    snomed = client.get(request_url(flagged(world, "c1", "code", resource_type="Condition"))).content.decode()
    hint = snomed.split('id="id_amend-concept_code-hint"')[1].split("</div>")[0]
    assert "A code from the item's own code system (SNOMED CT)." in hint
    assert "snomed.info" not in snomed.split('id="amend-fields"')[1].split("</form>")[0]
    icd = flagged(world, "c8", "code", resource_type="Condition")
    assert "own code system (ICD-10)." in client.get(request_url(icd)).content.decode()
    local = flagged(world, "c9", "code", resource_type="Condition")
    form = client.get(request_url(local)).content.decode().split('id="amend-fields"')[1].split("</form>")[0]
    assert "own code system. Leave it" in form
    assert "example.org" not in form
    assert fields_shown(client, local)["concept_code"] == "X1"


# --- From the probe of issue 13's pages: a dose of nothing ----------------------------------


def test_an_amount_of_zero_is_refused(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    response = submit(
        client,
        correction,
        confirm=True,
        dose_text="None for now",
        dose_quantity_value="0",
        dose_quantity_unit="mg",
    )
    assert response.status_code == 200
    assert "The amount must be more than 0" in words_of(response)
    assert EntryVersion.objects.filter(entry=entry_of("m1")).count() == 1


def test_emptying_the_dose_with_no_amount_is_refused_at_the_words(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    refused_at(
        submit(client, correction, confirm=True, dose_text="", dose_quantity_value="", dose_quantity_unit=""),
        "dose_text",
        "Enter the dose in words or as an amount: the medicine needs one",
    )
    assert EntryVersion.objects.filter(entry=entry_of("m1")).count() == 1


def test_the_words_may_go_when_an_amount_stays(world, client):
    correction = flagged(world, "m1", "dosage[0].text")
    client.force_login(world["dr_gp"])
    submit(client, correction, confirm=True, dose_text="", **STRUCTURED_ONLY)
    assert EntryVersion.objects.filter(entry=entry_of("m1")).count() == 2
