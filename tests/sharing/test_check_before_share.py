"""Check before you share: a pause is an ordinary "do not share" choice the policy
enforces and every page shows; the patient checks each item's current version, holder by
holder; "Something is wrong" leads to a pre-filled correction; the finish page records
the choices made; IG sees totals only."""

import json

import pytest
from django.db.models import F
from django.urls import reverse

from accuracy import record_check
from accuracy.models import CheckOutcome, RecordCheck
from audit.models import AuditEvent
from consent.models import PAUSE_REASON, ConsentChoice, Decision, Scope
from consent.policy import NotFound, actor_for, open_record
from phr.ingest import ingest_documents
from phr.models import Patient, RecordEntry
from tests.clinician.network import _bundle, _condition
from tests.personas import ClinicianFactory

pytestmark = pytest.mark.django_db

START = reverse("sharing:check_start")
ITEMS = reverse("sharing:check_items")
FINISH = reverse("sharing:check_finish")
BEN_NHS = "9990000018"


def mark_url(entry) -> str:
    return reverse("sharing:check_mark", kwargs={"entry_id": entry.pk})


@pytest.fixture
def ben(hospital) -> Patient:
    patient = {
        "resourceType": "Patient",
        "id": "pb",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": BEN_NHS}],
        "name": [{"family": "Brown", "given": ["Ben"]}],
    }
    gout = {**_condition("b1", "90560007", "Gout of big toe"), "subject": {"reference": "Patient/pb"}}
    ingest_documents([("ben.json", _bundle(patient, gout))], organisation=hospital)
    return Patient.objects.get(nhs_number=BEN_NHS)


def item(patient, fhir_id) -> RecordEntry:
    return RecordEntry.objects.get(patient=patient, fhir_id=fhir_id)


def seen_by(organisation, patient) -> set[str]:
    """The fhir ids a clinician of the organisation may read, empty when refused."""
    clinician = ClinicianFactory(organisation=organisation)
    try:
        return {entry.fhir_id for entry in open_record(actor_for(clinician), patient.pk).read()}
    except NotFound:
        return set()


def progress_of(client) -> tuple[int, int]:
    progress = client.get(ITEMS).context["progress"]
    return progress.checked, progress.total


# --- The pause ---------------------------------------------------------------------------


def test_pausing_one_organisation_is_a_deny_the_policy_enforces(signed_in, ada, ambulance, hospital):
    assert "c1" in seen_by(ambulance, ada)
    response = signed_in.post(START, {"organisations": [ambulance.pk]})
    assert response.status_code == 302
    assert response["Location"] == ITEMS
    choice = ConsentChoice.objects.get(patient=ada)
    assert (choice.scope, choice.organisation, choice.decision, choice.reason) == (
        Scope.ORGANISATION,
        ambulance,
        Decision.DENY,
        PAUSE_REASON,
    )
    assert seen_by(ambulance, ada) == set()
    # Only the paused organisation: the others see as before, and the holder its own.
    assert "c1" in seen_by(hospital, ada)


def test_pausing_several_makes_one_choice_each_and_pausing_again_adds_none(
    signed_in, ada, ambulance, mental_health_trust
):
    signed_in.post(START, {"organisations": [ambulance.pk, mental_health_trust.pk]})
    signed_in.post(START, {"organisations": [ambulance.pk]})
    paused = ConsentChoice.objects.filter(patient=ada, reason=PAUSE_REASON)
    assert sorted(c.organisation.name for c in paused) == [
        "City Mind Partnership",
        "Northbridge Ambulance Service",
    ]


def test_pause_all_is_one_network_deny(signed_in, ada, ambulance, gp):
    signed_in.post(START, {"everyone": "on", "organisations": [ambulance.pk]})
    choice = ConsentChoice.objects.get(patient=ada)
    assert (choice.scope, choice.organisation, choice.decision) == (Scope.NETWORK, None, Decision.DENY)
    assert seen_by(ambulance, ada) == set()
    assert seen_by(gp, ada) == {"p1", "c1", "c2", "c3"}  # the holder still sees its own


def test_a_pause_beats_what_the_patient_shared_before_by_name(signed_in, ada, ada_user, ambulance):
    """Sharing with the ambulance service by name, and a category with it, do not leak
    through a pause of everyone: a pause stops all it names."""
    from consent.services import change_consent

    actor = actor_for(ada_user)
    change_consent(
        actor=actor,
        patient_id=ada.pk,
        scope=Scope.ORGANISATION,
        decision=Decision.PERMIT,
        organisation=ambulance,
    )
    change_consent(
        actor=actor,
        patient_id=ada.pk,
        scope=Scope.ORGANISATION_CATEGORY,
        decision=Decision.PERMIT,
        organisation=ambulance,
        category="mental_health",
    )
    assert seen_by(ambulance, ada)
    signed_in.post(START, {"everyone": "on"})
    assert seen_by(ambulance, ada) == set()
    signed_in.post(FINISH, {"pause_network": Decision.DEFAULT})
    assert seen_by(ambulance, ada)  # the earlier choices count again


def test_pausing_nobody_asks_again(signed_in, ada):
    response = signed_in.post(START, {})
    assert response.status_code == 200
    assert response.context["errors"] == [
        ("id_organisations_0", "Choose the organisations to pause sharing with, or every organisation")
    ]
    assert not ConsentChoice.objects.filter(patient=ada).exists()


def test_a_pause_is_shown_in_who_can_see_and_the_consent_export(signed_in, ada, ambulance):
    signed_in.post(START, {"organisations": [ambulance.pk]})
    rows = {
        row.organisation.name: row for row in signed_in.get(reverse("sharing:who_can_see")).context["rows"]
    }
    ambulance_row = rows["Northbridge Ambulance Service"]
    assert ambulance_row.sentence == "Northbridge Ambulance Service cannot see your record."
    assert ambulance_row.because == [
        "Do not share your record with Northbridge Ambulance Service (paused while you check your record)"
    ]
    consent = json.loads(signed_in.get(reverse("sharing:consent_fhir")).content)
    denied = [p for p in consent["provision"]["provision"] if p["type"] == "deny"]
    assert any("RYA" in json.dumps(p) for p in denied)


def test_only_a_patient_can_pause_their_own_record(client, dr_gp, ada):
    client.force_login(dr_gp)
    response = client.post(START, {"everyone": "on"})
    assert response.status_code == 200
    assert not ConsentChoice.objects.exists()


# --- The check ---------------------------------------------------------------------------


def test_progress_counts_the_items_checked_of_those_the_patient_sees(signed_in, ada):
    # Hypertension and depression at the GP, the wrist and the potassium at the hospital;
    # the asthma entered in error is not part of the record to check.
    assert progress_of(signed_in) == (0, 4)
    signed_in.post(mark_url(item(ada, "c1")), {"outcome": CheckOutcome.LOOKS_RIGHT})
    signed_in.post(mark_url(item(ada, "h1")), {"outcome": CheckOutcome.LOOKS_RIGHT})
    assert progress_of(signed_in) == (2, 4)
    response = signed_in.get(ITEMS)
    assert "2 of 4 checked" in response.content.decode()


def test_the_page_shows_one_holder_at_a_time_those_still_to_check_first(signed_in, ada, gp, hospital):
    signed_in.post(mark_url(item(ada, "c1")), {"outcome": CheckOutcome.LOOKS_RIGHT})
    response = signed_in.get(ITEMS, {"holder": gp.pk})
    assert [i.row.entry.fhir_id for i in response.context["items"]] == ["c2", "c1"]
    assert [i.outcome for i in response.context["items"]] == ["", CheckOutcome.LOOKS_RIGHT]
    holders = {h.name: (h.checked, h.total) for h in response.context["holders"]}
    assert holders == {"Riverside Surgery": (1, 2), "City Teaching Hospitals": (0, 2)}
    body = response.content.decode()
    assert "Items held by Riverside Surgery" in body
    assert "Fracture of wrist" not in body
    other = signed_in.get(ITEMS, {"holder": hospital.pk})
    assert {i.row.entry.fhir_id for i in other.context["items"]} == {"h1", "o1"}


def test_a_new_version_of_an_item_needs_a_new_look(signed_in, ada):
    entry = item(ada, "c1")
    signed_in.post(mark_url(entry), {"outcome": CheckOutcome.LOOKS_RIGHT})
    assert progress_of(signed_in) == (1, 4)
    RecordEntry.objects.filter(pk=entry.pk).update(version=F("version") + 1)
    assert progress_of(signed_in) == (0, 4)
    signed_in.post(mark_url(entry), {"outcome": CheckOutcome.LOOKS_RIGHT})
    assert progress_of(signed_in) == (1, 4)
    assert sorted(RecordCheck.objects.filter(entry=entry).values_list("version", flat=True)) == [1, 2]


def test_marking_again_changes_the_answer_for_that_version(signed_in, ada):
    entry = item(ada, "c1")
    signed_in.post(mark_url(entry), {"outcome": CheckOutcome.LOOKS_RIGHT})
    signed_in.post(mark_url(entry), {"outcome": CheckOutcome.SOMETHING_WRONG})
    assert list(RecordCheck.objects.values_list("outcome", flat=True)) == [CheckOutcome.SOMETHING_WRONG]


def test_another_patients_item_is_not_found_and_nothing_is_marked(signed_in, ada, ben):
    response = signed_in.post(mark_url(item(ben, "b1")), {"outcome": CheckOutcome.LOOKS_RIGHT})
    assert response.status_code == 404
    missing = reverse("sharing:check_mark", kwargs={"entry_id": "00000000-0000-0000-0000-000000000001"})
    assert signed_in.post(missing, {"outcome": CheckOutcome.LOOKS_RIGHT}).status_code == 404
    assert not RecordCheck.objects.exists()


def test_an_item_entered_in_error_is_not_checked(signed_in, ada):
    response = signed_in.post(mark_url(item(ada, "c3")), {"outcome": CheckOutcome.LOOKS_RIGHT})
    assert response.status_code == 404
    assert not RecordCheck.objects.exists()


def test_an_unknown_answer_marks_nothing(signed_in, ada):
    response = signed_in.post(mark_url(item(ada, "c1")), {"outcome": "maybe"})
    assert response.status_code == 302
    assert not RecordCheck.objects.exists()


def test_a_check_is_audited_without_the_answer(signed_in, ada, ada_user):
    entry = item(ada, "c1")
    signed_in.post(mark_url(entry), {"outcome": CheckOutcome.SOMETHING_WRONG})
    event = AuditEvent.objects.get(action=record_check.CHECK_ACTION)
    assert (event.patient_id, event.actor_id, event.purpose) == (ada.pk, ada_user.pk, "patient-access")
    assert event.entries == [f"{entry.pk.hex}:{entry.version}"]
    assert "something" not in json.dumps(event.detail)
    assert "looks" not in json.dumps(event.detail)
    # The item was read through the patient's own record, and that read is audited too.
    assert AuditEvent.objects.filter(action="record.read", patient=ada, detail__page="record check").exists()


def test_something_is_wrong_goes_to_the_correction_form_preselected(signed_in, ada):
    entry = item(ada, "c1")
    response = signed_in.post(mark_url(entry), {"outcome": CheckOutcome.SOMETHING_WRONG})
    correct = reverse("record:correct", kwargs={"entry_id": entry.pk})
    assert response["Location"] == f"{correct}?element=whole-item"
    form = signed_in.get(response["Location"]).context["form"]
    assert [o["value"] for o in form.element_options() if o["checked"]] == ["whole-item"]
    # Without the link's choice nothing is preselected.
    plain = signed_in.get(correct).context["form"]
    assert not any(o["checked"] for o in plain.element_options())


# --- Finishing ---------------------------------------------------------------------------


def test_the_finish_page_records_the_chosen_choices(signed_in, ada, ambulance, mental_health_trust, gp):
    signed_in.post(START, {"organisations": [ambulance.pk, mental_health_trust.pk, gp.pk]})
    page = signed_in.get(FINISH)
    assert [p.organisation.name for p in page.context["pauses"]] == [
        "City Mind Partnership",
        "Northbridge Ambulance Service",
        "Riverside Surgery",
    ]
    response = signed_in.post(
        FINISH,
        {
            f"pause_{ambulance.pk}": Decision.PERMIT,
            f"pause_{mental_health_trust.pk}": Decision.DENY,
            f"pause_{gp.pk}": "keep",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("sharing:who_can_see")
    latest = {
        c.organisation_id: c for c in ConsentChoice.objects.filter(patient=ada).order_by("recorded_at", "pk")
    }
    assert (latest[ambulance.pk].decision, latest[ambulance.pk].reason) == (Decision.PERMIT, "")
    assert (latest[mental_health_trust.pk].decision, latest[mental_health_trust.pk].reason) == (
        Decision.DENY,
        "",
    )
    assert latest[gp.pk].reason == PAUSE_REASON  # kept paused
    assert [p.organisation for p in record_check.pauses(ada)] == [gp]
    assert "c1" in seen_by(ambulance, ada)
    assert seen_by(mental_health_trust, ada) == set()


def test_the_usual_rule_ends_a_network_pause(signed_in, ada, ambulance):
    signed_in.post(START, {"everyone": "on"})
    signed_in.post(FINISH, {"pause_network": Decision.DEFAULT})
    latest = ConsentChoice.objects.filter(patient=ada).order_by("recorded_at", "pk").last()
    assert (latest.scope, latest.decision) == (Scope.NETWORK, Decision.DEFAULT)
    assert record_check.pauses(ada) == []
    assert "c1" in seen_by(ambulance, ada)


def test_the_finish_page_asks_for_every_paused_organisation(signed_in, ada, ambulance):
    signed_in.post(START, {"organisations": [ambulance.pk]})
    response = signed_in.post(FINISH, {})
    assert response.status_code == 200
    assert response.context["errors"] == [
        (f"id_pause_{ambulance.pk}_0", "Choose what to do about Northbridge Ambulance Service")
    ]
    assert len(record_check.pauses(ada)) == 1


# --- Information governance --------------------------------------------------------------


def test_ig_sees_only_totals_of_pauses_and_checks(client, signed_in, ada, ambulance, ig_officer):
    signed_in.post(START, {"organisations": [ambulance.pk]})
    signed_in.post(mark_url(item(ada, "c1")), {"outcome": CheckOutcome.LOOKS_RIGHT})
    signed_in.post(mark_url(item(ada, "c2")), {"outcome": CheckOutcome.SOMETHING_WRONG})
    signed_in.post(mark_url(item(ada, "h1")), {"outcome": CheckOutcome.LOOKS_RIGHT})
    signed_in.post(mark_url(item(ada, "o1")), {"outcome": CheckOutcome.LOOKS_RIGHT})
    client.force_login(ig_officer)
    response = client.get(reverse("ig:corrections"))
    assert response.status_code == 200
    assert response.context["pauses_in_force"] == 1
    checks = response.context["checks"]
    assert (checks.checked_items, checks.something_wrong, checks.something_wrong_percent) == (4, 1, 25)
    body = response.content.decode()
    assert "Patients with sharing paused now" in body
    assert "25%" in body
    for private in ("Okafor", "Hypertensive", "Depressive", "Fracture of wrist", BEN_NHS, "9434765919"):
        assert private not in body


def test_an_ended_pause_no_longer_counts_for_ig(signed_in, ada, ambulance):
    signed_in.post(START, {"organisations": [ambulance.pk]})
    from consent.ig_queries import patients_with_a_pause

    assert patients_with_a_pause() == 1
    signed_in.post(FINISH, {f"pause_{ambulance.pk}": Decision.DENY})
    assert patients_with_a_pause() == 0


# --- Links ---------------------------------------------------------------------------------


def test_the_choices_page_and_the_record_summary_link_to_the_check(signed_in, ada):
    for url in (reverse("sharing:choices"), reverse("record:summary")):
        assert f'href="{START}"' in signed_in.get(url).content.decode()
