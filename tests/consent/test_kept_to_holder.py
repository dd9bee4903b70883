"""Issue 12 part 1: the deployment's table of categories kept to their holder, read by
the policy; an unknown category in it stops the deployment (a system check)."""

from consent.apps import known_categories_kept_to_holder
from consent.policy import categories_kept_to_holder, kept_to_holder, shared_by_default


def test_the_defaults_keep_the_four_sensitive_categories_with_their_holder():
    assert categories_kept_to_holder() == {
        "sexual_health",
        "assisted_conception",
        "gender_identity",
        "safeguarding",
    }
    assert not kept_to_holder("mental_health")
    assert shared_by_default("general")
    assert shared_by_default("social_care")
    assert not shared_by_default("safeguarding")


def test_other_categories_follow_the_consent_model(settings):
    settings.CONSENT_MODEL = "opt-in"
    assert not shared_by_default("general")
    settings.CATEGORIES_KEPT_TO_HOLDER = []
    settings.CONSENT_MODEL = "opt-out"
    assert shared_by_default("sexual_health")


def test_an_unknown_category_in_the_table_is_an_error(settings):
    assert known_categories_kept_to_holder() == []
    settings.CATEGORIES_KEPT_TO_HOLDER = ["sexual_health", "sexual-health"]
    (error,) = known_categories_kept_to_holder()
    assert error.id == "consent.E001"
    assert "sexual-health" in error.msg


def test_an_unknown_category_hidden_from_proxies_is_an_error(settings):
    settings.PROXY_HIDDEN_CATEGORIES = ["mental-health"]
    (error,) = known_categories_kept_to_holder()
    assert error.id == "consent.E002"
    assert "mental-health" in error.msg
