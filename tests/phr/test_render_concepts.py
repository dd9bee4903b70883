"""What a coded thing is called: the recorded name, and a short name a patient knows."""

from phr.render.concepts import LOINC, SNOMED, concept_words, concepts_words, names, recorded_name, tidy


def _concept(system, code, display=None, text=None):
    coding = {"system": system, "code": code, **({"display": display} if display else {})}
    return {"coding": [coding], **({"text": text} if text else {})}


def test_the_recorded_name_is_the_display_of_snomed_dmd_or_loinc_before_the_text():
    concept = {
        "coding": [
            {"system": "http://example.org/local", "code": "x", "display": "Local name"},
            {"system": LOINC, "code": "2823-3", "display": "Potassium [Moles/volume] in Serum or Plasma"},
        ],
        "text": "K+",
    }
    assert recorded_name(concept) == "Potassium [Moles/volume] in Serum or Plasma"
    assert recorded_name({"text": "Serum potassium"}) == "Serum potassium"
    assert recorded_name({"coding": [{"system": "http://example.org", "display": "Other"}]}) == "Other"


def test_a_bare_code_says_which_terminology_it_is_in():
    assert recorded_name(_concept(SNOMED, "999999")) == "SNOMED CT code 999999"
    assert recorded_name(None) == ""


def test_a_patient_reads_the_consumer_name_and_the_recorded_name_stays_available():
    heart_rate = _concept(LOINC, "8867-4", "Heart rate [Beats/time] by Pulse oximetry")
    both = names(heart_rate)
    assert both.patient == "Heart rate"
    assert both.recorded == "Heart rate [Beats/time] by Pulse oximetry"
    assert concept_words(_concept(SNOMED, "38341003", "Hypertensive disorder")) == "High blood pressure"


def test_without_a_consumer_name_the_recorded_name_loses_its_terminology_scaffolding():
    assert concept_words(_concept(SNOMED, "1", "Acute bronchitis (disorder)")) == "Acute bronchitis"
    assert concept_words(_concept(LOINC, "1-1", "MCH [Entitic mass] by Automated count")) == (
        "MCH by Automated count"
    )
    assert tidy("Hemoglobin [Mass/\u200bvolume] in Blood") == "Hemoglobin in Blood"


def test_several_concepts_are_joined_once_each():
    rash = {"text": "Rash"}
    assert concepts_words([rash, {"text": "Wheeze"}, rash]) == "Rash, Wheeze"
    assert concepts_words(rash) == "Rash"
    assert concepts_words(None) == ""
