"""Plain-language sentences for the patient's sharing pages.

Nothing here decides who may see what: every sentence is built from the answer of
consent.policy.sharing_for (or from a stored choice), so the words cannot drift from
the rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from phr import vocabulary
from phr.models import Category, Organisation, OrganisationKind
from phr.render.dates import day

from .models import PAUSE_REASON, ConsentChoice, Decision, Scope
from .policy import CategoryRuling, categories_kept_to_holder

# How each sensitivity category reads in "your ... records".
CATEGORY_WORDS = {
    Category.GENERAL: "general health",
    Category.MENTAL_HEALTH: "mental health",
    Category.SEXUAL_HEALTH: "sexual health",
    Category.SOCIAL_CARE: "social care",
    Category.SAFEGUARDING: "safeguarding",
    Category.ASSISTED_CONCEPTION: "assisted conception (fertility treatment)",
    Category.GENDER_IDENTITY: "gender identity",
}
CATEGORY_ORDER = list(Category.values)


def join_words(words: Iterable[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def categories_words(categories: Iterable[str]) -> str:
    """The categories in their usual order, as "mental health and sexual health"."""
    chosen = set(categories)
    return join_words(CATEGORY_WORDS[c] for c in CATEGORY_ORDER if c in chosen)


def kinds_words(resource_types: Iterable[str]) -> list[str]:
    """How many of each kind, in the one vocabulary's words and order (phr.vocabulary)."""
    return vocabulary.counted_words(resource_types)


def until_words(until: datetime | None) -> str:
    return f", until {day(until)}" if until else ""


# --- Who can see my record ------------------------------------------------------------


def permitted(ruling: Mapping[str, CategoryRuling]) -> set[str]:
    return {category for category, answer in ruling.items() if answer.permitted}


def organisation_sentence(
    organisation: Organisation, ruling: Mapping[str, CategoryRuling], *, holds: bool
) -> str:
    """What one organisation can see under the patient's choices, in one sentence.

    ``holds``: the organisation holds items of this record, which it always sees. The
    categories kept to their holder, while the patient has made no choice about them,
    are "your sensitive records" (default_sentence says which they are).
    """
    name = organisation.name
    shared = permitted(ruling)
    hidden = set(CATEGORY_ORDER) - shared
    if not hidden:
        return f"{name} can see everything on your record."
    if not shared:
        if holds:
            return f"{name} can see only what it holds itself."
        return f"{name} cannot see your record."
    own = " It also sees everything it holds itself." if holds else ""
    kept = categories_kept_to_holder()
    grouped = bool(kept) and kept <= hidden  # all of them hidden: "your sensitive records"
    named = hidden - kept if grouped else hidden
    # General health is most of a record: while it is shared, say what is not, unless
    # little else is shared.
    if Category.GENERAL not in shared or len(shared) < len(named):
        return f"{name} can see only your {categories_words(shared)} records.{own}"
    parts = [f"your {categories_words(named)} records"] if named else []
    if grouped:
        parts.append("your sensitive records")
    return f"{name} can see everything except {join_words(parts)}.{own}"


def deciding_choices(ruling: Mapping[str, CategoryRuling]) -> list[ConsentChoice]:
    """The patient's own choices that decided this organisation's sharing, oldest first."""
    found = {answer.choice.pk: answer.choice for answer in ruling.values() if answer.choice is not None}
    return sorted(found.values(), key=lambda c: (c.recorded_at, c.pk))


# --- A choice, as the patient made it -------------------------------------------------


def choice_sentence(choice: ConsentChoice) -> str:
    """One choice in words: "Do not share your mental health records with X, until 1 March 2027",
    and, for a pause, that it is one."""
    org = choice.organisation.name if choice.organisation_id else ""
    cats = f"your {CATEGORY_WORDS.get(choice.category, choice.category)} records" if choice.category else ""
    if choice.decision == Decision.DEFAULT:
        subject = {
            Scope.NETWORK: "sharing across the network",
            Scope.ORGANISATION: org,
            Scope.CATEGORY: cats,
            Scope.ORGANISATION_CATEGORY: f"{cats} at {org}",
        }[choice.scope]
        return f"Go back to the usual rule for {subject}{until_words(choice.until)}"
    verb = "Share" if choice.decision == Decision.PERMIT else "Do not share"
    text = {
        Scope.NETWORK: f"{verb} your record across the network",
        Scope.ORGANISATION: f"{verb} your record with {org}",
        Scope.CATEGORY: f"{verb} {cats} with "
        + ("every organisation" if choice.decision == Decision.PERMIT else "any organisation"),
        Scope.ORGANISATION_CATEGORY: f"{verb} {cats} with {org}",
    }[choice.scope]
    paused = " (paused while you check your record)" if choice.reason == PAUSE_REASON else ""
    return f"{text}{until_words(choice.until)}{paused}"


def default_sentence(consent_model: str) -> str:
    """The deployment's default, in words: the consent model, and the categories that
    stay with the organisation holding them (settings.CATEGORIES_KEPT_TO_HOLDER)."""
    if consent_model == "opt-out":
        sentence = "Unless you choose otherwise, your record is shared with the organisations caring for you."
    else:
        sentence = (
            "Unless you choose to share it, your record is seen only by the organisations that hold it."
        )
    kept = categories_kept_to_holder()
    if kept:
        sentence += (
            f" Your sensitive records ({categories_words(kept)}) stay with the organisation that"
            " holds them unless you choose to share them."
        )
    return sentence


# --- What a change will do ------------------------------------------------------------


def change_sentences(
    organisations: Iterable[Organisation],
    before: Mapping[int, Mapping[str, CategoryRuling]],
    after: Mapping[int, Mapping[str, CategoryRuling]],
    *,
    holders: set[int],
    until: datetime | None,
) -> list[str]:
    """What changes for each organisation when a choice is saved; empty when nothing does."""
    lines = []
    suffix = until_words(until)
    everything = set(CATEGORY_ORDER)
    for org in organisations:
        was, will = permitted(before[org.pk]), permitted(after[org.pk])
        lost, gained = was - will, will - was
        if lost:
            what = "your record" if not will else f"your {categories_words(lost)} records"
            own = " (it will still see what it holds itself)" if org.pk in holders else ""
            lines.append(f"From now on, {org.name} will not be able to see {what}{suffix}{own}.")
        if gained:
            what = "your whole record" if will == everything else f"your {categories_words(gained)} records"
            lines.append(f"From now on, {org.name} will be able to see {what}{suffix}.")
    return lines


# --- What a "do not share" choice risks -----------------------------------------------

# The kinds of organisation that may treat the patient in an emergency, and the category
# in which allergies and medicines are recorded (general health).
EMERGENCY_KINDS = (OrganisationKind.AMBULANCE, OrganisationKind.ACUTE_TRUST, OrganisationKind.GP_PRACTICE)


def emergency_risks(
    organisations: Iterable[Organisation],
    before: Mapping[int, Mapping[str, CategoryRuling]],
    after: Mapping[int, Mapping[str, CategoryRuling]],
) -> list[str]:
    """For each organisation that may treat the patient in an emergency and would stop
    seeing their allergies and medicines, one sentence saying so."""
    lines = []
    for org in organisations:
        if org.kind not in EMERGENCY_KINDS:
            continue
        if Category.GENERAL in permitted(before[org.pk]) and Category.GENERAL not in permitted(after[org.pk]):
            lines.append(
                f"If you needed urgent care, staff at {org.name} would not see your allergies or the "
                "medicines you take, unless the organisation holds them itself."
            )
    return lines
