"""Agreement across holders (accuracy.checks.holders): an allergy at one holder against a
prescription at another, a problem's status, the personal details, and an item withdrawn
as entered in error at one holder that another still records."""

import copy
import json

import pytest

import accuracy.checks.holders  # noqa: F401  (registers the rules)
from accuracy.checks.base import RULES
from accuracy.checks.engine import hits_of, load_record, run_checks
from accuracy.models import Finding
from phr.ingest import ingest_documents
from phr.models import Patient
from tests.feeds import person, send

pytestmark = pytest.mark.django_db

NHS = "9434765919"
SNOMED = "http://snomed.info/sct"
HOLDER_RULES = (
    "allergy-vs-prescription",
    "problem-status-disagrees",
    "personal-details-disagree",
    "entered-in-error-elsewhere",
)


def me(**changes) -> dict:
    return person("p", NHS, "Okafor") | changes


def patient() -> Patient:
    return Patient.objects.get(nhs_number=NHS)


def status(code: str) -> dict:
    return {"coding": [{"code": code}]}


def allergy(aid: str, *, code: str = "", text: str = "", clinical="active", verification="confirmed") -> dict:
    concept = {}
    if code:
        concept["coding"] = [{"system": SNOMED, "code": code, "display": text}]
    elif text:
        concept["text"] = text
    resource = {
        "resourceType": "AllergyIntolerance",
        "id": aid,
        "patient": {"reference": "Patient/p"},
        "code": concept,
        "verificationStatus": status(verification),
    }
    if clinical:
        resource["clinicalStatus"] = status(clinical)
    return resource


def prescription(mid: str, text: str, state: str = "active") -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": state,
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": {"text": text},
        "dosageInstruction": [{"text": "One capsule three times a day"}],
    }


def condition(cid: str, *, code="195967001", text="Asthma", clinical="active", verification="confirmed"):
    concept = {"coding": [{"system": SNOMED, "code": code, "display": text}]} if code else {"text": text}
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": "Patient/p"},
        "code": concept,
        "clinicalStatus": status(clinical),
        "verificationStatus": status(verification),
    }


def findings(rule: str):
    return list(Finding.objects.filter(rule=rule).order_by("found_at", "id"))


def checked(rule: str) -> list[Finding]:
    run_checks(patient().pk)
    return findings(rule)


def direct_hits(rule: str):
    return hits_of(load_record(patient()), [RULES[rule]])


def direct_hits_of_the_one(rule: str):
    """The rule's hits on the only patient there is (a Synthea patient has no NHS number)."""
    return hits_of(load_record(Patient.objects.get()), [RULES[rule]])


# --- allergy-vs-prescription -----------------------------------------------------------


def test_penicillin_allergy_at_the_gp_against_amoxicillin_at_the_hospital(gp, hospital):
    send(gp, me(), allergy("a1", code="91936005", text="Allergy to penicillin"))
    send(hospital, me(), prescription("m1", "Amoxicillin 500mg capsules"))
    [finding] = checked("allergy-vs-prescription")
    assert finding.severity == "high"
    assert finding.audience == "both"
    assert finding.kind == "agreement"
    assert finding.explanation == (
        "Riverside Surgery's record says you are allergic to penicillin; City Teaching Hospitals's "
        "record prescribes Amoxicillin 500mg capsules, a penicillin, and does not record the allergy."
    )
    assert sorted(finding.says.values()) == [
        "you are allergic to penicillin",
        "you are prescribed Amoxicillin 500mg capsules, and it records no allergy to penicillins",
    ]
    assert {e.owner for e in finding.implicated.all()} == {gp, hospital}


@pytest.mark.parametrize(
    ("allergy_text", "medicine", "words"),
    [
        ("Ibuprofen", "Naproxen 250mg tablets", "an anti-inflammatory painkiller (NSAID)"),
        ("NSAID allergy", "Diclofenac sodium 50mg gastro-resistant tablets", "an anti-inflammatory"),
        ("Aspirin", "Mefenamic acid 500mg tablets", "(NSAID)"),
        ("Allergy to sulphonamides", "Co-trimoxazole 960mg tablets", "a sulphonamide"),
        ("Sulfa drugs", "Sulfasalazine 500mg tablets", "a sulphonamide"),
        ("Flucloxacillin", "Co-amoxiclav 500mg/125mg tablets", "a penicillin"),
        ("Penicillins", "Phenoxymethylpenicillin 250mg tablets", "a penicillin"),
    ],
)
def test_each_class_is_matched_by_name_in_words(gp, hospital, allergy_text, medicine, words):
    send(gp, me(), allergy("a1", text=allergy_text))
    send(hospital, me(), prescription("m1", medicine))
    [(rule, hit)] = direct_hits("allergy-vs-prescription")
    assert words in rule.explain(hit)


def test_allergy_by_substance_code_matches(gp, hospital):
    send(gp, me(), allergy("a1", code="372687004", text="Amoxicillin"))
    send(hospital, me(), prescription("m1", "Piperacillin with tazobactam 4.5g infusion"))
    assert len(checked("allergy-vs-prescription")) == 1


def test_no_finding_when_the_prescriber_records_the_allergy_itself(gp, hospital):
    send(gp, me(), allergy("a1", code="91936005", text="Allergy to penicillin"))
    send(hospital, me(), allergy("h1", text="Penicillin allergy"), prescription("m1", "Amoxicillin 500mg"))
    assert checked("allergy-vs-prescription") == []


@pytest.mark.parametrize(
    "sent",
    [
        # another class of medicine
        (
            allergy("a1", code="91936005", text="Allergy to penicillin"),
            prescription("m1", "Paracetamol 500mg"),
        ),
        # the prescription has stopped
        (
            allergy("a1", code="91936005", text="Allergy to penicillin"),
            prescription("m1", "Amoxicillin", "stopped"),
        ),
        # the allergy was refuted, or entered in error, or is no longer active
        (allergy("a1", text="Penicillin", verification="refuted"), prescription("m1", "Amoxicillin")),
        (
            allergy("a1", text="Penicillin", verification="entered-in-error"),
            prescription("m1", "Amoxicillin"),
        ),
        (allergy("a1", text="Penicillin", clinical="resolved"), prescription("m1", "Amoxicillin")),
        # no known drug allergies is not an allergy to a class
        (allergy("a1", code="409137002", text="No known drug allergy"), prescription("m1", "Amoxicillin")),
    ],
)
def test_no_finding_on_clean_records(gp, hospital, sent):
    the_allergy, the_medicine = sent
    send(gp, me(), the_allergy)
    send(hospital, me(), the_medicine)
    assert checked("allergy-vs-prescription") == []


def test_one_holder_alone_is_not_a_disagreement(gp):
    send(gp, me(), allergy("a1", text="Penicillin"), prescription("m1", "Amoxicillin 500mg"))
    assert checked("allergy-vs-prescription") == []


def test_the_hospital_recording_a_refuted_copy_still_disagrees(gp, hospital):
    send(gp, me(), allergy("a1", text="Penicillin"))
    send(
        hospital,
        me(),
        allergy("h1", text="Penicillin", verification="refuted"),
        prescription("m1", "Amoxicillin"),
    )
    assert len(checked("allergy-vs-prescription")) == 1


def test_stopping_the_prescription_resolves_the_finding(gp, hospital):
    send(gp, me(), allergy("a1", code="91936005", text="Allergy to penicillin"))
    send(hospital, me(), prescription("m1", "Amoxicillin 500mg capsules"))
    [finding] = checked("allergy-vs-prescription")
    send(hospital, prescription("m1", "Amoxicillin 500mg capsules", "stopped"))
    [after] = checked("allergy-vs-prescription")
    assert after.pk == finding.pk
    assert after.status == Finding.Status.RESOLVED


def test_the_hit_is_the_same_each_run(gp, hospital):
    send(gp, me(), allergy("a1", text="Penicillin"), allergy("a2", text="Amoxicillin"))
    send(hospital, me(), prescription("m1", "Flucloxacillin 500mg"))
    first, second = direct_hits("allergy-vs-prescription"), direct_hits("allergy-vs-prescription")
    assert [[i.entry.pk for i in h.items] for _, h in first] == [
        [i.entry.pk for i in h.items] for _, h in second
    ]
    [(_, hit)] = first
    assert len(hit.items) == 3  # both of the practice's allergies, and the prescription
    run_checks(patient().pk)
    run_checks(patient().pk)
    assert len(findings("allergy-vs-prescription")) == 1


# --- problem-status-disagrees ----------------------------------------------------------


def test_a_problem_current_at_the_gp_and_resolved_at_the_hospital(gp, hospital):
    send(gp, me(), condition("c1"))
    send(hospital, me(), condition("h1", clinical="resolved"))
    [finding] = checked("problem-status-disagrees")
    assert finding.severity == "medium"
    assert finding.audience == "both"
    assert finding.explanation == (
        "Riverside Surgery's record has asthma as a current problem; City Teaching Hospitals's "
        "record says it is resolved."
    )


def test_a_problem_in_words_only_matches_by_its_name(gp, hospital):
    send(gp, me(), condition("c1", code="", text="Type 2 diabetes"))
    send(hospital, me(), condition("h1", code="", text="type 2  Diabetes", clinical="remission"))
    [(rule, hit)] = direct_hits("problem-status-disagrees")
    assert rule.explain(hit).endswith("says it is in remission.")


@pytest.mark.parametrize(
    "hospital_copy",
    [
        condition("h1"),  # both current
        condition("h1", code="38341003", text="Hypertension", clinical="resolved"),  # another problem
        condition("h1", clinical="resolved", verification="entered-in-error"),  # withdrawn
    ],
)
def test_no_status_finding_on_clean_records(gp, hospital, hospital_copy):
    send(gp, me(), condition("c1"))
    send(hospital, me(), hospital_copy)
    assert checked("problem-status-disagrees") == []


def test_a_later_version_fixes_the_status(gp, hospital):
    send(gp, me(), condition("c1"))
    send(hospital, me(), condition("h1", clinical="resolved"))
    [finding] = checked("problem-status-disagrees")
    send(gp, condition("c1", clinical="resolved"))
    [after] = checked("problem-status-disagrees")
    assert after.pk == finding.pk
    assert after.status == Finding.Status.RESOLVED


# --- personal-details-disagree ---------------------------------------------------------


def test_one_finding_per_detail_that_differs(gp, hospital):
    send(gp, me(gender="female", address=[{"line": ["1 High Street"], "postalCode": "LS1 4AP"}]))
    send(
        hospital,
        me(
            birthDate="1970-01-02", gender="female", address=[{"line": ["1 High St"], "postalCode": "ls14ap"}]
        ),
    )
    [finding] = checked("personal-details-disagree")
    assert finding.explanation == (
        "City Teaching Hospitals and Riverside Surgery do not have the same date of birth for you."
    )
    assert sorted(finding.says.values()) == [
        "your date of birth is 1 January 1970",
        "your date of birth is 2 January 1970",
    ]


def test_name_sex_address_practice_and_death_each_found(gp, hospital):
    send(
        gp,
        me(
            gender="female",
            address=[{"postalCode": "LS1 4AP"}],
            generalPractitioner=[{"identifier": {"value": "A10001"}, "display": "Riverside Surgery"}],
            deceasedDateTime="2024-03-01",
        ),
    )
    send(
        hospital,
        me(
            name=[{"family": "Okafor-Smith", "given": ["Test"]}],
            gender="male",
            address=[{"postalCode": "LS2 9JT"}],
            generalPractitioner=[{"identifier": {"value": "B20002"}}],
            deceasedBoolean=False,
        ),
    )
    details = sorted(
        rule.explain(hit).split("the same ")[1] for rule, hit in direct_hits("personal-details-disagree")
    )
    assert details == [
        "address for you.",
        "date of death for you.",
        "name for you.",
        "registered GP practice for you.",
        "sex for you.",
    ]


def test_each_detail_that_differs_is_a_finding_of_its_own(gp, hospital):
    send(gp, me(gender="female"))
    send(hospital, me(birthDate="1970-01-02", gender="male"))
    assert len(checked("personal-details-disagree")) == 2


def test_details_written_differently_but_the_same_agree(gp, hospital):
    send(
        gp,
        me(
            name=[{"family": "Okafor", "given": ["Test"]}],
            address=[{"postalCode": "LS1 4AP"}],
            generalPractitioner=[{"identifier": {"value": "A10001"}, "display": "Riverside Surgery"}],
            deceasedDateTime="2024-03-01",
        ),
    )
    send(
        hospital,
        me(
            name=[{"family": "OKAFOR", "given": ["test "]}],
            address=[{"postalCode": "ls1 4ap"}],
            generalPractitioner=[{"display": "Riverside  surgery"}],
            deceasedBoolean=True,
        ),
    )
    assert checked("personal-details-disagree") == []


def test_a_detail_one_holder_does_not_hold_is_not_a_disagreement(gp, hospital):
    send(gp, me(gender="female"))
    send(hospital, me())
    assert checked("personal-details-disagree") == []


def test_a_corrected_date_of_birth_resolves_the_finding(gp, hospital):
    send(gp, me())
    send(hospital, me(birthDate="1970-01-02"))
    [finding] = checked("personal-details-disagree")
    send(hospital, me())
    [after] = checked("personal-details-disagree")
    assert after.pk == finding.pk
    assert after.status == Finding.Status.RESOLVED


# --- entered-in-error-elsewhere --------------------------------------------------------


def test_withdrawn_at_the_hospital_still_recorded_at_the_gp(gp, hospital):
    send(gp, me(), condition("c1"))
    send(hospital, me(), condition("h1", verification="entered-in-error"))
    [finding] = checked("entered-in-error-elsewhere")
    assert finding.audience == "holder"
    assert finding.severity == "medium"
    assert finding.explanation == (
        "City Teaching Hospitals marked asthma as entered in error, but Riverside Surgery still records it."
    )


def test_an_allergy_withdrawn_at_one_holder_matches_by_name(gp, hospital):
    send(gp, me(), allergy("a1", text="Penicillin"))
    send(hospital, me(), allergy("h1", text="penicillin", verification="entered-in-error", clinical=""))
    assert len(checked("entered-in-error-elsewhere")) == 1


@pytest.mark.parametrize(
    "gp_copy",
    [
        condition("c1", clinical="resolved"),  # no longer current there
        condition("c1", code="38341003", text="Hypertension"),  # another problem
        condition("c1", verification="entered-in-error"),  # withdrawn there too
    ],
)
def test_no_withdrawn_finding_on_clean_records(gp, hospital, gp_copy):
    send(gp, me(), gp_copy)
    send(hospital, me(), condition("h1", verification="entered-in-error"))
    assert checked("entered-in-error-elsewhere") == []


def test_a_result_withdrawn_on_another_day_is_another_result(gp, hospital):
    def result(oid, when, error=False):
        return {
            "resourceType": "Observation",
            "id": oid,
            "status": "entered-in-error" if error else "final",
            "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "2951-2", "display": "Sodium"}]},
            "effectiveDateTime": when,
            "valueQuantity": {"value": 140, "unit": "mmol/L"},
        }

    send(gp, me(), result("o1", "2024-01-01T09:00:00Z"))
    send(hospital, me(), result("o2", "2024-02-01T09:00:00Z", error=True))
    assert checked("entered-in-error-elsewhere") == []
    send(hospital, result("o3", "2024-01-01T10:00:00Z", error=True))
    assert len(checked("entered-in-error-elsewhere")) == 1


def test_withdrawing_it_at_the_gp_too_resolves_the_finding(gp, hospital):
    send(gp, me(), condition("c1"))
    send(hospital, me(), condition("h1", verification="entered-in-error"))
    [_finding] = checked("entered-in-error-elsewhere")
    send(gp, condition("c1", verification="entered-in-error"))
    [after] = checked("entered-in-error-elsewhere")
    assert after.status == Finding.Status.RESOLVED


# --- the Synthea samples, split between two holders ------------------------------------


def synthea(samples, name: str) -> dict:
    return json.loads(next((samples / "synthea").glob(f"{name}_*.json")).read_text())


def resources(bundle: dict, resource_type: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def split(gp, hospital, bundle: dict, hospital_bundle: dict | None = None) -> Patient:
    """One Synthea patient's bundle under the GP and (a copy, maybe changed) under the
    hospital: both copies join one patient by the Synthea identifier."""
    for org, sent in ((gp, bundle), (hospital, hospital_bundle or copy.deepcopy(bundle))):
        result = ingest_documents([("synthea", sent)], organisation=org)
        assert result.rejected == 0
    [one] = Patient.objects.all()
    return one


@pytest.mark.parametrize("name", ["Clemente_Kreiger", "Claudie_Walsh", "Norine_Bruen", "Cleo_Friesen"])
def test_a_clean_split_of_a_synthea_sample_agrees(samples, gp, hospital, name):
    one = split(gp, hospital, synthea(samples, name))
    run_checks(one.pk)
    assert not Finding.objects.filter(rule__in=HOLDER_RULES).exists()


def test_synthea_problem_resolved_at_the_hospital_only(samples, gp, hospital):
    bundle = synthea(samples, "Clemente_Kreiger")
    changed = copy.deepcopy(bundle)
    [obesity] = resources(changed, "Condition")
    obesity["clinicalStatus"]["coding"][0]["code"] = "resolved"
    one = split(gp, hospital, bundle, changed)
    run_checks(one.pk)
    [finding] = Finding.objects.filter(rule="problem-status-disagrees")
    assert finding.explanation.startswith("Riverside Surgery's record has obesity as a current problem")
    assert finding.explanation.endswith("City Teaching Hospitals's record says it is resolved.")


def test_synthea_date_of_birth_and_postcode_differ_at_the_hospital(samples, gp, hospital):
    bundle = synthea(samples, "Claudie_Walsh")
    changed = copy.deepcopy(bundle)
    [me_there] = resources(changed, "Patient")
    me_there["birthDate"] = "2019-05-23"
    me_there["address"][0]["postalCode"] = "02719"
    split(gp, hospital, bundle, changed)
    details = sorted(rule.explain(hit) for rule, hit in direct_hits_of_the_one("personal-details-disagree"))
    assert [d.split("the same ")[1] for d in details] == ["address for you.", "date of birth for you."]


def test_synthea_allergy_at_the_gp_and_naproxen_at_the_hospital(samples, gp, hospital):
    """Fletcher Hyatt takes naproxen; the GP's copy adds an aspirin allergy."""
    bundle = synthea(samples, "Fletcher_Hyatt")
    gp_copy = copy.deepcopy(bundle)
    [me_here] = resources(gp_copy, "Patient")
    gp_copy["entry"].append(
        {
            "fullUrl": "urn:uuid:7f3b1a52-0000-4000-8000-000000000001",
            "resource": allergy("aspirin-1", code="387458008", text="Aspirin")
            | {"patient": {"reference": f"Patient/{me_here['id']}"}},
            "request": {"method": "POST", "url": "AllergyIntolerance"},
        }
    )
    one = split(gp, hospital, gp_copy, bundle)
    run_checks(one.pk)
    [finding] = Finding.objects.filter(rule="allergy-vs-prescription")
    assert "allergic to aspirin" in finding.explanation
    assert (
        "Naproxen sodium 220 MG Oral Tablet, an anti-inflammatory painkiller (NSAID)" in finding.explanation
    )
