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
