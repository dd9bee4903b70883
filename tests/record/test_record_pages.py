"""The patient's own record pages: each shows exactly the permitted items of the signed-in
patient's own record, audits exactly what it shows, and never shows another patient's."""

import json
import re
import uuid

import pytest
from django.urls import NoReverseMatch, reverse
from fhir.resources.R4B.bundle import Bundle

from accuracy import record_display as display
from audit.models import AuditEvent
from consent.policy import actor_for
from consent.services import withhold_from_patient
from phr.ingest import ingest_documents
from phr.models import Patient, RecordEntry
from tests.clinician.network import IN_ERROR
from tests.personas import ClinicianFactory, PatientUserFactory, UserFactory

NHS = "https://fhir.nhs.uk/Id/nhs-number"
SNOMED = "http://snomed.info/sct"
ADA_NHS = "9434765919"
BEN_NHS = "9990000018"


def _bundle(*resources):
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def _patient(pid, nhs, family, given):
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": family, "given": [given]}],
    }


def _condition(cid, display_text, recorded, subject="Patient/p1", code="38341003", **extra):
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": subject},
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display_text}]},
        "recordedDate": recorded,
        **extra,
    }


def _medication(dose):
    return {
        "resourceType": "MedicationStatement",
        "id": "m1",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
        "effectiveDateTime": "2024-03-01",
        "dosage": [{"text": dose}],
    }


ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "id": "a1",
    "patient": {"reference": "Patient/p1"},
    "clinicalStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
        ]
    },
    "code": {"text": "Penicillin"},
    "recordedDate": "2019-06-01",
    "reaction": [{"manifestation": [{"text": "Itchy rash"}], "severity": "moderate"}],
}


def _ingest(organisation, *resources):
    result = ingest_documents([("test.json", _bundle(*resources))], organisation=organisation)
    assert result.rejected == 0, result.issues
    return result


@pytest.fixture
def ada(gp, hospital):
    """Ada's record: the GP holds hypertension, depression, asthma entered in error, a
    medicine sent twice with a changed dose, and an allergy; the hospital a fractured
    wrist, a potassium result and a procedure."""
    _ingest(
        gp,
        _patient("p1", ADA_NHS, "Okafor", "Ada"),
        _condition("c1", "Hypertensive disorder", "2024-05-01"),
        _condition("c2", "Depressive disorder", "2023-02-10", code="35489007"),
        _condition("c3", "Asthma", "2022-01-01", code="195967001", **IN_ERROR),
        _medication("50mg once daily"),
        ALLERGY,
    )
    _ingest(gp, _patient("p1", ADA_NHS, "Okafor", "Ada"), _medication("5mg once daily"))
    _ingest(
        hospital,
        _patient("p1", ADA_NHS, "Okafor", "Ada"),
        _condition("h1", "Fracture of wrist", "2024-08-20", code="263204007"),
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "subject": {"reference": "Patient/p1"},
            "code": {"text": "Serum potassium"},
            "effectiveDateTime": "2024-08-20T10:00:00Z",
            "valueQuantity": {"value": 4.1, "unit": "mmol/L"},
        },
        {
            "resourceType": "Procedure",
            "id": "pr1",
            "status": "completed",
            "subject": {"reference": "Patient/p1"},
            "code": {"text": "Plaster cast applied"},
            "performedDateTime": "2024-08-20",
        },
    )
    return Patient.objects.get(nhs_number=ADA_NHS)


@pytest.fixture
def ben(hospital):
    _ingest(
        hospital,
        _patient("pb", BEN_NHS, "Brown", "Ben"),
        _condition("b1", "Gout of big toe", "2024-07-07", subject="Patient/pb", code="90560007"),
    )
    return Patient.objects.get(nhs_number=BEN_NHS)


@pytest.fixture
def ada_user(ada):
    return PatientUserFactory(email="ada@example.com", patient=ada)


@pytest.fixture
def ben_user(ben):
    return PatientUserFactory(email="ben@example.com", patient=ben)


@pytest.fixture
def as_ada(client, ada_user):
    client.force_login(ada_user)
    return client


def entry(patient, fhir_id) -> RecordEntry:
    return RecordEntry.objects.get(patient=patient, fhir_id=fhir_id)


def last_read(user) -> AuditEvent:
    return AuditEvent.objects.filter(actor=user, action__startswith="record.").order_by("seq").last()


def refs(*entries) -> set[str]:
    return {f"{e.pk.hex}:{e.version}" for e in entries}


def item_ids(response) -> list[str]:
    return re.findall(r'data-entry="([0-9a-f-]{36})"', response.content.decode())


def without_csrf(response) -> str:
    # The sign-out form's token differs per response; nothing else may.
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())


# --- Summary ----------------------------------------------------------------------------


def test_the_summary_counts_each_kind_and_names_who_holds_the_items(as_ada, ada_user, ada, ben):
    response = as_ada.get(reverse("record:summary"))
    assert response.status_code == 200
    kinds = dict((kind.slug, count) for kind, count in response.context["kinds"])
    assert kinds == {
        "problems": 4,
        "medications": 1,
        "allergies": 1,
        "test-results": 1,
        "encounters": 0,
        "immunisations": 0,
        "documents": 0,
        "other": 1,
    }
    owners = {o["owner__name"]: o["items"] for o in response.context["owners"]}
    assert owners == {"Riverside Surgery": 5, "City Teaching Hospitals": 3}
    body = response.content.decode()
    assert "Gout" not in body
    assert "1 item was entered in error" in body
    assert reverse("record:kind", kwargs={"kind": "problems"}) in body


def test_the_summary_shows_the_five_latest_current_items_and_audits_exactly_them(as_ada, ada_user, ada):
    response = as_ada.get(reverse("record:summary"))
    shown = [row.entry for row in response.context["recent"]]
    ids = [e.fhir_id for e in shown]
    assert ids[0] == "o1"
    assert set(ids[1:3]) == {"h1", "pr1"}  # the same day: either order
    assert ids[3:] == ["c1", "m1"]
    assert all(not e.entered_in_error for e in shown)
    event = last_read(ada_user)
    assert event.action == "record.read"
    assert event.patient_id == ada.pk
    assert set(event.entries) == refs(*shown)
    assert event.outcome == "permit"


# --- A page per kind -------------------------------------------------------------------


def test_each_kind_page_lists_only_that_kind_with_who_holds_it(as_ada, ada):
    expected = {
        "problems": {"c1", "c2", "c3", "h1"},
        "medications": {"m1"},
        "allergies": {"a1"},
        "test-results": {"o1"},
        "encounters": set(),
        "immunisations": set(),
        "documents": set(),
        "other": {"pr1"},
    }
    for slug, fhir_ids in expected.items():
        response = as_ada.get(reverse("record:kind", kwargs={"kind": slug}))
        assert response.status_code == 200, slug
        shown = {RecordEntry.objects.get(pk=pk).fhir_id for pk in item_ids(response)}
        assert shown == fhir_ids, slug
    problems = as_ada.get(reverse("record:kind", kwargs={"kind": "problems"})).content.decode()
    assert "Riverside Surgery" in problems
    assert "City Teaching Hospitals" in problems


def test_an_unknown_kind_is_not_found(as_ada):
    assert as_ada.get("/record/nonsense/").status_code == 404


def test_a_kind_page_audits_exactly_the_items_it_shows(as_ada, ada_user, ada):
    response = as_ada.get(reverse("record:kind", kwargs={"kind": "problems"}))
    event = last_read(ada_user)
    assert event.action == "record.read"
    assert set(event.entries) == {f"{uuid.UUID(pk).hex}:1" for pk in item_ids(response)}
    assert len(event.entries) == 4
    assert event.detail["kind"] == "problems"


def test_an_item_entered_in_error_is_labelled_and_listed_after_the_current_ones(as_ada, ada):
    response = as_ada.get(reverse("record:kind", kwargs={"kind": "problems"}))
    ids = item_ids(response)
    asthma = entry(ada, "c3")
    assert ids[-1] == str(asthma.pk)
    body = response.content.decode()
    row = body[body.index(f'data-entry="{asthma.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "<s>Asthma</s>" in row
    assert "Entered in error" in row
    assert "Active" not in row
    assert (
        "record-item--in-error"
        in body[body.rindex("<tr", 0, body.index(f'data-entry="{asthma.pk}"')) :][:200]
    )


def test_sensitive_items_carry_their_category(as_ada, ada):
    body = as_ada.get(reverse("record:kind", kwargs={"kind": "problems"})).content.decode()
    assert "Sensitive: </span>Mental health" in body


def test_patient_b_sees_nothing_of_patient_a(client, ada, ben_user):
    client.force_login(ben_user)
    for url in [reverse("record:summary"), reverse("record:print"), reverse("record:download")] + [
        reverse("record:kind", kwargs={"kind": kind.slug}) for kind in display.KINDS
    ]:
        body = client.get(url).content.decode()
        for words in ("Hypertensive", "Asthma", "Amlodipine", "Penicillin", "potassium", "Riverside"):
            assert words not in body, (url, words)
    assert (
        "Gout of big toe" in client.get(reverse("record:kind", kwargs={"kind": "problems"})).content.decode()
    )


def test_items_withheld_from_the_patient_are_absent_everywhere(as_ada, ada, gp):
    doctor = ClinicianFactory(email="dr@gp.example", organisation=gp)
    held = entry(ada, "c2")
    withhold_from_patient(
        actor=actor_for(doctor), entry=held, reason="Would cause serious harm if seen before discussion"
    )
    problems = as_ada.get(reverse("record:kind", kwargs={"kind": "problems"}))
    assert str(held.pk) not in item_ids(problems)
    assert "Depressive" not in problems.content.decode()
    assert "Depressive" not in as_ada.get(reverse("record:print")).content.decode()
    assert held.json not in as_ada.get(reverse("record:download")).content.decode()
    kinds = dict((kind.slug, count) for kind, count in as_ada.get(reverse("record:summary")).context["kinds"])
    assert kinds["problems"] == 3
    assert as_ada.get(reverse("record:item", kwargs={"entry_id": held.pk})).status_code == 404


# --- Search, filters, pages -----------------------------------------------------------------


def test_a_text_search_narrows_the_list_and_is_audited_as_a_search(as_ada, ada_user, ada):
    response = as_ada.get(reverse("record:kind", kwargs={"kind": "problems"}), {"q": "wrist"})
    assert item_ids(response) == [str(entry(ada, "h1").pk)]
    event = last_read(ada_user)
    assert event.action == "record.search"
    assert event.entries == [f"{entry(ada, 'h1').pk.hex}:1"]
    assert event.detail["q"] == "yes"  # that a search was made, not its words


def test_the_organisation_filter_offers_the_owners_present_and_narrows(as_ada, ada, hospital):
    url = reverse("record:kind", kwargs={"kind": "problems"})
    response = as_ada.get(url)
    assert [label for _, label in response.context["form"].fields["owner"].choices] == [
        "All organisations",
        "City Teaching Hospitals",
        "Riverside Surgery",
    ]
    narrowed = as_ada.get(url, {"owner": hospital.pk})
    assert item_ids(narrowed) == [str(entry(ada, "h1").pk)]


def test_dates_narrow_the_list_and_a_bad_date_is_explained(as_ada, ada):
    url = reverse("record:kind", kwargs={"kind": "problems"})
    narrowed = as_ada.get(url, {"date_from": "2023-01-01", "date_to": "2024-06-30"})
    assert {RecordEntry.objects.get(pk=pk).fhir_id for pk in item_ids(narrowed)} == {"c1", "c2"}
    bad = as_ada.get(url, {"date_from": "2024-13-45"})
    assert bad.status_code == 200
    assert "There is a problem" in bad.content.decode()
    assert len(item_ids(bad)) == 4  # an invalid filter filters nothing
    backwards = as_ada.get(url, {"date_from": "2024-06-30", "date_to": "2023-01-01"})
    assert "The end date must be the same as or after the start date" in backwards.content.decode()


def test_long_lists_come_25_to_a_page_with_each_page_audited(client, gp, ada_user):
    resources = [_condition(f"n{i}", f"Condition number {i:02d}", f"2020-01-{i + 1:02d}") for i in range(27)]
    _ingest(gp, _patient("p1", ADA_NHS, "Okafor", "Ada"), *resources)
    client.force_login(ada_user)
    url = reverse("record:kind", kwargs={"kind": "problems"})
    first = client.get(url)
    assert len(item_ids(first)) == 25
    assert first.context["page"].paginator.count == 31
    assert 'aria-label="Page 2"' in first.content.decode()
    second = client.get(url, {"page": 2})
    assert len(item_ids(second)) == 6
    assert set(item_ids(first)).isdisjoint(item_ids(second))
    event = last_read(ada_user)
    assert len(event.entries) == 6
    searched = client.get(url, {"q": "number", "page": 2})
    assert len(item_ids(searched)) == 2
    assert "q=number" in searched.content.decode()


# --- One item and its history ---------------------------------------------------------------


def test_an_item_shows_its_details_and_what_changed_between_versions(as_ada, ada_user, ada):
    medicine = entry(ada, "m1")
    assert medicine.version == 2
    response = as_ada.get(reverse("record:item", kwargs={"entry_id": medicine.pk}))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Riverside Surgery" in body
    assert "How to take it" in body
    assert "5mg once daily" in body
    assert "The dose changed from 50mg once daily to 5mg once daily" in body  # in words
    history = body[body.index('id="versions"') :]
    assert "<code>" not in history
    assert "dosage[0]" not in history
    assert "delivery" not in history
    assert "{#" not in body
    assert "#}" not in body
    received = body[body.index('id="item-received"') :]
    assert received.startswith('id="item-received">')
    assert "the latest version arrived on" in received[: received.index("</dd>")]
    assert "Version 2 (current)" in body
    assert "Version 1" in body
    assert "Received from Riverside Surgery" in body
    assert 'id="disagreements"' in body
    event = last_read(ada_user)
    # Both versions are shown, so both are named as disclosed.
    assert event.entries == [f"{medicine.pk.hex}:1", f"{medicine.pk.hex}:2"]
    assert event.detail.get("history") is True


def test_an_item_decodes_allergy_and_result_details(as_ada, ada):
    allergy = as_ada.get(reverse("record:item", kwargs={"entry_id": entry(ada, "a1").pk})).context["details"]
    assert ("Substance", "Penicillin") in allergy
    assert ("Reaction", "Itchy rash") in allergy
    result = as_ada.get(reverse("record:item", kwargs={"entry_id": entry(ada, "o1").pk})).context["details"]
    assert ("Result", "4.1 mmol/L") in result


def test_an_item_entered_in_error_says_so_on_its_page(as_ada, ada):
    body = as_ada.get(reverse("record:item", kwargs={"entry_id": entry(ada, "c3").pk})).content.decode()
    assert 'id="in-error-notice"' in body
    assert "<s>Asthma</s>" in body


def test_another_patients_item_and_a_random_id_get_the_same_not_found(as_ada, ben):
    theirs = as_ada.get(reverse("record:item", kwargs={"entry_id": entry(ben, "b1").pk}))
    nobody = as_ada.get(reverse("record:item", kwargs={"entry_id": uuid.uuid4()}))
    assert theirs.status_code == nobody.status_code == 404
    assert without_csrf(theirs) == without_csrf(nobody)
    assert "Gout" not in theirs.content.decode()


# --- Download and print ---------------------------------------------------------------------


def test_the_download_is_a_valid_bundle_of_the_stored_texts(as_ada, ada_user, ada):
    response = as_ada.get(reverse("record:download"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "my-record-" in disposition
    for secret in ("Okafor", "Ada", ADA_NHS):
        assert secret not in disposition
    body = response.content.decode()
    Bundle.model_validate(json.loads(body))
    document = json.loads(body)
    assert document["type"] == "collection"
    stored = {str(e.pk): e for e in RecordEntry.objects.filter(patient=ada)}
    assert len(document["entry"]) == len(stored) == 10  # two Patient copies and eight items
    for item in document["entry"]:
        kept = stored[item["fullUrl"].removeprefix("urn:uuid:")]
        assert item["resource"] == json.loads(kept.json)
        assert kept.json in body  # served as stored, not re-encoded
    event = last_read(ada_user)
    assert event.action == "record.export"
    assert set(event.entries) == refs(*stored.values())


def test_an_empty_record_downloads_as_a_valid_bundle():
    from django.utils import timezone

    Bundle.model_validate(json.loads(display.fhir_bundle([], timezone.now())))


def test_the_print_page_groups_every_item_by_kind_and_is_audited_as_an_export(as_ada, ada_user, ada):
    response = as_ada.get(reverse("record:print"))
    assert response.status_code == 200
    groups = {kind.slug: {row.entry.fhir_id for row in rows} for kind, rows in response.context["groups"]}
    assert groups == {
        "problems": {"c1", "c2", "c3", "h1"},
        "medications": {"m1"},
        "allergies": {"a1"},
        "test-results": {"o1"},
        "other": {"pr1"},
    }
    body = response.content.decode()
    assert "/static/portal/print-record.css" in body  # its @media print rules
    event = last_read(ada_user)
    assert event.action == "record.export"
    assert len(event.entries) == 8


# --- Who gets which page ------------------------------------------------------------------


def _all_urls(entry_id):
    return [
        reverse("record:summary"),
        reverse("record:kind", kwargs={"kind": "problems"}),
        reverse("record:item", kwargs={"entry_id": entry_id}),
        reverse("record:download"),
        reverse("record:print"),
        reverse("record:correct", kwargs={"entry_id": entry_id}),
        reverse("record:corrections"),
        reverse("record:correction", kwargs={"request_id": uuid.uuid4()}),
        reverse("record:correction_withdraw", kwargs={"request_id": uuid.uuid4()}),
    ]


def test_anonymous_visitors_are_sent_to_sign_in(client, ada):
    for url in _all_urls(entry(ada, "c1").pk):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("role", ["patient", "clinician", "ig_officer"])
def test_users_without_a_linked_record_see_how_to_link_one(client, ada, gp, role):
    if role == "clinician":
        user = ClinicianFactory(email="staff@gp.example", organisation=gp)
    elif role == "ig_officer":
        user = UserFactory(email="ig@example.com", role=role)
    else:
        user = UserFactory(email="new@example.com", role=role)
    client.force_login(user)
    try:
        link_url = reverse("portal:link_record")
    except NoReverseMatch:  # the linking page belongs to the accounts work, which may lag
        link_url = None
    for url in _all_urls(entry(ada, "c1").pk):
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert "No record is linked to your account" in body
        assert "Hypertensive" not in body
        if link_url:
            assert f'href="{link_url}"' in body
    assert not AuditEvent.objects.filter(actor=user, action__startswith="record.").exists()


# --- Presentation helpers -------------------------------------------------------------------


def test_the_diff_names_each_changed_element_path():
    old = {
        "meta": {"lastUpdated": "2024-01-01", "versionId": "1"},
        "dosage": [{"text": "50mg once daily"}],
        "note": [{"text": "a"}],
        "status": "active",
        "valueQuantity": {"value": 4.1},
    }
    new = {
        "meta": {"lastUpdated": "2024-02-01", "versionId": "2"},
        "dosage": [{"text": "5mg once daily"}, {"text": "extra"}],
        "status": "active",
        "valueQuantity": {"value": 4.10},
        "reasonCode": [{"text": "Blood pressure"}],
    }
    changes = [str(c) for c in display.json_diff(old, new)]
    assert changes == [
        "dosage[0].text: '50mg once daily' → '5mg once daily'",
        """dosage[1]: added {"text": "extra"}""",
        """note: removed (was [{"text": "a"}])""",
        """reasonCode: added [{"text": "Blood pressure"}]""",
    ]


def test_what_changed_is_said_in_words_one_sentence_a_part():
    old = {
        "resourceType": "MedicationStatement",
        "meta": {"versionId": "1", "source": "delivery-1"},
        "status": "active",
        "dosage": [{"text": "50 mg once a day"}],
        "effectiveDateTime": "2024-01-10",
        "identifier": [{"value": "abc"}],
    }
    new = {
        **old,
        "meta": {"versionId": "2", "source": "delivery-2"},
        "status": "stopped",
        "dosage": [{"text": "5 mg once a day"}],
        "effectiveDateTime": "2024-02-03",
        "identifier": [{"value": "xyz"}],
        "note": [{"text": "Reviewed"}],
    }
    said = [str(c) for c in display.changes_in_words("MedicationStatement", old, new)]
    assert said == [
        "The dose changed from 50 mg once a day to 5 mg once a day",
        "When it was taken changed from 10 January 2024 to 3 February 2024",
        "Added the notes: Reviewed",
        "The status changed from active to stopped",
        "Another detail changed",
    ]


def test_a_result_a_concept_and_a_removal_are_said_in_words():
    old = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium"}]},
        "valueQuantity": {
            "value": 4.1,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
        "interpretation": [{"text": "Normal"}],
    }
    new = {**old, "valueQuantity": {**old["valueQuantity"], "value": 5.9}}
    del new["interpretation"]
    said = [str(c) for c in display.changes_in_words("Observation", old, new)]
    assert said == [
        "Removed what the result means (it was Normal)",
        "The result changed from 4.1 mmol/L to 5.9 mmol/L",
    ]
    for sentence in said:
        assert "http" not in sentence
        assert "[" not in sentence


def test_a_part_without_words_is_never_named_by_its_path():
    said = [str(c) for c in display.changes_in_words("Basic", {"extension": [1]}, {"extension": [2], "x": 1})]
    assert said == ["Another detail changed"]


def test_a_decimal_written_with_more_precision_counts_as_a_change():
    old, new = display.decode('{"v":4.1}'), display.decode('{"v":4.10}')
    assert [str(c) for c in display.json_diff(old, new)] == ["v: 4.1 → 4.10"]


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("2019", "2019"),
        ("2019-03", "March 2019"),
        ("2024-05-12", "12 May 2024"),
        ("2024-05-12T09:30:00+00:00", "12 May 2024 at 10:30am"),  # UK summer time
        ("2024-01-12T09:00:00Z", "12 January 2024 at 9am"),
        ("2024-01-12T00:05:00+00:00", "12 January 2024 at 12:05am"),
        ("2024-01-12T12:00:00+00:00", "12 January 2024 at 12pm"),
        ("2024-13-45", "2024-13-45"),  # shown as sent rather than hidden
    ],
)
def test_dates_in_an_items_details_are_in_words(sent, shown):
    condition = {"resourceType": "Condition", "code": {"text": "Gout"}, "onsetDateTime": sent}
    details = display.item_details(RecordEntry(json=json.dumps(condition)))
    assert ("Started", shown) in details


def test_a_period_reads_from_and_to_in_words():
    visit = {
        "resourceType": "Encounter",
        "class": {"display": "outpatient"},
        "period": {"start": "2024-02-01T14:00:00Z", "end": "2024-02-01T14:45:00Z"},
    }
    details = display.item_details(RecordEntry(json=json.dumps(visit)))
    assert ("When", "1 February 2024 at 2pm to 2:45pm") in details  # one day named once
    visit["period"]["end"] = "2024-02-03T10:00:00Z"
    details = display.item_details(RecordEntry(json=json.dumps(visit)))
    assert ("When", "1 February 2024 at 2pm to 3 February 2024 at 10am") in details
    onset = {"resourceType": "Condition", "code": {"text": "Gout"}, "onsetPeriod": {"start": "2020-06"}}
    assert ("Started", "from June 2020") in display.item_details(RecordEntry(json=json.dumps(onset)))


def test_statuses_are_in_plain_words_and_in_error_is_never_current():
    item = RecordEntry(clinical_status="active", entered_in_error=True)
    assert display.status_words(item) == "Entered in error"
    assert display.status_words(RecordEntry(clinical_status="resolved")) == "Resolved"
    assert display.status_words(RecordEntry(clinical_status="")) == "Not given"
    assert display.status_words(RecordEntry(clinical_status="some-new-code")) == "Some new code"


def test_every_kind_of_item_lands_in_exactly_one_kind():
    assert display.kind_of("Condition").slug == "problems"
    assert display.kind_of("MedicationRequest").slug == "medications"
    assert display.kind_of("DiagnosticReport").slug == "test-results"
    assert display.kind_of("CarePlan").slug == "other"


def test_the_dispute_seam_puts_a_badge_on_every_page_that_shows_the_item(as_ada, ada, monkeypatch):
    # The pages ask record_display which items are disputed; with no request, none is.
    disputed = entry(ada, "c1")
    monkeypatch.setattr(display, "disputed_entry_ids", lambda entries: {disputed.pk})
    for url in (
        reverse("record:kind", kwargs={"kind": "problems"}),
        reverse("record:item", kwargs={"entry_id": disputed.pk}),
        reverse("record:print"),
        reverse("record:summary"),
    ):
        assert "Under dispute" in as_ada.get(url).content.decode(), url
    monkeypatch.undo()
    assert display.disputed_entry_ids([disputed]) == set()
    assert (
        "Under dispute"
        not in as_ada.get(reverse("record:kind", kwargs={"kind": "problems"})).content.decode()
    )


def test_a_changed_path_is_named_by_the_part_it_lies_in():
    from accuracy.elements import label_within

    assert label_within("MedicationStatement", "dosage[0].text") == "The dose"
    assert label_within("Condition", "code.coding[0].display") == "The condition"
    assert label_within("Condition", "code") == "The condition"
    assert label_within("Condition", "codeable") == ""  # a prefix of a name is not the part
    assert label_within("Condition", "note[0].text") == ""
    assert label_within("Basic", "code") == ""


# --- Whose record ------------------------------------------------------------------------------


def test_every_record_page_names_the_patient_with_birth_date_and_nhs_number(as_ada, ada, gp):
    _ingest(gp, {**_patient("p1", ADA_NHS, "Okafor", "Ada"), "birthDate": "1971-03-04"})
    pages = [
        reverse("record:summary"),
        reverse("record:kind", kwargs={"kind": "medications"}),
        reverse("record:item", kwargs={"entry_id": entry(ada, "m1").pk}),
        reverse("record:print"),
    ]
    for url in pages:
        body = as_ada.get(url).content.decode()
        who = body[body.index('id="whose-record"') :]
        who = who[: who.index("</dl>")]
        assert "OKAFOR, Ada" in who, url
        assert "4 March 1971" in who, url
        assert "943 476 5919" in who, url


def test_the_patients_details_are_read_through_the_policy_and_audited(as_ada, ada, ada_user):
    as_ada.get(reverse("record:summary"))
    details = set(ada.entries.filter(resource_type="Patient").values_list("pk", flat=True))
    reads = AuditEvent.objects.filter(actor=ada_user, action__startswith="record.")
    assert any({ref.split(":")[0] for ref in event.entries} == {pk.hex for pk in details} for event in reads)


def test_lists_give_each_items_own_date_and_never_when_the_portal_received_it(as_ada, ada):
    page = as_ada.get(reverse("record:kind", kwargs={"kind": "problems"})).content.decode()
    assert "Last changed" not in page
    assert "1 May 2024" in page  # the hypertension's own recorded date
    item = as_ada.get(reverse("record:item", kwargs={"entry_id": entry(ada, "c1").pk})).content.decode()
    date_row = item[item.index('id="item-date"') :]
    assert date_row.startswith('id="item-date">1 May 2024<')


def test_the_patients_header_offers_the_nhs_more_menu_for_a_narrow_screen(as_ada, ada):
    page = as_ada.get(reverse("record:summary")).content.decode()
    header = page[
        page.index('aria-label="Your record"') : page.index("</nav>", page.index('aria-label="Your record"'))
    ]
    assert header.count('class="nhsuk-header__navigation-item"') == 6
    assert '<li class="nhsuk-header__menu" hidden>' in header
    assert 'id="toggle-menu" aria-expanded="false"' in header


def test_a_change_the_short_name_would_hide_is_said_as_written():
    coded = {"coding": [{"system": SNOMED, "code": "38341003", "display": "Hypertensive disorder"}]}
    old = {"resourceType": "Condition", "code": coded}
    new = {"resourceType": "Condition", "code": {**coded, "text": "Hypertension, resolved"}}
    said = [str(c) for c in display.changes_in_words("Condition", old, new)]
    assert said == [
        "The condition changed from High blood pressure (recorded as “Hypertensive disorder”)"
        " to High blood pressure (recorded as “Hypertension, resolved”)"
    ]


def test_a_dose_change_is_one_sentence_that_shows_a_change_of_amount_as_well_as_of_text():
    """A version that changes the instructions, the amount and the timing says so once;
    one that changes only the amount still says what to (issue 11, from the probe)."""
    import copy

    from accuracy.record_display import changes_in_words

    amount = {"value": 50, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    old = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "dosage": [
            {
                "text": "50mg once daily",
                "doseAndRate": [{"doseQuantity": amount}],
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            }
        ],
    }
    both = copy.deepcopy(old)
    both["dosage"][0]["text"] = "1000mg three times a day"
    both["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 1000
    both["dosage"][0]["timing"]["repeat"]["frequency"] = 3
    (change,) = changes_in_words("MedicationStatement", old, both)
    assert change.sentence == (
        "The dose changed from 50mg once daily (50 mg once a day) "
        "to 1000mg three times a day (1000 mg 3 times a day)"
    )
    only_amount = copy.deepcopy(old)
    only_amount["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 1000
    (change,) = changes_in_words("MedicationStatement", old, only_amount)
    assert "to 50mg once daily (1000 mg once a day)" in change.sentence
