"""One item in plain words: the rows every page, share view and printout shows."""

import json
from decimal import Decimal

from accuracy import record_display
from phr.models import RecordEntry
from phr.render.item import item_details, item_title

SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"


def _rows(resource):
    return dict(item_details(resource))


def test_an_allergy_names_substance_reaction_severity_and_risk_in_words():
    allergy = {
        "resourceType": "AllergyIntolerance",
        "code": {"coding": [{"system": SNOMED, "code": "91936005", "display": "Allergy to penicillin"}]},
        "criticality": "high",
        "type": "allergy",
        "category": ["medication"],
        "reaction": [{"manifestation": [{"text": "Itchy rash"}], "severity": "moderate"}],
        "recorder": {"reference": "Practitioner/8f14e45f-ceea-467f-a0e7-3a1b2c3d4e5f"},
    }
    rows = _rows(allergy)
    assert rows["Substance"] == "Penicillin allergy"
    assert rows["Reaction"] == "Itchy rash"
    assert rows["How severe"] == "Moderate"
    assert rows["Risk of a serious reaction"] == "High risk"
    assert rows["Caused by"] == "Medicine"
    assert "Recorded by" not in rows  # a reference with no name is an id: never shown
    allergy["criticality"] = "unable-to-assess"
    assert _rows(allergy)["Risk of a serious reaction"] == "Not known"
    allergy["criticality"] = "low"
    assert _rows(allergy)["Risk of a serious reaction"] == "Low risk"


def test_people_and_organisations_appear_by_name_only():
    request = {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
        "requester": {"reference": "Practitioner/123", "display": "Dr Jane Reid"},
        "dosageInstruction": [
            {
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            }
        ],
    }
    rows = _rows(request)
    assert rows["Prescribed by"] == "Dr Jane Reid"
    assert rows["How to take it"] == "1 tablet once a day"
    assert "Practitioner/123" not in str(item_details(request))


def test_an_observation_shows_value_unit_range_and_flag():
    observation = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"}]},
        "valueQuantity": {"value": Decimal("38.4"), "unit": "Cel", "system": UCUM, "code": "Cel"},
        "referenceRange": [
            {
                "low": {"value": Decimal("36.1"), "code": "Cel"},
                "high": {"value": Decimal("37.8"), "code": "Cel"},
            }
        ],
    }
    rows = _rows(observation)
    assert rows["Test or measurement"] == "Body temperature"
    assert rows["Result"] == "38.4°C"
    assert rows["Normal range"] == "36.1 to 37.8°C"
    assert rows["What the result means"] == "High"


def test_an_observation_without_a_value_says_why():
    absent = {
        "resourceType": "Observation",
        "code": {"text": "Nucleated red cells"},
        "dataAbsentReason": {"text": "Specimen unsatisfactory for evaluation"},
    }
    assert _rows(absent)["Result"] == "Specimen unsatisfactory for evaluation"


def test_a_vaccination_not_given_says_so_and_an_encounter_class_code_is_in_words():
    vaccine = {
        "resourceType": "Immunization",
        "status": "not-done",
        "vaccineCode": {"text": "Flu vaccine"},
        "statusReason": {"text": "Patient declined"},
    }
    assert _rows(vaccine)["Given"] == "Not given"
    assert _rows(vaccine)["Why not"] == "Patient declined"
    visit = {"resourceType": "Encounter", "class": {"code": "EMER"}, "period": {"start": "2024-02-01"}}
    assert _rows(visit)["Type"] == "Emergency"
    assert _rows(visit)["When"] == "from 1 February 2024"


def test_a_condition_keeps_the_labels_the_pages_use():
    condition = {
        "resourceType": "Condition",
        "code": {"text": "Gout"},
        "severity": {"text": "Severe"},
        "onsetDateTime": "2019-03",
        "abatementDateTime": "2020",
        "verificationStatus": {"coding": [{"code": "provisional"}]},
    }
    assert item_details(condition) == [
        ("Condition", "Gout"),
        ("How severe", "Severe"),
        ("Started", "March 2019"),
        ("Ended", "2020"),
        ("Certainty", "Not confirmed yet"),
    ]


def test_a_title_is_what_a_patient_calls_the_item():
    assert (
        item_title(
            {
                "resourceType": "Condition",
                "code": {
                    "coding": [{"system": SNOMED, "code": "38341003", "display": "Hypertensive disorder"}]
                },
            }
        )
        == "High blood pressure"
    )
    assert (
        item_title({"resourceType": "DocumentReference", "description": "Discharge letter"})
        == "Discharge letter"
    )
    assert (
        item_title({"resourceType": "MedicationRequest", "medicationReference": {"display": "Aspirin"}})
        == "Aspirin"
    )
    assert item_title({"resourceType": "ImagingStudy"}) == ""
    assert item_title("not a resource") == ""


def test_record_display_still_reads_an_entry_through_the_renderer():
    entry = RecordEntry(
        json=json.dumps(
            {
                "resourceType": "Observation",
                "code": {"text": "Serum potassium"},
                "valueQuantity": {"value": 4.10, "unit": "mmol/L"},
            }
        )
    )
    assert ("Result", "4.1 mmol/L") in record_display.item_details(entry)
    assert record_display.item_details(RecordEntry(json="not json")) == []
    assert record_display.item_details(RecordEntry(json="[1, 2]")) == []
    assert record_display._quantity({"value": 1, "code": "Cel"}) == "1°C"
    assert record_display._dosage({"dosage": [{"text": "Once daily"}]}) == "Once daily"
