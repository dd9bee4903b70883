"""The patient's side of a correction: reporting an item, following the request, replying,
withdrawing, reading the decision, adding a disagreement, and the item shown as under
dispute on every page and in the download while the dispute stands."""

import json
import re
import uuid
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.flag import Flag

from accuracy import services
from accuracy.models import BusinessStatus, CorrectionRequest, Message, Statement
from audit.models import AuditEvent
from consent.policy import actor_for, open_record
from phr.models import Patient, RecordEntry
from tests.feeds import patient_resource, send
from tests.personas import ClinicianFactory, PatientUserFactory

ADA_NHS, BEN_NHS = "9434765919", "9990000018"
DISPUTED = "https://patient-record-portal.example/CodeSystem/record-flags"


MEDICINE = {
    "resourceType": "MedicationStatement",
    "id": "m1",
    "status": "active",
    "subject": {"reference": "Patient/p1"},
    "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
    "dosage": [{"text": "50mg once daily"}],
}
RESULT = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "subject": {"reference": "Patient/p1"},
    "code": {"text": "Serum potassium"},
    "valueQuantity": {"value": 4.1, "unit": "mmol/L"},
}


@pytest.fixture
def net(gp, hospital, dr_gp):
    """Ada's record: the GP holds a medicine, the hospital a potassium result written with
    a trailing zero; Ben's record holds one hospital item. A GP clinician decides."""
    send(gp, patient_resource("p1", ADA_NHS), MEDICINE)
    # 4.10 keeps its precision through storage: the download must too.
    send(
        hospital,
        patient_resource("p1", ADA_NHS),
        {**RESULT, "valueQuantity": {"value": Decimal("4.10"), "unit": "mmol/L"}},
    )
    send(
        hospital,
        patient_resource("pb", BEN_NHS),
        {**MEDICINE, "id": "b1", "subject": {"reference": "Patient/pb"}, "dosage": [{"text": "Ben's dose"}]},
    )
    return {
        "gp": gp,
        "hospital": hospital,
        "ada": PatientUserFactory(email="ada@example.com", patient=Patient.objects.get(nhs_number=ADA_NHS)),
        "ben": PatientUserFactory(email="ben@example.com", patient=Patient.objects.get(nhs_number=BEN_NHS)),
        "doctor": dr_gp,
        "trust_doctor": ClinicianFactory(email="dr.trust@example.com", organisation=hospital),
        "medicine": RecordEntry.objects.get(fhir_id="m1"),
        "result": RecordEntry.objects.get(fhir_id="o1"),
        "bens": RecordEntry.objects.get(fhir_id="b1"),
    }


@pytest.fixture
def as_ada(client, net):
    client.force_login(net["ada"])
    return client


def form_url(entry):
    return reverse("record:correct", kwargs={"entry_id": entry.pk})


def page_of(correction):
    return reverse("record:correction", kwargs={"request_id": correction.pk})


def report(client, item, **changes):
    data = {
        "element": "dosage[0].text",
        "proposed": "5mg once daily",
        "reason": "My GP changed it to 5mg in March",
        "contact_preference": "portal",
        **changes,
    }
    return client.post(form_url(item), data)


def flag(net, entry=None):
    entry = entry or net["medicine"]
    return services.submit_correction(
        actor=actor_for(net["ada"]),
        entry_id=entry.pk,
        element="dosage[0].text" if entry.resource_type == "MedicationStatement" else "",
        proposed="5mg once daily",
        reason="My GP changed it to 5mg in March",
        contact_preference="portal",
    )


def doctor(net):
    return actor_for(net["doctor"])


def reviewed(net, correction):
    return services.start_review(actor=doctor(net), request_id=correction.pk, revision=correction.revision)


def denied(net, correction):
    correction = reviewed(net, correction)
    return services.deny(
        actor=doctor(net),
        request_id=correction.pk,
        revision=correction.revision,
        code="accurate",
        text="The clinic letter of 3 March says 50mg.",
    )


def disagreed(net, correction):
    correction = denied(net, correction)
    return services.log_disagreement(
        actor=actor_for(net["ada"]),
        request_id=correction.pk,
        revision=correction.revision,
        text="I take 5mg: the clinic changed it.",
    )


def body(response) -> str:
    return response.content.decode()


def without_tokens(response) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", body(response))


# --- Reporting an item ----------------------------------------------------------------------


def test_every_item_page_links_to_the_report_form(as_ada, net):
    page = body(as_ada.get(reverse("record:item", kwargs={"entry_id": net["medicine"].pk})))
    assert "Report something wrong with this item" in page
    assert f'href="{form_url(net["medicine"])}"' in page


def test_the_form_offers_each_part_of_the_item_with_what_it_says_now(as_ada, net):
    response = as_ada.get(form_url(net["medicine"]))
    assert response.status_code == 200
    page = body(response)
    for label in ("The whole item", "The medicine", "The dose"):
        assert label in page
    assert "It says now: 50mg once daily" in page
    assert "It says now: Amlodipine 5mg tablets" in page
    assert "Riverside Surgery" in page  # where the request goes, named before it is sent
    assert AuditEvent.objects.filter(actor=net["ada"], action="record.read", outcome="permit").exists()


def test_a_report_goes_to_the_stored_owner_and_opens_the_request_with_a_banner(as_ada, net):
    with time_machine.travel(date(2026, 1, 31)):
        response = report(as_ada, net["medicine"])
        correction = CorrectionRequest.objects.get()
        assert response.status_code == 302
        assert response["Location"] == page_of(correction)
        page = body(as_ada.get(response["Location"]))
    assert correction.owner == net["gp"]
    assert correction.entry == net["medicine"]
    assert (correction.element, correction.element_label) == ("dosage[0].text", "The dose")
    assert correction.current_text == "50mg once daily"
    assert "nhsuk-notification-banner--success" in page
    assert (
        f"Your request has been sent to Riverside Surgery. Its reference is {correction.reference}. "
        "They must decide by 28 February 2026." in page
    )
    assert AuditEvent.objects.filter(action="correction.submit", actor=net["ada"]).count() == 1


def test_the_whole_item_can_be_reported(as_ada, net):
    report(as_ada, net["medicine"], element="whole-item", proposed="This is not my medicine")
    correction = CorrectionRequest.objects.get()
    assert (correction.element, correction.element_label) == ("", "The whole item")


def test_forged_fields_naming_another_item_or_organisation_are_ignored(as_ada, net):
    report(
        as_ada,
        net["medicine"],
        entry_id=str(net["bens"].pk),
        entry=str(net["result"].pk),
        owner=str(net["hospital"].pk),
        owner_id=str(net["hospital"].pk),
        patient=str(net["bens"].patient_id),
    )
    correction = CorrectionRequest.objects.get()
    assert correction.entry == net["medicine"]
    assert correction.owner == net["gp"]
    assert correction.patient_id == net["medicine"].patient_id


def test_another_patients_item_and_a_missing_one_get_the_record_pages_not_found(as_ada, net):
    nobody = RecordEntry(pk=uuid.uuid4())
    item_missing = as_ada.get(reverse("record:item", kwargs={"entry_id": nobody.pk}))
    theirs, missing = as_ada.get(form_url(net["bens"])), as_ada.get(form_url(nobody))
    posted = [report(as_ada, net["bens"]), report(as_ada, nobody)]
    for response in (theirs, missing, *posted):
        assert response.status_code == 404
        assert "Item not found" in body(response)
    assert without_tokens(theirs) == without_tokens(missing) == without_tokens(item_missing)
    assert without_tokens(posted[0]) == without_tokens(posted[1])
    assert "Ben" not in without_tokens(theirs)
    assert not CorrectionRequest.objects.exists()


def test_each_missing_answer_is_named_in_the_error_summary_and_at_its_field(as_ada, net):
    response = as_ada.post(form_url(net["medicine"]), {})
    assert response.status_code == 200
    page = body(response)
    assert "<title>Error: " in page
    assert "There is a problem" in page
    for anchor, message in (
        ("id_element_0", "Choose which part of the item is wrong"),
        ("id_proposed", "Say what it should say"),
        ("id_reason", "Say why it is wrong"),
        ("id_contact_preference_0", "Choose how we should contact you"),
    ):
        assert f'<a href="#{anchor}">{message}</a>' in page
        assert page.count(message) == 2  # the summary and the field
    assert not CorrectionRequest.objects.exists()


def test_a_refusal_from_the_workflow_is_shown_against_its_field_and_the_answers_are_kept(as_ada, net):
    response = report(as_ada, net["medicine"], reason="no", proposed="5mg every morning")
    page = body(response)
    assert '<a href="#id_reason">Say why it is wrong</a>' in page
    assert "nhsuk-form-group--error" in page
    assert "5mg every morning" in page
    assert 'value="dosage[0].text" aria-describedby="id_element_2-hint" checked' in page
    assert not CorrectionRequest.objects.exists()


def test_a_second_report_on_the_same_item_shows_the_open_request_instead(as_ada, net):
    with time_machine.travel(date(2026, 3, 2)):
        first = flag(net)
    for response in (as_ada.get(form_url(net["medicine"])), report(as_ada, net["medicine"], element="")):
        page = body(response)
        assert "You already asked for this item to be corrected on 2 March 2026" in page
        assert f'href="{page_of(first)}"' in page
        assert 'id="correction-form"' not in page
    assert CorrectionRequest.objects.count() == 1
    item = body(as_ada.get(reverse("record:item", kwargs={"entry_id": net["medicine"].pk})))
    assert "Report something wrong with this item" not in item
    assert f'href="{page_of(first)}"' in item


# --- Following requests ------------------------------------------------------------------------


def test_the_list_shows_every_request_newest_first_in_plain_words_with_its_deadline(as_ada, net):
    with time_machine.travel(date(2026, 1, 31)):
        older = flag(net)
    with time_machine.travel(date(2026, 2, 10)):
        newer = flag(net, net["result"])
        services.withdraw(actor=actor_for(net["ada"]), request_id=newer.pk, revision=newer.revision)
    with time_machine.travel(date(2026, 3, 5)):
        page = body(as_ada.get(reverse("record:corrections")))
    rows = re.findall(r'data-request="([0-9a-f-]{36})"', page)
    assert rows == [str(newer.pk), str(older.pk)]
    assert "Serum potassium" in page
    assert "Amlodipine 5mg tablets" in page
    assert "Withdrawn" in page
    assert "Waiting for review" in page
    assert "Decision due by 28 February 2026" in page
    assert "Overdue" in page
    assert "1 request is waiting for a decision" in page


def test_an_extended_deadline_is_noted_with_its_reason(as_ada, net):
    with time_machine.travel(date(2026, 1, 31)):
        correction = reviewed(net, flag(net))
        services.extend_deadline(
            actor=doctor(net),
            request_id=correction.pk,
            revision=correction.revision,
            reason="We are waiting for the clinic's letter",
        )
        listing = body(as_ada.get(reverse("record:corrections")))
        page = body(as_ada.get(page_of(correction)))
    assert "Decision due by 28 April 2026" in listing
    assert "the deadline was extended" in listing
    assert "Deadline extended: We are waiting for the clinic&#x27;s letter" in page
    assert "Review started" in page


def test_another_patients_request_and_a_random_id_get_the_same_not_found(client, net):
    theirs = flag(net)
    client.force_login(net["ben"])
    pairs = [
        (reverse(name, kwargs={"request_id": theirs.pk}), reverse(name, kwargs={"request_id": uuid.uuid4()}))
        for name in ("record:correction", "record:correction_withdraw")
    ]
    for mine, missing in pairs:
        a, b = client.get(mine), client.get(missing)
        assert a.status_code == b.status_code == 404
        assert without_tokens(a) == without_tokens(b)
        assert "Amlodipine" not in body(a)
    for name, data in (
        ("record:correction_reply", {"revision": 1, "body": "Let me in"}),
        ("record:correction_withdraw", {"revision": 1}),
        ("record:correction_disagree", {"revision": 1, "text": "I disagree with it all"}),
    ):
        assert client.post(reverse(name, kwargs={"request_id": theirs.pk}), data).status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_open
    assert not Message.objects.exists()
    # Nor may a clinician use the patient's pages, even for their own organisation's request.
    client.force_login(net["doctor"])
    assert "No record is linked" in body(client.get(page_of(theirs)))


def test_the_request_page_shows_the_timeline_and_the_thread_in_plain_words(as_ada, net):
    correction = reviewed(net, flag(net))
    services.ask_information(
        actor=doctor(net),
        request_id=correction.pk,
        revision=correction.revision,
        question="Which clinic changed the dose?",
    )
    page = body(as_ada.get(page_of(correction)))
    assert "Waiting for more information from you" in page
    timeline = page[page.index('id="timeline"') :]
    for words in ("You sent your request", "Review started", "More information asked for"):
        assert words in timeline
    assert timeline.index("You sent your request") < timeline.index("More information asked for")
    assert "dr.gp@example.com" not in page  # staff are named by organisation only
    thread = page[page.index('id="thread"') :]
    assert "Which clinic changed the dose?" in thread
    assert "<strong>Riverside Surgery</strong>" in thread
    assert 'id="reply-form"' in page
    assert f'name="revision" value="{correction.revision + 1}"' in page
    # The question is pointed out at the top, and answering it is the page's main action.
    asked = page[page.index('id="asked"') : page.index('id="request-summary"')]
    assert "Riverside Surgery has asked you for more information" in asked
    assert 'href="#reply-form"' in asked
    assert "Send your answer" in page


def test_without_a_question_the_reply_is_an_ordinary_message(as_ada, net):
    page = body(as_ada.get(page_of(flag(net))))
    assert 'id="asked"' not in page
    assert "Send your answer" not in page
    assert "Send message" in page


def test_a_reply_answers_the_question_and_puts_the_request_back_in_review(as_ada, net):
    correction = reviewed(net, flag(net))
    correction = services.ask_information(
        actor=doctor(net), request_id=correction.pk, revision=correction.revision, question="Which clinic?"
    )
    response = as_ada.post(
        reverse("record:correction_reply", kwargs={"request_id": correction.pk}),
        {"revision": correction.revision, "body": "The hypertension clinic"},
    )
    assert response.status_code == 302
    correction.refresh_from_db()
    assert correction.business_status == BusinessStatus.IN_REVIEW
    page = body(as_ada.get(page_of(correction)))
    assert "Your message has been sent." in page
    assert "You replied" in page
    assert "<strong>You</strong>" in page
    assert AuditEvent.objects.filter(action="correction.patient_reply", actor=net["ada"]).exists()


def test_an_empty_reply_is_named_in_the_error_summary(as_ada, net):
    correction = flag(net)
    response = as_ada.post(
        reverse("record:correction_reply", kwargs={"request_id": correction.pk}),
        {"revision": correction.revision, "body": ""},
    )
    page = body(response)
    assert response.status_code == 200
    assert '<a href="#id_body">Write your reply</a>' in page
    assert "<title>Error: " in page


def test_a_reply_written_on_an_old_version_of_the_request_keeps_the_text_and_shows_the_latest(as_ada, net):
    correction = flag(net)
    old = correction.revision
    reviewed(net, correction)  # the GP acts while the patient writes
    response = as_ada.post(
        reverse("record:correction_reply", kwargs={"request_id": correction.pk}),
        {"revision": old, "body": "One more thing about my dose"},
    )
    assert response.status_code == 200
    page = body(response)
    assert "This request changed while you were writing" in page
    assert "The latest change: review started (Riverside Surgery" in page
    assert "dr.gp@example.com" not in page
    assert "One more thing about my dose</textarea>" in page
    assert f'name="revision" value="{old + 1}"' in page
    assert "Being reviewed" in page
    assert not Message.objects.exists()


# --- Withdrawing ---------------------------------------------------------------------------------


def test_withdrawing_asks_first_then_ends_the_request_and_the_dispute(as_ada, net):
    correction = flag(net)
    url = reverse("record:correction_withdraw", kwargs={"request_id": correction.pk})
    confirm = body(as_ada.get(url))
    assert "Are you sure you want to withdraw your request?" in confirm
    assert f'name="revision" value="{correction.revision}"' in confirm
    correction.refresh_from_db()
    assert correction.is_open  # asking is not withdrawing
    response = as_ada.post(url, {"revision": correction.revision})
    assert response.status_code == 302
    correction.refresh_from_db()
    assert correction.business_status == BusinessStatus.CANCELLED
    page = body(as_ada.get(page_of(correction)))
    assert "You have withdrawn your request." in page
    assert 'id="reply-form"' not in page
    assert "Withdraw this request" not in page
    assert AuditEvent.objects.filter(action="correction.withdraw", actor=net["ada"]).exists()
    # A withdrawn request: its confirmation page goes back to the request.
    assert as_ada.get(url).status_code == 302


def test_a_withdrawal_from_an_old_page_is_refused_with_the_latest_shown(as_ada, net):
    correction = flag(net)
    services.patient_reply(
        actor=actor_for(net["ada"]),
        request_id=correction.pk,
        revision=correction.revision,
        body="Hello there",
    )
    response = as_ada.post(
        reverse("record:correction_withdraw", kwargs={"request_id": correction.pk}),
        {"revision": correction.revision},
    )
    assert response.status_code == 200
    assert "This request changed while you were writing" in body(response)
    correction.refresh_from_db()
    assert correction.is_open


# --- Decisions, disagreement and notices ----------------------------------------------------------


def test_after_a_refusal_the_letter_and_the_disagreement_form_are_shown(as_ada, net):
    correction = denied(net, flag(net))
    page = body(as_ada.get(page_of(correction)))
    assert 'id="decision-letter"' in page
    assert "We have decided not to change" in page
    assert "Information Commissioner" in page
    assert 'href="https://ico.org.uk/make-a-complaint/"' in page
    assert "Not corrected" in page
    assert 'id="disagreement-form"' in page
    assert 'id="reply-form"' not in page


def test_a_disagreement_stands_beside_the_item_with_the_response(as_ada, net):
    correction = denied(net, flag(net))
    response = as_ada.post(
        reverse("record:correction_disagree", kwargs={"request_id": correction.pk}),
        {"revision": correction.revision, "text": "I take 5mg: the clinic changed it."},
    )
    assert response.status_code == 302
    correction.refresh_from_db()
    assert correction.business_status == BusinessStatus.DISAGREEMENT
    assert AuditEvent.objects.filter(action="correction.log_disagreement", actor=net["ada"]).exists()
    services.add_rebuttal(
        actor=doctor(net),
        request_id=correction.pk,
        revision=correction.revision,
        text="We will review the dose at your next appointment.",
    )
    page = body(as_ada.get(page_of(correction)))
    assert "Your statement of disagreement" in page
    assert "I take 5mg: the clinic changed it." in page
    assert "Response from Riverside Surgery" in page
    assert 'id="disagreement-form"' not in page
    item = body(as_ada.get(reverse("record:item", kwargs={"entry_id": net["medicine"].pk})))
    statements = item[item.index('id="disagreements"') :]
    assert statements.index("Your statement of disagreement") < statements.index("Response from Riverside")
    assert "We will review the dose at your next appointment." in statements
    assert "Under dispute" in item


def test_a_disagreement_written_on_an_old_version_keeps_the_text(as_ada, net):
    correction = denied(net, flag(net))
    services.log_disagreement(
        actor=actor_for(net["ada"]),
        request_id=correction.pk,
        revision=correction.revision,
        text="First go at it",
    )
    response = as_ada.post(
        reverse("record:correction_disagree", kwargs={"request_id": correction.pk}),
        {"revision": correction.revision, "text": "A second statement"},
    )
    page = body(response)
    assert "This request changed while you were writing" in page
    assert 'id="kept-text"' in page  # no form to put it back into: shown for the patient to copy
    assert "A second statement" in page
    assert Statement.objects.count() == 1


def test_a_short_disagreement_is_named_at_its_field(as_ada, net):
    correction = denied(net, flag(net))
    page = body(
        as_ada.post(
            reverse("record:correction_disagree", kwargs={"request_id": correction.pk}),
            {"revision": correction.revision, "text": "no"},
        )
    )
    assert '<a href="#id_text">Write your statement of disagreement</a>' in page


def test_after_an_amendment_the_patient_sees_who_was_told(as_ada, net):
    correction = flag(net)
    open_record(actor_for(net["trust_doctor"]), net["medicine"].patient_id).read()  # saw version 1
    correction = reviewed(net, correction)
    services.accept(
        actor=doctor(net),
        request_id=correction.pk,
        revision=correction.revision,
        resource_json=json.dumps({**MEDICINE, "dosage": [{"text": "5mg once daily"}]}),
        based_on_version=1,
    )
    page = body(as_ada.get(page_of(correction)))
    assert "We have corrected" in page
    notices = page[page.index('id="notices"') :]
    assert "City Teaching Hospitals" in notices
    assert "Organisations that saw the old version were told: City Teaching Hospitals" in page
    assert 'id="disagreement-form"' not in page


# --- Under dispute everywhere -------------------------------------------------------------------


def _dispute_pages(net):
    return [
        reverse("record:kind", kwargs={"kind": "medications"}),
        reverse("record:item", kwargs={"entry_id": net["medicine"].pk}),
        reverse("record:print"),
        reverse("record:summary"),
    ]


def test_an_open_request_shows_the_item_under_dispute_everywhere_until_it_is_withdrawn(as_ada, net):
    for url in _dispute_pages(net):
        assert "Under dispute" not in body(as_ada.get(url)), url
    correction = flag(net)
    for url in _dispute_pages(net):
        assert "Under dispute" in body(as_ada.get(url)), url
    summary = as_ada.get(reverse("record:summary"))
    assert summary.context["disputed_count"] == 1
    assert "1 item is under dispute" in body(summary)
    services.withdraw(actor=actor_for(net["ada"]), request_id=correction.pk, revision=correction.revision)
    for url in _dispute_pages(net):
        assert "Under dispute" not in body(as_ada.get(url)), url


def test_a_disagreement_keeps_the_item_under_dispute_and_is_printed_with_it(as_ada, net):
    disagreed(net, flag(net))
    for url in _dispute_pages(net):
        assert "Under dispute" in body(as_ada.get(url)), url
    printed = body(as_ada.get(reverse("record:print")))
    assert "Your statement of disagreement:</strong> I take 5mg: the clinic changed it." in printed


def test_a_refusal_alone_ends_the_dispute(as_ada, net):
    denied(net, flag(net))
    assert "Under dispute" not in body(as_ada.get(reverse("record:print")))


def test_the_download_tags_disputed_items_and_carries_a_flag_and_the_statements(as_ada, net):
    correction = disagreed(net, flag(net))
    services.add_rebuttal(
        actor=doctor(net), request_id=correction.pk, revision=correction.revision, text="We stand by it."
    )
    flag(net, net["result"])  # open: disputed, no statements yet
    text = body(as_ada.get(reverse("record:download")))
    bundle = json.loads(text)
    Bundle.model_validate(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    by_id = {r["id"]: r for r in resources}
    for item in (by_id["m1"], by_id["o1"]):
        assert {
            "system": DISPUTED,
            "code": "disputed",
            "display": "Accuracy disputed by the patient",
        } in item["meta"]["tag"]
    assert "disputed" not in json.dumps([r for r in resources if r["resourceType"] == "Patient"])
    assert '"value":4.10' in text  # re-encoded with its precision kept
    flags = [r for r in resources if r["resourceType"] == "Flag"]
    assert len(flags) == 2
    for found in flags:
        Flag.model_validate(found)
        assert found["status"] == "active"
        assert found["code"]["text"] == "Accuracy disputed by the patient"
    medicine_url = f"urn:uuid:{net['medicine'].pk}"
    assert any(f["extension"][0]["valueReference"]["reference"] == medicine_url for f in flags)
    communications = [r for r in resources if r["resourceType"] == "Communication"]
    for found in communications:
        Communication.model_validate(found)
    assert [(c["about"][0]["reference"], c["payload"][0]["contentString"]) for c in communications] == [
        (medicine_url, "I take 5mg: the clinic changed it."),
        (medicine_url, "We stand by it."),
    ]
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(full_urls) == len(set(full_urls))


def test_an_undisputed_download_is_still_the_stored_text(as_ada, net):
    text = body(as_ada.get(reverse("record:download")))
    for entry in RecordEntry.objects.filter(patient=net["medicine"].patient):
        assert entry.json in text
    assert "Flag" not in text


# --- The summary ------------------------------------------------------------------------------


def test_the_summary_counts_open_requests_and_links_to_them(as_ada, net):
    page = body(as_ada.get(reverse("record:summary")))
    assert "Your correction requests" in page
    assert f'href="{reverse("record:corrections")}"' in page
    correction = flag(net)
    flag(net, net["result"])
    services.withdraw(actor=actor_for(net["ada"]), request_id=correction.pk, revision=correction.revision)
    summary = body(as_ada.get(reverse("record:summary")))
    section = summary[summary.index('id="correction-summary"') :]
    assert "1 of your requests is waiting for a decision" in section
    assert "You have made 2 requests in all" in section


def test_a_patient_without_requests_is_told_how_to_make_one(as_ada, net):
    page = body(as_ada.get(reverse("record:corrections")))
    assert 'id="no-requests"' in page
    assert not AuditEvent.objects.filter(actor=net["ada"], action="record.read").exists()
