"""Units as people write them: never a UCUM code on a page."""

import pytest

from phr.render.units import TIMES_TEN, UCUM, ucum_words, unit_words, with_unit


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("Cel", "°C"),
        ("[degF]", "°F"),
        ("mm[Hg]", "mmHg"),
        ("kg/m2", "kg/m²"),
        ("/min", "per minute"),
        ("{beats}/min", "beats per minute"),
        ("%", "%"),
        ("mmol/L", "mmol/L"),
        ("mg/dL", "mg/dL"),
        ("10*9/L", f"{TIMES_TEN}⁹/L"),
        ("10*12/L", f"{TIMES_TEN}¹²/L"),
        ("10*3/uL", f"{TIMES_TEN}³/µL"),
        ("[in_i]", "in"),
        ("[lb_av]", "lb"),
        ("ug", "µg"),
        ("umol/L", "µmol/L"),
        ("mL/min/{1.73_m2}", "mL/min/1.73 m²"),
        ("{score}", ""),
        ("{count}", ""),
    ],
)
def test_a_ucum_code_is_put_in_peoples_words(code, words):
    assert ucum_words(code) == words
    assert unit_words({"value": 1, "system": UCUM, "code": code}) == words


def test_an_unknown_code_is_shown_as_sent_without_its_annotations():
    assert ucum_words("mg/g") == "mg/g"
    assert ucum_words("{tablet}") == "tablet"
    assert ucum_words("mL/{h}") == "mL"
    assert ucum_words("10*6/mL") == f"{TIMES_TEN}⁶/mL"


def test_a_known_ucum_code_wins_over_a_spelled_out_unit():
    quantity = {"value": 142, "unit": "millimeter of mercury", "system": UCUM, "code": "mm[Hg]"}
    assert unit_words(quantity) == "mmHg"


def test_a_human_unit_is_kept_and_a_raw_unit_is_translated():
    assert unit_words({"value": 2, "unit": "puffs"}) == "puffs"
    assert unit_words({"value": 2, "unit": "milligram", "code": "mg"}) == "mg"
    assert unit_words({"value": 36.7, "unit": "Cel"}) == "°C"  # a raw code sent as the unit
    assert (
        unit_words({"value": 1, "unit": "widgets", "system": "http://example.org", "code": "w"}) == "widgets"
    )
    assert unit_words("kg/m2") == "kg/m²"  # a bare string is both unit and code
    assert unit_words(None) == ""


def test_percent_and_degrees_sit_next_to_the_number_and_other_units_after_a_space():
    assert with_unit("97", "%") == "97%"
    assert with_unit("37.5", "°C") == "37.5°C"
    assert with_unit("4.1", "mmol/L") == "4.1 mmol/L"
    assert with_unit("7", "") == "7"
