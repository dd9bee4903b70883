"""The plausibility rules (accuracy.checks.plausibility): values, units, dates, conditions
and medicines that cannot be true of a living person, on the Synthea samples with one
error put in, and on small feeds."""

import copy
from datetime import date, timedelta

import pytest
from django.utils import timezone

from accuracy.checks import load_rules
from accuracy.checks.base import RULES
from accuracy.checks.conformance import loinc_problem, snomed_problem
from accuracy.checks.engine import hits_of, load_record, run_checks
from accuracy.checks.plausibility import CONDITION_LIMITS, MEASURES, value_out_of_range
from accuracy.models import Finding, FindingEntry
from phr.models import Patient
from tests.accuracy.checks_samples import ingest, kreiger, resources
from tests.feeds import NHS, send

pytestmark = pytest.mark.django_db

__all__ = ["kreiger"]  # the fixture, shared with the other check tests
load_rules()
MINE = (
    "value-out-of-range",
    "unit-does-not-fit",
    "date-impossible",
    "condition-impossible-for-age-or-sex",
    "medicine-unchanged-too-long",
)
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


def observation(bundle, loinc):
    return next(r for r in resources(bundle, "Observation") if r["code"]["coding"][0]["code"] == loinc)


def findings(rule):
    return Finding.objects.filter(rule=rule)


def patient(pid="p1", nhs="9434765919", gender="male", born="1970-01-01", **extra):
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": "Test", "given": ["Sam"]}],
        "gender": gender,
        "birthDate": born,
        **extra,
    }


def condition(cid, code, display, onset="2020-01-01", pid="p1"):
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "onsetDateTime": onset,
    }


def measured(oid, loinc, value, unit, code=None, when="2020-05-01", pid="p1"):
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": code or unit,
        },
    }


def medicine(mid, code, text, authored, status="active", pid="p1"):
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}],
            "text": text,
        },
        "authoredOn": authored,
    }


def rule_hits(person, rule_id):
    return hits_of(load_record(person), [RULES[rule_id]])


# --- The clean sample ---------------------------------------------------------------------


def test_the_clean_sample_gives_no_plausibility_finding(kreiger, hospital):
    person = ingest(hospital, kreiger)

    run_checks(person.pk)

    assert not Finding.objects.filter(rule__in=MINE).exists()


def test_there_are_limits_for_at_least_twenty_measurements_and_every_code_is_valid():
    assert len({m.noun for m in MEASURES}) >= 20
    for measure in MEASURES:
        assert measure.low < measure.high
        assert all(loinc_problem(c) == "" for c in measure.loinc), measure.noun
        assert all(snomed_problem(c) == "" for c in measure.snomed), measure.noun
    for code in CONDITION_LIMITS:
        assert snomed_problem(code) == "", code
    assert len(CONDITION_LIMITS) >= 8


# --- value-out-of-range and unit-does-not-fit ---------------------------------------------


def test_a_weight_of_750_kg_is_found_and_a_later_version_resolves_it(kreiger, hospital):
    wrong = copy.deepcopy(kreiger)
    weight = observation(wrong, "29463-7")
    weight["valueQuantity"]["value"] = 750
    person = ingest(hospital, wrong)

    run_checks(person.pk)

    found = findings("value-out-of-range").get()
    assert found.explanation == (
        "A weight of 750 kg is not possible: it may have been recorded in the wrong unit or mistyped."
    )
    assert found.severity == "medium"
    assert found.audience == "both"
    assert found.kind == "plausibility"
    assert next(iter(found.says.values())).startswith("a weight of 750 kg, on ")
    assert FindingEntry.objects.get(finding=found).entry.resource_type == "Observation"
    assert not findings("unit-does-not-fit").exists()

    weight["valueQuantity"]["value"] = 75
    ingest(hospital, wrong)
    run_checks(person.pk)

    found.refresh_from_db()
    assert found.status == Finding.Status.RESOLVED


def test_a_blood_pressure_component_out_of_range_is_found(kreiger, hospital):
    wrong = copy.deepcopy(kreiger)
    pressure = next(r for r in resources(wrong, "Observation") if r.get("component"))
    systolic = next(c for c in pressure["component"] if c["code"]["coding"][0]["code"] == "8480-6")
    systolic["valueQuantity"]["value"] = 1250
    person = ingest(hospital, wrong)

    run_checks(person.pk)

    found = findings("value-out-of-range").get()
    assert found.explanation.startswith("A systolic (upper) blood pressure of 1,250 mmHg is not possible")


def test_a_weight_in_mmol_per_litre_is_a_unit_that_does_not_fit(kreiger, hospital):
    wrong = copy.deepcopy(kreiger)
    weight = observation(wrong, "29463-7")
    weight["valueQuantity"].update(unit="mmol/L", code="mmol/L")
    person = ingest(hospital, wrong)

    run_checks(person.pk)

    found = findings("unit-does-not-fit").get()
    assert found.explanation == "The weight is recorded in mmol/L, which is not a unit of that measurement."
    assert found.severity == "low"
    assert found.audience == "holder"
    assert not findings("value-out-of-range").exists()


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "code", "wrong"),
    [
        ("29463-7", 165, "lb", "[lb_av]", False),
        ("29463-7", 1650, "lb", "[lb_av]", True),
        ("8310-5", 98.6, "degF", "[degF]", False),
        ("8310-5", 986, "degF", "[degF]", True),
        ("8310-5", 37, "Cel", None, False),
        ("8310-5", 3.7, "Cel", None, True),
        ("4548-4", 48, "mmol/mol", None, False),
        ("4548-4", 48, "%", None, True),
        ("4548-4", 6.5, "%", None, False),
        ("2160-0", 1.1, "mg/dL", None, False),
        ("2160-0", 95, "umol/L", None, False),
        ("2160-0", 95, "mmol/L", None, True),
        ("718-7", 13.5, "g/dL", None, False),
        ("718-7", 135, "g/L", None, False),
        ("718-7", 135, "g/dL", None, True),
        ("2093-3", 200, "mg/dL", None, False),
        ("2093-3", 200, "mmol/L", None, True),
        ("2345-7", 90, "mg/dL", None, False),
        ("2345-7", 90, "mmol/L", None, False),
        ("2345-7", 900, "mmol/L", None, True),
        ("59408-5", 97, "%", None, False),
        ("59408-5", 0.97, "%", None, True),
        ("59408-5", 101, "%", None, True),
        ("777-3", 250, "10*9/L", None, False),
        ("777-3", 250000, "/uL", None, False),
        ("777-3", 250000, "10*9/L", None, True),
        ("6690-2", 7.2, "x10^9/l", None, False),
        ("2823-3", 4.2, "mmol/l", None, False),
        ("2823-3", 42, "mmol/l", None, True),
        ("2951-2", 14, "mmol/L", None, True),
        ("33914-3", 65, "mL/min/{1.73_m2}", None, False),
        ("33914-3", -5, "mL/min/{1.73_m2}", None, True),
        ("8867-4", 72, "/min", None, False),
        ("8867-4", 720, "/min", None, True),
        ("8302-2", 1.75, "m", None, False),
        ("8302-2", 175, "m", None, True),
        ("1742-6", 30, "U/L", None, False),
        ("22664-7", 5.5, "mmol/L", None, False),
        ("99999-9", 750, "kg", None, False),  # a test not known here is not judged
    ],
)
def test_values_are_judged_after_converting_their_unit(gp, loinc, value, unit, code, wrong):
    send(gp, patient(), measured("o1", loinc, value, unit, code))
    person = Patient.objects.get()

    hits = hits_of(load_record(person), [RULES["value-out-of-range"]])

    assert bool(hits) is wrong


def test_a_value_entered_in_error_is_not_judged(gp):
    bad = measured("o1", "29463-7", 750, "kg")
    bad["status"] = "entered-in-error"
    send(gp, patient(), bad)

    assert list(value_out_of_range(load_record(Patient.objects.get()))) == []


# --- date-impossible ----------------------------------------------------------------------


def test_a_date_in_the_future_is_found_and_a_corrected_date_resolves_it(kreiger, hospital):
    wrong = copy.deepcopy(kreiger)
    ahead = (timezone.localdate() + timedelta(days=400)).isoformat()
    item = observation(wrong, "29463-7")
    item["effectiveDateTime"] = ahead
    person = ingest(hospital, wrong)

    run_checks(person.pk)

    found = findings("date-impossible").get()
    assert "which is in the future: the date may have been mistyped." in found.explanation
    assert found.severity == "medium"
    assert found.audience == "both"

    item["effectiveDateTime"] = "2015-09-14"
    ingest(hospital, wrong)
    run_checks(person.pk)
    found.refresh_from_db()
    assert found.status == Finding.Status.RESOLVED


def test_tomorrow_is_not_the_future_yet(gp):
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    send(gp, patient(), measured("o1", "29463-7", 70, "kg", when=tomorrow))

    assert rule_hits(Patient.objects.get(), "date-impossible") == []


def test_a_date_before_birth_is_found_but_not_a_year_that_holds_the_birthday(kreiger, hospital):
    wrong = copy.deepcopy(kreiger)
    resources(wrong, "Immunization")[0]["occurrenceDateTime"] = "1948-07-02T10:00:00+00:00"
    resources(wrong, "Condition")[0]["onsetDateTime"] = "1984"  # born 2 July 1984: may be true
    person = ingest(hospital, wrong)

    run_checks(person.pk)

    found = findings("date-impossible").get()
    assert "is dated 2 July 1948" in found.explanation
    assert "which is before the date of birth, 2 July 1984" in found.explanation


def test_a_date_after_death_is_found_but_not_the_death_certificate(gp):
    died = patient(deceasedDateTime="2020-03-01T10:00:00+00:00")
    certificate = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p1"},
        "type": [{"coding": [{"system": SNOMED, "code": "308646001", "display": "Death certification"}]}],
        "period": {"start": "2020-03-04T10:00:00+00:00"},
    }
    recorded_after = condition("c1", "22298006", "Myocardial infarction", onset="2020-02-28")
    recorded_after["recordedDate"] = "2020-03-10"
    send(
        gp,
        died,
        certificate,
        recorded_after,
        medicine("m1", "197361", "Amlodipine 5 mg tablets", "2020-06-01"),
    )

    hits = rule_hits(Patient.objects.get(), "date-impossible")

    assert [h.items[0].entry.fhir_id for _, h in hits] == ["m1"]
    assert "which is after the date of death, 1 March 2020" in RULES["date-impossible"].explain(hits[0][1])


# --- condition-impossible-for-age-or-sex ---------------------------------------------------


def test_a_pregnancy_for_a_man_is_found(kreiger, hospital):
    wrong = copy.deepcopy(kreiger)
    wrong["entry"].append(
        {
            "resource": {
                **condition("preg", "72892002", "Normal pregnancy"),
                "subject": resources(wrong, "Condition")[0]["subject"],
            }
        }
    )
    person = ingest(hospital, wrong)

    run_checks(person.pk)

    found = findings("condition-impossible-for-age-or-sex").get()
    assert found.explanation.startswith(
        "Normal pregnancy is recorded for a patient whose recorded sex is male"
    )
    assert found.audience == "holder"


def test_a_pregnancy_for_a_woman_is_not_found_nor_for_a_man_whose_record_speaks_of_gender_identity(
    gp, hospital
):
    send(gp, patient(gender="female"), condition("c1", "72892002", "Normal pregnancy", onset="2000-05-01"))
    assert rule_hits(Patient.objects.get(), "condition-impossible-for-age-or-sex") == []

    send(
        hospital,
        patient("p2", nhs="9000000009"),
        condition("c2", "72892002", "Normal pregnancy", pid="p2"),
        condition("c3", "93461009", "Gender dysphoria", pid="p2"),
    )
    assert (
        rule_hits(Patient.objects.get(nhs_number="9000000009"), "condition-impossible-for-age-or-sex") == []
    )


def test_senile_dementia_at_five_is_found_but_not_at_seventy(gp):
    send(
        gp,
        patient(born="1940-01-01"),
        condition("young", "15662003", "Senile dementia", onset="1945-06-01"),
        condition("old", "15662003", "Senile dementia", onset="2010-06-01"),
    )

    hits = rule_hits(Patient.objects.get(), "condition-impossible-for-age-or-sex")

    assert [h.items[0].entry.fhir_id for _, h in hits] == ["young"]
    assert (
        RULES["condition-impossible-for-age-or-sex"]
        .explain(hits[0][1])
        .startswith("Senile dementia is recorded at the age of 5")
    )


# --- medicine-unchanged-too-long ------------------------------------------------------------


def test_a_medicine_current_since_long_ago_is_found_unless_prescribed_again_or_stopped(gp):
    send(
        gp,
        patient(),
        medicine("old", "197361", "Amlodipine 5 mg tablets", "2001-04-02"),
        medicine("renewed", "310798", "Hydrochlorothiazide 25 mg tablets", "2001-04-02"),
        medicine("renewal", "310798", "Hydrochlorothiazide 25 mg tablets", "2024-04-02", status="completed"),
        medicine("stopped", "860975", "Metformin 500 mg tablets", "2001-04-02", status="stopped"),
        medicine("recent", "314076", "Lisinopril 10 mg tablets", "2019-04-02"),
    )

    hits = rule_hits(Patient.objects.get(), "medicine-unchanged-too-long")

    assert [h.items[0].entry.fhir_id for _, h in hits] == ["old"]
    assert (
        RULES["medicine-unchanged-too-long"]
        .explain(hits[0][1])
        .startswith("Amlodipine 5 mg tablets has been recorded as current since 2001")
    )


def test_a_medicine_prescribed_again_resolves_the_finding(gp):
    send(gp, patient(), medicine("old", "197361", "Amlodipine 5 mg tablets", "2001-04-02"))
    person = Patient.objects.get()
    run_checks(person.pk)
    found = findings("medicine-unchanged-too-long").get()
    assert found.severity == "low"
    assert found.audience == "holder"

    send(gp, patient(), medicine("old", "197361", "Amlodipine 5 mg tablets", date.today().isoformat()))
    run_checks(person.pk)

    found.refresh_from_db()
    assert found.status == Finding.Status.RESOLVED
