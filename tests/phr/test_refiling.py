"""Re-filing: an organisation re-sends an item under another patient (the routine fix of
an item filed under the wrong patient). A version belongs to the patient it was filed
under: the new patient never sees what the item said in the first patient's record, the
first patient's record says that the owner moved an item away (never what it said), and
both patients' audit trails hold the move as the owner's act."""

import json

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from consent.policy import actor_for, open_record
from phr.models import EntryVersion, Patient, RecordEntry, Refiling
from tests.feeds import person, send
from tests.personas import ClinicianFactory, PatientUserFactory

pytestmark = pytest.mark.django_db

ADA_NHS = "9434765919"
BEN_NHS = "9990000018"
ADAS_WORDS = "Seen with Ada's sister about the lump"
BENS_WORDS = "Reviewed in clinic"


def item(subject, note, cid="x1"):
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": subject},
        "code": {"text": "Breast lump"},
        "note": [{"text": note}],
        "recordedDate": "2024-05-01",
    }


@pytest.fixture
def refiled(gp):
    """The GP files item x1 under Ada (version 1), then re-sends it under Ben (version 2)."""
    send(
        gp, person("pa", ADA_NHS, "Lovelace"), person("pb", BEN_NHS, "Marsh"), item("Patient/pa", ADAS_WORDS)
    )
    send(gp, item("Patient/pb", BENS_WORDS))
    ada, ben = Patient.objects.get(nhs_number=ADA_NHS), Patient.objects.get(nhs_number=BEN_NHS)
    entry = RecordEntry.objects.get(fhir_id="x1")
    assert (entry.patient, entry.version) == (ben, 2)
    return {"ada": ada, "ben": ben, "entry": entry, "gp": gp}


def test_each_version_keeps_the_patient_it_was_filed_under(refiled):
    first, second = EntryVersion.objects.filter(entry=refiled["entry"]).order_by("number")
    assert (first.patient, second.patient) == (refiled["ada"], refiled["ben"])
    assert (first.subject_ref, second.subject_ref) == ("Patient/pa", "Patient/pb")


def test_the_new_patient_reads_only_the_version_filed_under_them_over_fhir(client, refiled):
    client.force_login(PatientUserFactory(email="ben@example.com", patient=refiled["ben"]))
    current = client.get("/fhir/Condition/x1/_history/2")
    assert current.status_code == 200
    assert json.loads(current.content)["note"][0]["text"] == BENS_WORDS
    earlier = client.get("/fhir/Condition/x1/_history/1")
    missing = client.get("/fhir/Condition/x1/_history/9")
    assert earlier.status_code == missing.status_code == 404
    assert earlier.content == missing.content
    assert ADAS_WORDS.encode() not in earlier.content


def test_the_policy_releases_only_the_versions_filed_under_the_record_opened(refiled, dr_gp):
    ben = PatientUserFactory(email="ben@example.com", patient=refiled["ben"])
    _, versions = open_record(actor_for(ben), refiled["ben"].pk).history(refiled["entry"].pk)
    assert [v.number for v in versions] == [2]
    _, staff_sees = open_record(actor_for(dr_gp), refiled["ben"].pk).history(refiled["entry"].pk)
    assert [v.number for v in staff_sees] == [2]


def test_the_new_patients_item_page_shows_no_earlier_version_and_no_diff(client, refiled):
    client.force_login(PatientUserFactory(email="ben@example.com", patient=refiled["ben"]))
    response = client.get(reverse("record:item", kwargs={"entry_id": refiled["entry"].pk}))
    assert response.status_code == 200
    body = response.content.decode()
    assert BENS_WORDS in body
    assert "Ada&#x27;s sister" not in body
    assert ADAS_WORDS not in body
    assert response.context["version_count"] == 1
    (only,) = response.context["history"]
    assert only.first
    assert only.changes == []


def test_the_first_patients_record_says_the_owner_moved_an_item_away_without_its_content(client, refiled):
    client.force_login(PatientUserFactory(email="ada@example.com", patient=refiled["ada"]))
    body = client.get(reverse("record:summary")).content.decode()
    assert 'id="moved-away"' in body
    assert "Riverside Surgery moved an item from your record on" in body
    for words in (ADAS_WORDS, BENS_WORDS, "Breast lump"):
        assert words not in body
    assert client.get(reverse("record:item", kwargs={"entry_id": refiled["entry"].pk})).status_code == 404
    (move,) = Refiling.objects.all()
    assert (move.from_patient, move.to_patient, move.version) == (refiled["ada"], refiled["ben"], 2)


def test_the_owners_staff_see_the_trace_on_the_first_patients_record_and_others_do_not(
    client, refiled, hospital, dr_gp
):
    client.force_login(dr_gp)
    page = client.get(reverse("clinician:record", kwargs={"patient_id": refiled["ada"].pk}))
    assert page.status_code == 200
    assert "Riverside Surgery moved an item from this record on" in page.content.decode()
    client.logout()
    client.force_login(ClinicianFactory(email="dr.bell@hospital.example", organisation=hospital))
    page = client.get(reverse("clinician:record", kwargs={"patient_id": refiled["ada"].pk}))
    assert page.status_code == 200
    assert "moved an item from this record" not in page.content.decode()


def test_the_move_is_in_both_patients_trails_as_the_owners_act(refiled):
    entry = refiled["entry"]
    moves = {e.patient_id: e for e in AuditEvent.objects.filter(action="record.move")}
    assert set(moves) == {refiled["ada"].pk, refiled["ben"].pk}
    for event in moves.values():
        assert event.organisation == refiled["gp"]
        assert event.actor is None
        assert event.actor_label.startswith("ingest:")
        assert event.outcome == "permit"
    assert moves[refiled["ada"].pk].entries == [f"{entry.pk.hex}:1"]
    assert moves[refiled["ada"].pk].detail["moved"] == "away"
    assert moves[refiled["ben"].pk].entries == [f"{entry.pk.hex}:2"]
    assert moves[refiled["ben"].pk].detail["moved"] == "in"
    # Neither event names the other patient.
    assert str(refiled["ben"].pk) not in json.dumps(moves[refiled["ada"].pk].detail)
    assert str(refiled["ada"].pk) not in json.dumps(moves[refiled["ben"].pk].detail)


def test_moved_back_the_first_patient_sees_their_own_versions_and_never_the_other(refiled):
    send(refiled["gp"], item("Patient/pa", "Back where it belongs"))
    ada = PatientUserFactory(email="ada@example.com", patient=refiled["ada"])
    _, versions = open_record(actor_for(ada), refiled["ada"].pk).history(refiled["entry"].pk)
    assert [v.number for v in versions] == [1, 3]
    assert all(BENS_WORDS not in v.json for v in versions)


def test_re_sent_under_a_patient_not_yet_known_the_item_leaves_the_record(gp):
    send(gp, person("pa", ADA_NHS, "Lovelace"), item("Patient/pa", ADAS_WORDS))
    send(gp, item("Patient/p-later", BENS_WORDS))
    ada = Patient.objects.get(nhs_number=ADA_NHS)
    entry = RecordEntry.objects.get(fhir_id="x1")
    assert entry.patient is None
    access = open_record(actor_for(PatientUserFactory(email="ada@example.com", patient=ada)), ada.pk)
    assert not access.locate(lambda entries: entries.filter(pk=entry.pk).values_list("pk"))
    assert Refiling.objects.get().from_patient == ada
    # When that patient arrives the item joins their record with only its own version.
    send(gp, person("p-later", BEN_NHS, "Marsh"))
    ben = Patient.objects.get(nhs_number=BEN_NHS)
    entry.refresh_from_db()
    assert entry.patient == ben
    _, versions = open_record(
        actor_for(PatientUserFactory(email="ben@example.com", patient=ben)), ben.pk
    ).history(entry.pk)
    assert [v.number for v in versions] == [2]


def test_an_item_sent_before_its_patient_keeps_its_history_when_it_joins(gp):
    send(gp, item("Patient/pz", "First"))
    send(gp, item("Patient/pz", "Second"))
    send(gp, person("pz", ADA_NHS, "Lovelace"))
    ada = Patient.objects.get(nhs_number=ADA_NHS)
    entry = RecordEntry.objects.get(fhir_id="x1")
    assert entry.patient == ada
    _, versions = open_record(
        actor_for(PatientUserFactory(email="ada@example.com", patient=ada)), ada.pk
    ).history(entry.pk)
    assert [v.number for v in versions] == [1, 2]
    assert not AuditEvent.objects.filter(action="record.move").exists()  # an arrival, not a move


def test_the_clinicians_item_page_counts_only_the_versions_filed_under_the_record(client, refiled, dr_gp):
    client.force_login(dr_gp)
    url = reverse(
        "clinician:entry", kwargs={"patient_id": refiled["ben"].pk, "entry_id": refiled["entry"].pk}
    )
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["versions"] == 1
    assert ADAS_WORDS not in page.content.decode()
