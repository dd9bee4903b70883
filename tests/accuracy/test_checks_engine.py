"""Issue 13: the check engine and the medicine rules. The Metformin case: the GP corrects
the dose to once daily, the hospital still says twice daily; the portal finds it, once,
and a later version that agrees resolves it."""

import pytest

from accuracy.checks.agreement import dose_of, medicine_key
from accuracy.checks.base import Item
from accuracy.checks.engine import load_record, run_checks
from accuracy.models import Finding, FindingEntry, PendingCheck
from accuracy.tasks import check_pending
from phr.models import Patient, RecordEntry
from tests.feeds import person, send

pytestmark = pytest.mark.django_db

NHS = "9434765919"


def metformin(mid: str, dose: str, status: str = "active") -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": {"text": "Metformin 500mg tablets"},
        "authoredOn": "2026-10-01",
        "dosageInstruction": [{"text": dose}],
    }


@pytest.fixture
def both(gp, hospital) -> Patient:
    send(gp, person("p", NHS, "Jones"), metformin("m1", "500mg once daily"))
    send(hospital, person("p", NHS, "Jones"), metformin("h1", "500mg twice daily with meals"))
    return Patient.objects.get(nhs_number=NHS)


def test_the_metformin_case_is_found_naming_both_holders_and_what_each_says(both, gp, hospital):
    outcome = run_checks(both.pk)
    assert outcome.new == 1
    finding = Finding.objects.get(rule="medicine-dose-disagrees")
    assert finding.severity == "high"
    assert finding.audience == "both"
    assert "Riverside Surgery and City Teaching Hospitals record Metformin 500mg tablets differently" in (
        finding.explanation
    )
    assert "how often to take it" in finding.explanation
    gp_item = RecordEntry.objects.get(fhir_id="m1")
    assert finding.says[str(gp_item.pk)] == "500mg once daily"
    assert set(FindingEntry.objects.values_list("owner", flat=True)) == {gp.pk, hospital.pk}


def test_running_again_or_resending_the_same_data_finds_nothing_new(both, hospital):
    run_checks(both.pk)
    assert run_checks(both.pk).new == 0
    send(hospital, person("p", NHS, "Jones"), metformin("h1", "500mg twice daily with meals"))
    assert run_checks(both.pk).new == 0
    assert Finding.objects.count() == 1


def test_a_later_version_that_agrees_resolves_the_finding(both, hospital):
    run_checks(both.pk)
    send(hospital, person("p", NHS, "Jones"), metformin("h1", "500mg once daily with breakfast"))
    outcome = run_checks(both.pk)
    assert outcome.resolved == 1
    assert Finding.objects.get().status == Finding.Status.RESOLVED


def test_a_later_version_that_still_disagrees_is_a_new_finding_about_it(both, hospital):
    run_checks(both.pk)
    send(hospital, person("p", NHS, "Jones"), metformin("h1", "1g twice daily"))
    outcome = run_checks(both.pk)
    assert (outcome.new, outcome.resolved) == (1, 1)
    assert Finding.objects.filter(status="open").get().says[
        str(RecordEntry.objects.get(fhir_id="h1").pk)
    ] == ("1g twice daily")


def test_a_medicine_stopped_at_one_holder_and_current_at_another(gp, hospital):
    send(gp, person("p", NHS, "Jones"), metformin("m1", "500mg once daily", status="stopped"))
    send(hospital, person("p", NHS, "Jones"), metformin("h1", "500mg once daily"))
    run_checks(Patient.objects.get(nhs_number=NHS).pk)
    finding = Finding.objects.get()
    assert finding.rule == "medicine-active-and-stopped"
    assert finding.explanation == (
        "City Teaching Hospitals records Metformin 500mg tablets as a current medicine; "
        "Riverside Surgery records it as stopped."
    )


def test_the_same_dose_in_other_words_is_not_a_disagreement(gp, hospital):
    send(gp, person("p", NHS, "Jones"), metformin("m1", "500mg BD"))
    send(hospital, person("p", NHS, "Jones"), metformin("h1", "Take 500 mg twice a day with food"))
    assert run_checks(Patient.objects.get(nhs_number=NHS).pk).new == 0


def test_a_structured_dose_is_read_as_numbers(gp):
    send(gp, person("p", NHS, "Jones"))
    resource = {
        **metformin("m1", ""),
        "dosageInstruction": [
            {
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "g", "code": "g"}}],
                "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
            }
        ],
    }
    dose = dose_of(Item(RecordEntry(resource_type="MedicationRequest"), resource))
    assert (dose.amount_mg, dose.per_day) == (1000, 3)
    assert medicine_key(Item(RecordEntry(display=""), resource)) == "metformin"


def test_one_holders_copies_never_disagree_with_each_other(gp):
    send(
        gp,
        person("p", NHS, "Jones"),
        metformin("m1", "500mg once daily"),
        metformin("m2", "500mg twice daily"),
    )
    run_checks(Patient.objects.get(nhs_number=NHS).pk)
    assert not Finding.objects.filter(kind="agreement").exists()


def test_a_change_queues_its_patient_and_the_task_checks_them(
    gp, hospital, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        send(gp, person("p", NHS, "Jones"), metformin("m1", "500mg once daily"))
        send(hospital, person("p", NHS, "Jones"), metformin("h1", "500mg twice daily"))
    patient = Patient.objects.get(nhs_number=NHS)
    assert PendingCheck.objects.filter(patient=patient).exists()
    result = check_pending()
    assert result["patients"] == 1
    assert result["new"] == 1
    assert not PendingCheck.objects.exists()


def test_a_change_made_while_its_patient_is_being_checked_is_checked_next(
    gp, hospital, django_capture_on_commit_callbacks, monkeypatch
):
    """The live-worker race: the hospital's copy arrives while the GP's is being checked.
    The check under way must not let go of the patient, or the new copy is never checked."""
    import accuracy.checks.engine as engine
    from accuracy import tasks

    with django_capture_on_commit_callbacks(execute=False):
        send(gp, person("p", NHS, "Jones"), metformin("m1", "500mg once daily"))
    real = engine.run_checks
    arrived = []

    def check_while_a_change_arrives(patient_id):
        outcome = real(patient_id)
        if not arrived:
            arrived.append(True)
            with django_capture_on_commit_callbacks(execute=False):
                send(hospital, person("p", NHS, "Jones"), metformin("h1", "500mg twice daily"))
        return outcome

    monkeypatch.setattr(engine, "run_checks", check_while_a_change_arrives)
    assert tasks.check_pending(limit=1)["new"] == 0
    assert PendingCheck.objects.count() == 1, "the change that came in is still waiting"
    assert tasks.check_pending()["new"] == 1
    assert not PendingCheck.objects.exists()


def test_the_record_for_checks_holds_every_holders_items(both):
    record = load_record(both)
    assert {item.holder.ods_code for item in record.items} == {"A10001", "RX100"}
