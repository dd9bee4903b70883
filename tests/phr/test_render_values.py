"""Results in words: value and unit, range, and the high or low flag."""

from decimal import Decimal

from phr.render.values import (
    computed_flag,
    flag,
    measurement,
    number_words,
    quantity_words,
    range_words,
)

UCUM = "http://unitsofmeasure.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def _q(value, code, comparator=None):
    return {
        "value": value,
        "system": UCUM,
        "code": code,
        **({"comparator": comparator} if comparator else {}),
    }


def _potassium(value, **extra):
    return {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "valueQuantity": _q(value, "mmol/L"),
        "referenceRange": [{"low": _q(Decimal("3.5"), "mmol/L"), "high": _q(Decimal("5.3"), "mmol/L")}],
        **extra,
    }


def test_a_laboratorys_precision_is_kept_and_a_machines_float_is_rounded():
    assert number_words(Decimal("4.10")) == "4.10"
    assert number_words(168.80253764416227) == "168.8"
    assert number_words(0.5743214567) == "0.574"
    assert number_words(72) == "72"


def test_a_quantity_reads_with_its_unit_and_its_comparator_in_words():
    assert quantity_words(_q(Decimal("36.7"), "Cel")) == "36.7°C"
    assert quantity_words(_q(5, "mmol/L", "<")) == "less than 5 mmol/L"
    assert quantity_words(_q(90, "mL/min/{1.73_m2}", ">=")) == "at least 90 mL/min/1.73 m²"
    assert quantity_words({"unit": "kg"}) == ""


def test_what_is_counted_per_minute_is_named_for_heart_and_breathing_rates():
    heart = {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}
    assert quantity_words(_q(72, "/min"), heart) == "72 beats per minute"
    assert quantity_words(_q(72, "/min")) == "72 per minute"


def test_a_reference_range_reads_low_to_high_with_one_unit_or_as_its_text():
    assert range_words(_potassium(4)["referenceRange"]) == "3.5 to 5.3 mmol/L"
    assert range_words([{"high": _q(5, "mmol/L")}]) == "5 mmol/L or less"
    assert range_words([{"low": _q(60, "mL/min/{1.73_m2}")}]) == "60 mL/min/1.73 m² or more"
    assert range_words([{"text": "Less than 200"}]) == "Less than 200"
    assert range_words(None) == ""


def test_the_flag_comes_from_the_interpretation_first():
    for code, word in [
        ("H", "High"),
        ("HH", "High"),
        ("LL", "Low"),
        ("A", "Abnormal"),
        ("N", "Normal"),
        ("POS", "Positive"),
        ("NEG", "Negative"),
    ]:
        interpretation = [{"coding": [{"system": INTERPRETATION, "code": code}]}]
        assert flag(_potassium(Decimal("4.0"), interpretation=interpretation)) == word


def test_without_an_interpretation_the_flag_is_computed_from_a_range_in_the_same_unit():
    assert flag(_potassium(Decimal("5.9"))) == "High"
    assert flag(_potassium(Decimal("3.1"))) == "Low"
    assert flag(_potassium(Decimal("5.3"))) == "Normal"  # a bound is in range
    other_unit = _potassium(Decimal("9.9"))
    other_unit["referenceRange"] = [{"low": _q(14, "mg/dL"), "high": _q(21, "mg/dL")}]
    assert flag(other_unit) == ""  # no comparison across units
    assert flag(_potassium(Decimal("1"), valueQuantity=_q(1, "mmol/L", "<"))) == ""
    assert computed_flag(None, Decimal(1), Decimal(2)) == ""


def test_a_measurement_carries_value_unit_range_flag_and_numbers_for_a_chart():
    result = measurement(_potassium(Decimal("5.9")))
    assert (result.value, result.unit, result.range, result.flag) == (
        "5.9",
        "mmol/L",
        "3.5 to 5.3 mmol/L",
        "High",
    )
    assert (result.number, result.low, result.high) == (Decimal("5.9"), Decimal("3.5"), Decimal("5.3"))
    assert result.text == "5.9 mmol/L"


def test_a_blood_pressure_reads_systolic_over_diastolic():
    def part(code, value):
        return {
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": _q(value, "mm[Hg]"),
        }

    reading = measurement(
        {"resourceType": "Observation", "component": [part("8462-4", 95), part("8480-6", 159)]}
    )
    assert reading.text == "159/95 mmHg"


def test_other_components_read_name_and_value():
    observation = {
        "resourceType": "Observation",
        "component": [
            {"code": {"text": "Left eye"}, "valueString": "6/9"},
            {"code": {"text": "Right eye"}, "valueString": "6/6"},
        ],
    }
    assert measurement(observation).text == "Left eye: 6/9; Right eye: 6/6"


def test_values_that_are_not_quantities_are_in_words():
    assert measurement({"valueBoolean": False}).text == "No"
    assert measurement({"valueDateTime": "2024-05-12"}).text == "12 May 2024"
    assert measurement({"valueCodeableConcept": {"text": "Never smoked"}}).text == "Never smoked"
    assert measurement({"resourceType": "Observation"}) is None
