"""Issue 11's corrections bugs: a phone number or address asked for when the patient
chooses a call or a letter, a reference they can quote, and "what it says now" after a
correction showing the current version, not the copy kept when the patient asked."""

import json
import re

import pytest
from django.urls import reverse

from accuracy import services
from accuracy.models import CorrectionRequest, new_reference
from tests.corrections import test_patient_corrections as base
from tests.corrections.test_patient_corrections import (
    MEDICINE,
    body,
    doctor,
    flag,
    form_url,
    page_of,
    report,
    reviewed,
)

pytestmark = pytest.mark.django_db
net, as_ada = base.net, base.as_ada  # the same people and record as the rest of the corrections tests


def test_the_form_reveals_a_phone_number_under_phone_and_an_address_under_letter(as_ada, net):
    page = body(as_ada.get(form_url(net["medicine"])))
    assert 'data-reveals="contact-phone"' in page
    assert 'data-reveals="contact-letter"' in page
    phone = page[page.index('id="contact-phone"') : page.index('id="contact-letter"')]
    letter = page[page.index('id="contact-letter"') :]
    assert 'name="contact_phone"' in phone
    assert 'name="contact_address"' in letter
    assert 'name="contact_postcode"' in letter


def test_choosing_phone_without_a_number_is_named_at_the_field(as_ada, net):
    response = report(as_ada, net["medicine"], contact_preference="phone")
    assert response.status_code == 200
    assert "Enter the phone number to call you on" in body(response)
    assert not CorrectionRequest.objects.exists()


@pytest.mark.parametrize("number", ["call me", "0770.090.0982", "123", "0" * 21])
def test_a_phone_number_with_other_characters_or_too_short_is_refused(as_ada, net, number):
    response = report(as_ada, net["medicine"], contact_preference="phone", contact_phone=number)
    assert "using only numbers, spaces, brackets, dashes and +" in body(response)
    assert not CorrectionRequest.objects.exists()


def test_choosing_a_letter_needs_an_address_and_a_real_postcode(as_ada, net):
    page = body(report(as_ada, net["medicine"], contact_preference="letter", contact_postcode="NOT A CODE"))
    assert "Enter the address to write to" in page
    assert "Enter a real postcode, like LS1 4AP" in page
    assert not CorrectionRequest.objects.exists()


def test_the_phone_number_is_kept_on_the_request_and_shown_back(as_ada, net):
    response = report(as_ada, net["medicine"], contact_preference="phone", contact_phone="+44 7700 900 982")
    correction = CorrectionRequest.objects.get()
    assert response.status_code == 302
    assert (correction.contact_phone, correction.contact_address) == ("+44 7700 900 982", "")
    assert correction.contact_details == "+44 7700 900 982"
    assert "+44 7700 900 982" in body(as_ada.get(page_of(correction)))


def test_the_address_is_kept_for_a_letter_and_a_phone_number_given_too_is_not(as_ada, net):
    report(
        as_ada,
        net["medicine"],
        contact_preference="letter",
        contact_address="1 High Street\nLeeds",
        contact_postcode="ls1 4ap",
        contact_phone="07700 900 982",
    )
    correction = CorrectionRequest.objects.get()
    assert correction.contact_phone == ""
    assert correction.contact_details == "1 High Street\nLeeds\nLS1 4AP"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("contact_postcode", "\u212aW1A 1AA", "Enter a real postcode"),  # a Kelvin sign for the K
        ("contact_postcode", "\u017fW1A 1AA", "Enter a real postcode"),  # a long s for the S
        ("contact_address", "1 High Street\u202e sdeeL", "Remove the hidden text-direction characters"),
    ],
)
def test_lookalike_letters_and_direction_controls_are_refused_in_a_letters_details(
    as_ada, net, field, value, words
):
    details = {"contact_address": "1 High Street", "contact_postcode": "LS1 4AP", field: value}
    page = body(report(as_ada, net["medicine"], contact_preference="letter", **details))
    assert words in page
    assert not CorrectionRequest.objects.exists()


def test_a_too_long_phone_number_is_told_once_in_words(as_ada, net):
    page = body(report(as_ada, net["medicine"], contact_preference="phone", contact_phone="0" * 31))
    assert "Enter a phone number of 30 characters or fewer" in page
    assert "Ensure this value" not in page
    assert "Enter the phone number to call you on" not in page


def test_a_forged_way_of_contact_is_refused_in_words(as_ada, net):
    page = body(report(as_ada, net["medicine"], contact_preference="pigeon"))
    assert "Choose how we should contact you from the list" in page
    assert "Select a valid choice" not in page


def test_arabic_indic_digits_are_not_a_phone_number(as_ada, net):
    page = body(report(as_ada, net["medicine"], contact_preference="phone", contact_phone="\u0660" * 11))
    assert "using only numbers, spaces, brackets, dashes and +" in page
    assert not CorrectionRequest.objects.exists()


def test_the_json_api_keeps_the_same_contact_rules_and_details(as_ada, net):
    url = "/api/v1/corrections/"
    asked = {
        "entry": str(net["medicine"].pk),
        "proposed": "Once a day",
        "reason": "My GP changed it in March",
    }
    refused = as_ada.post(url, {**asked, "contact_preference": "phone"}, content_type="application/json")
    assert refused.status_code == 400
    assert "Enter the phone number to call you on" in json.dumps(refused.json())
    assert not CorrectionRequest.objects.exists()
    made = as_ada.post(
        url,
        {
            **asked,
            "contact_preference": "letter",
            "contact_address": "1 High St",
            "contact_postcode": "ls14ap",
        },
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    assert (made.json()["contact_address"], made.json()["contact_postcode"]) == ("1 High St", "LS1 4AP")
    assert CorrectionRequest.objects.get().contact_details == "1 High St\nLS1 4AP"


def test_a_portal_message_keeps_no_contact_details(as_ada, net):
    report(as_ada, net["medicine"], contact_phone="07700 900 982", contact_address="1 High Street")
    correction = CorrectionRequest.objects.get()
    assert (correction.contact_phone, correction.contact_address, correction.contact_details) == ("", "", "")


def test_every_request_gets_its_own_short_reference_shown_to_the_patient(as_ada, net):
    response = report(as_ada, net["medicine"])
    correction = CorrectionRequest.objects.get()
    assert re.fullmatch(r"PRC-[2-9A-Z]{4}-[2-9A-Z]{2}", correction.reference)
    assert not set(correction.reference[4:]) & set("01ILOS5")
    assert correction.reference in str(list(response.wsgi_request._messages))
    assert correction.reference in body(as_ada.get(page_of(correction)))
    assert correction.reference in body(as_ada.get(reverse("record:corrections")))


def test_references_are_not_reused():
    made = {new_reference() for _ in range(200)}
    assert len(made) == 200


def test_after_a_correction_what_it_says_now_is_the_current_version(as_ada, net):
    correction = reviewed(net, flag(net))
    services.accept(
        actor=doctor(net),
        request_id=correction.pk,
        revision=correction.revision,
        resource_json=json.dumps({**MEDICINE, "dosage": [{"text": "5mg once daily"}]}),
        based_on_version=1,
    )
    page = body(as_ada.get(page_of(correction)))
    now = page[page.index('id="says-now"') :]
    assert now[: now.index("</dd>")].endswith("5mg once daily")
    assert "What it said when you asked" in page
    assert "50mg once daily" in page


def test_before_any_change_there_is_no_separate_what_it_says_now(as_ada, net):
    assert 'id="says-now"' not in body(as_ada.get(page_of(flag(net))))


def test_a_request_about_personal_details_is_not_named_by_the_name_it_holds():
    from accuracy import notifications
    from phr.models import Organisation, Patient, RecordEntry

    request = CorrectionRequest(
        entry=RecordEntry(resource_type="Patient", display="Fatima Patel"),
        item_display="Fatima Patel",
        owner=Organisation(name="Riverside Surgery"),
        patient=Patient(given_names="Fatima", family_name="Patel"),
    )
    assert (
        notifications.asked(request)
        == "Fatima Patel asked Riverside Surgery to correct their personal details."
    )
    assert notifications.to_patient(request, "We have changed it.").startswith(
        "From Riverside Surgery, about your request to correct your personal details:"
    )
    request.entry = RecordEntry(resource_type="Condition")
    request.item_display = "High blood pressure"
    assert notifications.asked(request).endswith('to correct "High blood pressure".')
