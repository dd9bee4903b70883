"""The conformance rules (accuracy.checks.conformance): SNOMED CT and LOINC check digits,
NHS numbers, and one code named as two different things by two holders."""

import copy

import pytest

from accuracy.checks import load_rules
from accuracy.checks.base import RULES
from accuracy.checks.conformance import loinc_problem, snomed_problem, verhoeff_valid
from accuracy.checks.engine import hits_of, load_record, run_checks
from accuracy.models import Finding
from phr.models import Patient
from tests.accuracy.checks_samples import ingest, kreiger, resources
from tests.feeds import NHS, send

pytestmark = pytest.mark.django_db

__all__ = ["kreiger"]  # the fixture, shared with the other check tests
load_rules()
MINE = ("snomed-check-digit", "loinc-check-digit", "nhs-number-invalid", "display-contradicts")
SNOMED = "http://snomed.info/sct"


def with_check_digit(stem: str) -> str:
    return next(stem + d for d in "0123456789" if verhoeff_valid(stem + d))


def patient(pid="p1", nhs="9434765919"):
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": NHS, "value": nhs}]}


def condition(cid, code, display, pid="p1"):
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
    }


def test_known_codes_pass():
    for code in ("38341003", "44054006", "195967001", "22298006", "1091811000000102"):
        assert snomed_problem(code) == "", code
    for code in ("29463-7", "8480-6", "4548-4", "2160-0", "718-7", "LA33-6"):
        assert loinc_problem(code) == "", code


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("38341004", "fails its Verhoeff check digit"),
        ("038341003", "not a SNOMED CT identifier"),
        ("34552-0", "not a SNOMED CT identifier"),
        ("12345", "not a SNOMED CT identifier"),
        (with_check_digit("1234501"), "a description identifier"),
        (with_check_digit("1234502"), "a relationship identifier"),
        (with_check_digit("1234503"), "partition identifier 03"),
    ],
)
def test_snomed_problems(code, says):
    assert says in snomed_problem(code)


@pytest.mark.parametrize(
    ("code", "says"),
    [("29463-8", "check digit"), ("29463", "form"), ("8480-", "form"), ("abc-1", "form")],
)
def test_loinc_problems(code, says):
    assert says in loinc_problem(code)


def test_the_clean_sample_gives_no_conformance_finding(kreiger, hospital):
    person = ingest(hospital, kreiger)

    run_checks(person.pk)

    assert not Finding.objects.filter(rule__in=MINE).exists()


def test_a_loinc_code_with_a_wrong_check_digit_is_found_and_a_correction_resolves_it(kreiger, hospital):
    wrong = copy.deepcopy(kreiger)
    weight = next(r for r in resources(wrong, "Observation") if r["code"]["coding"][0]["code"] == "29463-7")
    weight["code"]["coding"][0]["code"] = "29463-8"
    person = ingest(hospital, wrong)

    run_checks(person.pk)

    found = Finding.objects.get(rule="loinc-check-digit")
    assert found.explanation.startswith(
        "The LOINC code 29463-8 (Body Weight) on Body Weight fails its check digit"
    )
    assert found.severity == "low"
    assert found.audience == "holder"

    weight["code"]["coding"][0]["code"] = "29463-7"
    ingest(hospital, wrong)
    run_checks(person.pk)
    found.refresh_from_db()
    assert found.status == Finding.Status.RESOLVED


def test_a_snomed_code_with_a_wrong_last_digit_is_found(kreiger, hospital):
    wrong = copy.deepcopy(kreiger)
    coding = resources(wrong, "Condition")[0]["code"]["coding"][0]
    right = coding["code"]
    coding["code"] = right[:-1] + str((int(right[-1]) + 1) % 10)
    person = ingest(hospital, wrong)

    run_checks(person.pk)

    found = Finding.objects.get(rule="snomed-check-digit")
    assert f"The SNOMED CT code {coding['code']}" in found.explanation
    assert "fails its Verhoeff check digit" in found.explanation


def test_an_nhs_number_that_fails_its_check_is_found(gp):
    send(gp, patient(nhs="9434765910"))

    hits = hits_of(load_record(Patient.objects.get()), [RULES["nhs-number-invalid"]])

    assert len(hits) == 1
    rule, hit = hits[0]
    assert rule.severity == "high"
    assert rule.audience == "both"
    assert rule.explain(hit).startswith(
        "Riverside Surgery's copy of your details has the NHS number 943 476 5910, which cannot be right"
    )


def test_a_valid_nhs_number_is_not_found(gp):
    send(gp, patient())
    assert hits_of(load_record(Patient.objects.get()), [RULES["nhs-number-invalid"]]) == []


def test_one_code_named_as_two_unrelated_things_is_found(gp, hospital):
    send(gp, patient(), condition("c1", "38341003", "Hypertensive disorder"))
    send(hospital, patient(), condition("c2", "38341003", "Asthma"))
    person = Patient.objects.get()

    run_checks(person.pk)

    found = Finding.objects.get(rule="display-contradicts")
    assert "The SNOMED CT code 38341003 is named" in found.explanation
    assert "“Hypertensive disorder”" in found.explanation
    assert "“Asthma”" in found.explanation
    assert found.implicated.count() == 2


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Hypertensive disorder", "Hypertension"),  # one family of words
        ("Hypertensive disorder", "High blood pressure"),  # the portal's own plain name
        ("Body mass index", "BMI"),  # an abbreviation
        ("Anaemia", "Anemia (disorder)"),  # two spellings
        ("Diabetes mellitus type 2", "Type 2 diabetes"),
    ],
)
def test_names_that_may_be_synonyms_are_not_found(gp, hospital, first, second):
    send(gp, patient(), condition("c1", "38341003", first))
    send(hospital, patient(), condition("c2", "38341003", second))

    assert hits_of(load_record(Patient.objects.get()), [RULES["display-contradicts"]]) == []


def test_two_names_at_one_holder_are_not_compared(gp):
    send(
        gp,
        patient(),
        condition("c1", "38341003", "Hypertensive disorder"),
        condition("c2", "38341003", "Asthma"),
    )

    assert hits_of(load_record(Patient.objects.get()), [RULES["display-contradicts"]]) == []
