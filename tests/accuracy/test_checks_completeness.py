"""Completeness and duplicates (accuracy.checks.completeness): a medicine with no dose, an
allergy in words only, a final result with no value, and the same item twice at one holder."""

import copy
import json
import uuid

import pytest

import accuracy.checks.completeness
import accuracy.checks.holders  # noqa: F401
from accuracy.checks.base import RULES
from accuracy.checks.engine import hits_of, load_record, run_checks
from accuracy.models import Finding
from phr.ingest import ingest_documents
from phr.models import Patient
from tests.feeds import person, send

pytestmark = pytest.mark.django_db

NHS = "9434765919"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
OUR_RULES = (
    "medicine-without-dose",
    "allergy-without-coded-substance",
    "result-without-value",
    "duplicate-at-holder",
)


def me() -> dict:
    return person("p", NHS, "Okafor")


def patient() -> Patient:
    return Patient.objects.get(nhs_number=NHS)


def checked(rule: str) -> list[Finding]:
    run_checks(patient().pk)
    return list(Finding.objects.filter(rule=rule).order_by("found_at", "id"))


def direct_hits(rule: str, one: Patient | None = None):
    return hits_of(load_record(one or patient()), [RULES[rule]])


def medicine(mid: str = "m1", state: str = "active", statement: bool = False, **dosage) -> dict:
    resource = {
        "resourceType": "MedicationStatement" if statement else "MedicationRequest",
        "id": mid,
        "status": state,
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": {"text": "Ramipril 5mg capsules"},
    }
    if not statement:
        resource["intent"] = "order"
    if dosage:
        resource["dosage" if statement else "dosageInstruction"] = [dosage]
    return resource


def allergy(aid: str = "a1", code: dict | None = None, verification: str = "confirmed") -> dict:
    resource = {
        "resourceType": "AllergyIntolerance",
        "id": aid,
        "patient": {"reference": "Patient/p"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "verificationStatus": {"coding": [{"code": verification}]},
    }
    if code is not None:
        resource["code"] = code
    return resource


def result(oid: str = "o1", status: str = "final", when: str = "2024-05-01T09:30:00Z", **more) -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": LOINC, "code": "2951-2", "display": "Sodium"}], "text": "Sodium"},
        "effectiveDateTime": when,
        **more,
    }


SODIUM = {
    "valueQuantity": {"value": 140, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
}


# --- medicine-without-dose -------------------------------------------------------------


@pytest.mark.parametrize("statement", [False, True])
def test_an_active_medicine_with_no_dose(gp, statement):
    send(gp, me(), medicine(statement=statement))
    [finding] = checked("medicine-without-dose")
    assert finding.kind == "completeness"
    assert finding.severity == "low"
    assert finding.audience == "holder"
    assert finding.explanation == (
        "Riverside Surgery's record has Ramipril 5mg capsules with no dose: "
        "it does not say how much to take or when."
    )


def test_a_dosage_with_neither_words_nor_dose_nor_timing_is_no_dose(gp):
    send(gp, me(), medicine(route={"text": "By mouth"}))
    assert len(checked("medicine-without-dose")) == 1


@pytest.mark.parametrize(
    "sent",
    [
        medicine(text="One capsule each morning"),
        medicine(patientInstruction="Take one a day"),
        medicine(doseAndRate=[{"doseQuantity": {"value": 1, "unit": "capsule"}}]),
        medicine(timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}),
        medicine(statement=True, text="One capsule each morning"),
        medicine(state="stopped"),
        medicine(state="completed", statement=True),
    ],
)
def test_no_dose_finding_on_clean_records(gp, sent):
    send(gp, me(), sent)
    assert checked("medicine-without-dose") == []


def test_a_later_version_with_a_dose_resolves_it(gp):
    send(gp, me(), medicine())
    [finding] = checked("medicine-without-dose")
    send(gp, medicine(text="One capsule each morning"))
    [after] = checked("medicine-without-dose")
    assert after.pk == finding.pk
    assert after.status == Finding.Status.RESOLVED


# --- allergy-without-coded-substance ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ({"text": "Elastoplast"}, "elastoplast"),
        (None, "with no substance named"),
        ({}, "with no substance named"),
    ],
)
def test_an_allergy_in_words_only(gp, code, words):
    send(gp, me(), allergy(code=code))
    [finding] = checked("allergy-without-coded-substance")
    assert finding.explanation == (
        f"Riverside Surgery's record has an allergy ({words}) that is written in words only, "
        "so other systems cannot check medicines against it."
    )


@pytest.mark.parametrize(
    "sent",
    [
        allergy(
            code={"coding": [{"system": SNOMED, "code": "91936005", "display": "Allergy to penicillin"}]}
        ),
        allergy(code={"text": "Elastoplast"}, verification="refuted"),
        allergy(code={"text": "Elastoplast"}, verification="entered-in-error"),
    ],
)
def test_no_allergy_code_finding_on_clean_records(gp, sent):
    send(gp, me(), sent)
    assert checked("allergy-without-coded-substance") == []


def test_coding_the_allergy_resolves_it(gp):
    send(gp, me(), allergy(code={"text": "Penicillin"}))
    [finding] = checked("allergy-without-coded-substance")
    send(gp, allergy(code={"coding": [{"system": SNOMED, "code": "764146007", "display": "Penicillin"}]}))
    [after] = checked("allergy-without-coded-substance")
    assert after.pk == finding.pk
    assert after.status == Finding.Status.RESOLVED


# --- result-without-value --------------------------------------------------------------


@pytest.mark.parametrize("status", ["final", "amended"])
def test_a_final_result_with_no_value(gp, status):
    send(gp, me(), result(status=status))
    [finding] = checked("result-without-value")
    assert finding.explanation == (
        "Riverside Surgery's record has a final result for sodium with no value and no reason why."
    )


def test_components_without_values_are_no_value(gp):
    send(gp, me(), result(component=[{"code": {"text": "Systolic"}}]))
    assert len(checked("result-without-value")) == 1


@pytest.mark.parametrize(
    "sent",
    [
        result(**SODIUM),
        result(valueString="Normal"),
        result(dataAbsentReason={"coding": [{"code": "not-performed"}]}),
        result(hasMember=[{"reference": "Observation/o2"}]),
        result(component=[{"code": {"text": "Systolic"}, "valueQuantity": {"value": 120, "unit": "mmHg"}}]),
        result(status="preliminary"),
        result(status="registered"),
    ],
)
def test_no_value_finding_on_clean_records(gp, sent):
    send(gp, me(), sent)
    assert checked("result-without-value") == []


def test_a_later_version_with_the_value_resolves_it(gp):
    send(gp, me(), result())
    [finding] = checked("result-without-value")
    send(gp, result(**SODIUM))
    [after] = checked("result-without-value")
    assert after.status == Finding.Status.RESOLVED
    assert after.pk == finding.pk


# --- duplicate-at-holder ---------------------------------------------------------------


def test_the_same_result_twice_at_one_holder(gp):
    send(gp, me(), result("o1", **SODIUM), result("o2", when="2024-05-01T09:30:40Z", **SODIUM))
    [finding] = checked("duplicate-at-holder")
    assert finding.kind == "duplicate"
    assert finding.audience == "holder"
    assert finding.explanation == "Riverside Surgery's record has sodium twice, on 1 May 2024 at 10:30am."
    assert finding.implicated.count() == 2


def test_three_copies_are_one_finding(gp):
    send(gp, me(), *(result(f"o{n}", **SODIUM) for n in range(3)))
    [finding] = checked("duplicate-at-holder")
    assert "sodium 3 times" in finding.explanation
    assert finding.implicated.count() == 3


def test_a_problem_twice_in_words_only(gp):
    problem = {"resourceType": "Condition", "subject": {"reference": "Patient/p"}, "code": {"text": "Asthma"}}
    send(
        gp,
        me(),
        problem | {"id": "c1", "recordedDate": "2020-01-01"},
        problem | {"id": "c2", "recordedDate": "2020-01-01"},
    )
    assert len(checked("duplicate-at-holder")) == 1


@pytest.mark.parametrize(
    "second",
    [
        result("o2", valueQuantity={"value": 141, "unit": "mmol/L"}),  # another value
        result("o2", when="2024-05-01T09:31:00Z", **SODIUM),  # another minute
        result(
            "o2", code={"coding": [{"system": LOINC, "code": "2823-3", "display": "Potassium"}]}, **SODIUM
        ),
        result("o2", status="entered-in-error", **SODIUM),  # withdrawn
    ],
)
def test_no_duplicate_finding_on_clean_records(gp, second):
    send(gp, me(), result("o1", **SODIUM), second)
    assert checked("duplicate-at-holder") == []


def test_the_same_item_at_two_holders_is_not_a_duplicate(gp, hospital):
    send(gp, me(), result("o1", **SODIUM))
    send(hospital, me(), result("o1", **SODIUM))
    assert checked("duplicate-at-holder") == []


def test_withdrawing_the_copy_resolves_the_duplicate(gp):
    send(gp, me(), result("o1", **SODIUM), result("o2", **SODIUM))
    [finding] = checked("duplicate-at-holder")
    send(gp, result("o2", status="entered-in-error", **SODIUM))
    [after] = checked("duplicate-at-holder")
    assert after.pk == finding.pk
    assert after.status == Finding.Status.RESOLVED


# --- the Synthea samples ---------------------------------------------------------------


def synthea(samples, name: str) -> dict:
    return json.loads(next((samples / "synthea").glob(f"{name}_*.json")).read_text())


def ingest(org, bundle) -> Patient:
    assert ingest_documents([("synthea", bundle)], organisation=org).rejected == 0
    [one] = Patient.objects.all()
    return one


def test_a_clean_split_of_clemente_finds_nothing(samples, gp, hospital):
    bundle = synthea(samples, "Clemente_Kreiger")
    ingest(gp, bundle)
    one = ingest(hospital, copy.deepcopy(bundle))
    run_checks(one.pk)
    assert not Finding.objects.filter(rule__in=OUR_RULES).exists()


def test_a_copied_synthea_result_is_a_duplicate_at_that_holder_only(samples, gp, hospital):
    bundle = synthea(samples, "Clemente_Kreiger")
    ingest(gp, bundle)
    changed = copy.deepcopy(bundle)
    first = next(e for e in changed["entry"] if e["resource"]["resourceType"] == "Observation")
    twin = copy.deepcopy(first)
    new_id = str(uuid.uuid4())
    twin["fullUrl"], twin["resource"]["id"] = f"urn:uuid:{new_id}", new_id
    changed["entry"].append(twin)
    one = ingest(hospital, changed)
    run_checks(one.pk)
    [finding] = Finding.objects.filter(rule="duplicate-at-holder")
    assert finding.explanation.startswith("City Teaching Hospitals's record has")
    assert {e.entry.fhir_id for e in finding.implicated.all()} == {first["resource"]["id"], new_id}


def test_synthea_medicines_sent_without_a_dose(samples, gp):
    """Norine Bruen's active prescriptions of hydrochlorothiazide, chlorphenamine and Errin
    come with no dosageInstruction at all; the active ones that have one are not found."""
    one = ingest(gp, synthea(samples, "Norine_Bruen"))
    found = sorted(hit.says[hit.items[0].entry.pk] for _, hit in direct_hits("medicine-without-dose", one))
    assert found == [
        "Chlorpheniramine Maleate 2 MG/ML Oral Solution, with no dose",
        "Errin 28 Day Pack, with no dose",
        "Hydrochlorothiazide 25 MG, with no dose",
    ]


def test_synthea_repeated_panels_are_found_as_duplicates(samples, gp):
    """Fletcher Hyatt's bundle has two encounters at 19 January 1996 7:20pm, each with the
    same metabolic panel to the last decimal place and the same chest X-ray: sent twice."""
    one = ingest(gp, synthea(samples, "Fletcher_Hyatt"))
    hits = direct_hits("duplicate-at-holder", one)
    sodium = [h for _, h in hits if h.items[0].entry.display.startswith("Sodium")]
    [hit] = sodium
    assert len({i.entry.fhir_id for i in hit.items}) == 2
