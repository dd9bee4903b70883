"""Issue 11: one vocabulary for the kinds of record (phr.vocabulary), said the same way by
the record's pages, the sharing preview and the access log."""

from accuracy import record_display
from consent import sharing_text
from phr import vocabulary


def test_the_record_uses_the_vocabularys_kinds_in_its_order():
    assert [(k.slug, k.title, k.resource_types) for k in record_display.KINDS] == [
        (w.slug, w.title, w.resource_types) for w in vocabulary.KIND_WORDS
    ]


def test_each_kind_has_one_name_everywhere():
    titles = [kind.title for kind in vocabulary.KIND_WORDS]
    assert "Health problems" in titles
    assert "Appointments and stays" in titles
    assert "Letters and documents" in titles
    for kind in vocabulary.KIND_WORDS:
        assert kind.many.capitalize() == kind.title
    assert sharing_text.kinds_words(["Condition", "Encounter", "DocumentReference"]) == [
        "1 health problem",
        "1 appointment or stay",
        "1 letter or document",
    ]


def test_an_unnamed_type_is_an_other_item_never_its_fhir_name():
    assert record_display.type_name("ExplanationOfBenefit") == "Other item"
    assert record_display.kind_of("ExplanationOfBenefit").title == "Other items"
    assert sharing_text.kinds_words(["Claim", "Claim"]) == ["2 other items"]


def test_an_apps_consent_screen_names_the_records_items_as_the_record_does():
    from api.scopes import PATIENT_SCOPES, RECORD_TYPES

    for resource_type in RECORD_TYPES:
        words = PATIENT_SCOPES[f"patient/{resource_type}.read"]
        kind = vocabulary.kind_words_of(resource_type)
        if len(kind.resource_types) == 1:  # the type is the whole kind: the kind's name
            assert words == f"see your {kind.many}"
        assert words == f"see your {vocabulary.type_name_plural(resource_type)}"
    assert PATIENT_SCOPES["patient/Encounter.read"] == "see your appointments and stays"
    assert PATIENT_SCOPES["patient/DocumentReference.read"] == "see your letters and documents"


def test_the_clinicians_sections_take_their_headings_from_the_vocabulary():
    from web.clinician.sections import CLINICAL_ORDER, build_sections

    assert set(CLINICAL_ORDER) == {kind.slug for kind in vocabulary.KIND_WORDS}
    assert CLINICAL_ORDER[0] == "allergies"
    (section,) = build_sections([], {}, only=record_display.KINDS_BY_SLUG["documents"])
    assert section.heading == "Letters and documents"
    assert record_display.KINDS_BY_SLUG["allergies"].clinical == "Allergies and adverse reactions"
