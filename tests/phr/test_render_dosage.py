"""How to take a medicine, in words."""

import pytest

from phr.render.dosage import dosage_words, dosages_words, route_words

SNOMED = "http://snomed.info/sct"


def _dose(value, unit=None, **extra):
    quantity = {"value": value, **({"unit": unit} if unit else {})}
    return {"doseAndRate": [{"doseQuantity": quantity}], **extra}


def _every(frequency, period, unit):
    return {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit}}


def test_the_prescribers_text_wins():
    assert dosage_words({"text": "5mg once daily", **_dose(5, "mg")}) == "5mg once daily"


@pytest.mark.parametrize(
    ("timing", "words"),
    [
        (_every(1, 1, "d"), "once a day"),
        (_every(2, 1, "d"), "twice a day"),
        (_every(3, 1, "d"), "3 times a day"),
        (_every(1, 4, "h"), "every 4 hours"),
        (_every(1, 1, "wk"), "once a week"),
        ({"repeat": {"frequency": 1, "period": 4, "periodMax": 6, "periodUnit": "h"}}, "every 4 to 6 hours"),
        ({"repeat": {"when": ["MORN"]}}, "in the morning"),
        ({"code": {"coding": [{"code": "BID"}]}}, "twice a day"),
    ],
)
def test_timing_is_in_words(timing, words):
    assert dosage_words({"timing": timing}) == words[0].upper() + words[1:]


def test_dose_route_timing_and_when_needed_make_one_sentence():
    dosage = _dose(
        2,
        "tablet",
        route={"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral route"}]},
        timing=_every(2, 1, "d"),
        asNeededBoolean=True,
    )
    assert dosage_words(dosage) == "2 tablets by mouth twice a day when needed"
    assert dosage_words(_dose(1, "tablets", timing=_every(1, 1, "d"))) == "1 tablet once a day"
    assert dosage_words(_dose(500, "mg")) == "500 mg"
    assert dosage_words(_dose(1, timing=_every(1, 6, "h"))) == "1 dose every 6 hours"


def test_a_reason_for_when_needed_is_named():
    dosage = {
        "asNeededCodeableConcept": {"coding": [{"system": SNOMED, "code": "1", "display": "Pain of ear"}]}
    }
    assert dosage_words(dosage) == "When needed for pain of ear"


def test_a_route_reads_as_a_patient_says_it():
    assert route_words({"text": "Inhalation"}) == "breathed in"
    assert route_words({"coding": [{"system": SNOMED, "code": "34206005"}]}) == "under the skin"


def test_every_dosage_of_a_statement_or_a_request_is_read():
    assert dosages_words({"dosage": [{"text": "One in the morning"}, {"text": "Two at night"}]}) == (
        "One in the morning; Two at night"
    )
    assert dosages_words({"dosageInstruction": [{"sequence": 1, "asNeededBoolean": True}]}) == "When needed"
    assert dosages_words({}) == ""
