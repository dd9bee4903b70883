"""Accuracy checks: the conformance rules (accuracy.checks.base declares what a rule is).

Codes and identifiers carry their own check digits: a code that fails its check was
mistyped or made up, and means nothing (or something else) to the next system.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from phr.nhs_number import NHS_NUMBER_SYSTEM, is_valid_nhs_number, normalise
from phr.render.concepts import CONSUMER_NAMES, SYSTEM_NAMES

from .base import Audience, Hit, Item, Kind, Record, Severity, rule

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"

# --- Check digits ---------------------------------------------------------------------------

# Verhoeff's dihedral group D5: multiplication, the position permutation, and the inverse
# (SNOMED CT Technical Implementation Guide, "Check digit": the Verhoeff algorithm).
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_valid(digits: str) -> bool:
    """Whether a string of digits ends in its Verhoeff check digit."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    check = 0
    for position, digit in enumerate(reversed(digits)):
        check = _D[check][_P[position % 8][int(digit)]]
    return check == 0


# The partition identifier (the two digits before the check digit): 0 concept,
# 1 description, 2 relationship; the first digit 0 for the short (international) form,
# 1 for an extension's long form with a namespace.
SCTID_PARTITIONS = frozenset({"00", "01", "02", "10", "11", "12"})
CONCEPT_PARTITIONS = frozenset({"00", "10"})
_SCTID = re.compile(r"[1-9][0-9]{5,17}")


@lru_cache(maxsize=65536)  # a record names the same few hundred codes over and over
def snomed_problem(code: str) -> str:
    """What is wrong with a SNOMED CT concept id used as a code ("" when nothing is)."""
    if not _SCTID.fullmatch(code):
        return "is not a SNOMED CT identifier (6 to 18 digits, not starting with 0)"
    partition = code[-3:-1]
    if partition not in SCTID_PARTITIONS:
        return f"has partition identifier {partition}, which SNOMED CT does not use"
    if partition not in CONCEPT_PARTITIONS:
        kind = "a description" if partition[1] == "1" else "a relationship"
        return f"is {kind} identifier, not a concept identifier (partition {partition})"
    if not verhoeff_valid(code):
        return "fails its Verhoeff check digit"
    return ""


_LOINC = re.compile(r"(L[APGL])?([0-9]{1,7})-([0-9])")


def loinc_check_digit(digits: str) -> int:
    """LOINC's mod 10 check digit, as LOINC publishes it: the digits in odd places from
    the right, as one number, doubled; the digits in even places written before it; the
    digits of that summed; the check digit takes the sum up to a multiple of ten."""
    backwards = digits[::-1]
    odd = backwards[0::2][::-1]
    even = backwards[1::2][::-1]
    total = sum(int(d) for d in even + str(int(odd) * 2))
    return (10 - total % 10) % 10


@lru_cache(maxsize=65536)
def loinc_problem(code: str) -> str:
    """What is wrong with a LOINC code ("" when nothing is)."""
    found = _LOINC.fullmatch(code)
    if not found:
        return "is not in the form of a LOINC code (digits, a hyphen and a check digit)"
    if found.group(1):
        return ""  # answer and part codes (LA, LP...): their check digit is not this one
    if loinc_check_digit(found.group(2)) != int(found.group(3)):
        return "fails its check digit"
    return ""


def _checked(record: Record) -> list[Item]:
    return [i for i in record.items if not i.entry.entered_in_error]


def _bad_codes(item: Item, system: str, problem) -> list[tuple[str, str, str]]:
    found = {}
    for coding in item.codings_anywhere:
        if coding.get("system") != system:
            continue
        code = str(coding.get("code") or "").strip()
        if system == SNOMED and re.search(r"[|:={}+]", code):
            continue  # a SNOMED CT expression, not one concept: not checked here
        wrong = problem(code)
        if wrong and code not in found:
            found[code] = (code, str(coding.get("display") or ""), wrong)
    return [found[c] for c in sorted(found)]


def _code_hits(record: Record, system: str, problem) -> Iterator[Hit]:
    name = SYSTEM_NAMES.get(system, system)
    for item in _checked(record):
        bad = _bad_codes(item, system, problem)
        if not bad:
            continue
        code, display, wrong = bad[0]
        named = f" ({display})" if display else ""
        yield Hit(
            items=(item,),
            says={
                item.entry.pk: "; ".join(
                    f"{item.name}: {name} code {c}{f' ({d})' if d else ''}, which {w}" for c, d, w in bad
                )
            },
            words={"code": code, "display": named, "problem": wrong, "name": item.name},
        )


@rule(
    "snomed-check-digit",
    kind=Kind.CONFORMANCE,
    severity=Severity.LOW,
    audience=Audience.HOLDER,
    title="A SNOMED CT code that is not valid",
    sentence=(
        "The SNOMED CT code {code}{display} on {name} {problem}: it was probably mistyped, "
        "and other systems will not recognise it."
    ),
)
def snomed_check_digit(record: Record) -> Iterator[Hit]:
    yield from _code_hits(record, SNOMED, snomed_problem)


@rule(
    "loinc-check-digit",
    kind=Kind.CONFORMANCE,
    severity=Severity.LOW,
    audience=Audience.HOLDER,
    title="A LOINC code that is not valid",
    sentence=(
        "The LOINC code {code}{display} on {name} {problem}: it was probably mistyped, "
        "and other systems will not recognise it."
    ),
)
def loinc_check_digit_rule(record: Record) -> Iterator[Hit]:
    yield from _code_hits(record, LOINC, loinc_problem)


# --- NHS number -----------------------------------------------------------------------------


def _grouped(number: str) -> str:
    return f"{number[:3]} {number[3:6]} {number[6:]}" if len(number) == 10 else number


@rule(
    "nhs-number-invalid",
    kind=Kind.CONFORMANCE,
    severity=Severity.HIGH,
    audience=Audience.BOTH,
    title="An NHS number that cannot be right",
    sentence=(
        "{holder}'s copy of your details has the NHS number {number}, which cannot be right: "
        "its last digit does not match the others. Your records there may not be linked to you."
    ),
)
def nhs_number_invalid(record: Record) -> Iterator[Hit]:
    for item in record.details:
        numbers = []
        for identifier in item.resource.get("identifier") or ():
            if isinstance(identifier, dict) and identifier.get("system") == NHS_NUMBER_SYSTEM:
                value = normalise(str(identifier.get("value") or ""))
                if value and not is_valid_nhs_number(value) and value not in numbers:
                    numbers.append(value)
        if numbers:
            shown = [_grouped(n) for n in numbers]
            yield Hit(
                items=(item,),
                says={item.entry.pk: "the NHS number " + " and ".join(shown)},
                words={"holder": item.holder.name, "number": shown[0]},
            )


# --- The same code named differently by two holders -----------------------------------------

# Words that say nothing about what a concept is.
_MINOR = frozenset(
    {
        *("of", "the", "and", "or", "a", "an", "in", "on", "at", "to", "for", "with", "without"),
        *("by", "from", "as", "is", "are", "nos", "unspecified", "other", "type", "finding"),
        *("disorder", "procedure", "observable", "entity", "situation", "regime", "therapy"),
        *("qualifier", "value", "substance", "product", "body", "structure"),
    }
)
_WORD = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    # British and American spellings as one (haemoglobin, hemoglobin; oedema, edema),
    # and a word's first six letters for its family (diabetes, diabetic).
    word = word.replace("ae", "e").replace("oe", "e").replace("isation", "ization")
    return word[:6] if len(word) > 6 else word


def _words(display: str) -> set[str]:
    display = re.sub(r"\[[^\]]*\]", " ", display.lower())  # LOINC's axes, [Mass/volume]
    return {_stem(w) for w in _WORD.findall(display) if w not in _MINOR}


_GLUE = frozenset({"of", "the", "and", "a", "an", "in", "on", "at", "to", "for", "with", "by"})


def _initials(display: str) -> str:
    return "".join(w[0] for w in _WORD.findall(display.lower()) if w not in _GLUE)


def _share_nothing(first: str, second: str) -> bool:
    a, b = _words(first), _words(second)
    if not a or not b or a & b:
        return False
    # An abbreviation and what it stands for (BMI, body mass index) share no words.
    squeezed = {w for w in _WORD.findall(first.lower() + " " + second.lower())}
    return not (squeezed & {_initials(first), _initials(second)})


@rule(
    "display-contradicts",
    kind=Kind.CONFORMANCE,
    severity=Severity.LOW,
    audience=Audience.HOLDER,
    title="The same code named as two different things",
    sentence=(
        "The {system} code {code} is named “{first}” at {first_holder} and “{second}” at "
        "{second_holder}: one of them may have the wrong code."
    ),
)
def display_contradicts(record: Record) -> Iterator[Hit]:
    # (system, code) -> holder id -> display -> the item first dated that says so
    seen: dict[tuple[str, str], dict] = {}
    for item in sorted(
        _checked(record),
        key=lambda i: (i.entry.clinical_date is None, i.entry.clinical_date, str(i.entry.pk)),
    ):
        for coding in item.codings_anywhere:
            system, code = coding.get("system"), str(coding.get("code") or "").strip()
            display = " ".join(str(coding.get("display") or "").split())
            if not code or not display or system not in SYSTEM_NAMES:
                continue
            holders = seen.setdefault((system, code), {})
            holders.setdefault(item.holder.pk, {}).setdefault(display, item)
    for (system, code), holders in sorted(seen.items()):
        if len(holders) < 2:
            continue
        owners = sorted(holders, key=str)
        reported = False
        plain = CONSUMER_NAMES.get((system, code), "").lower()
        for index, one in enumerate(owners):
            for other in owners[index + 1 :]:
                for first, first_item in sorted(holders[one].items()):
                    for second, second_item in sorted(holders[other].items()):
                        if reported or plain in (first.lower(), second.lower()):
                            continue  # the portal's own plain name for the code
                        if not _share_nothing(first, second):
                            continue
                        reported = True  # one finding per code: the first pair found
                        yield Hit(
                            items=(first_item, second_item),
                            says={
                                first_item.entry.pk: f"{first_item.name}, coded {code} “{first}”",
                                second_item.entry.pk: f"{second_item.name}, coded {code} “{second}”",
                            },
                            words={
                                "system": SYSTEM_NAMES[system],
                                "code": code,
                                "first": first,
                                "first_holder": first_item.holder.name,
                                "second": second,
                                "second_holder": second_item.holder.name,
                            },
                        )
