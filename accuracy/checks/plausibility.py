"""Accuracy checks: the plausibility rules (accuracy.checks.base declares what a rule is).

Each rule asks whether a value could be true of a living person at all, not whether it
is abnormal: the limits are wide on purpose, so that what they find is an error (a unit
mixed up, a digit too many, a date typed wrong), never an illness.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from phr.columns import parse_fhir_datetime
from phr.render.dates import day, fhir_moment
from phr.render.units import unit_words, with_unit

from ..elements import value_at
from .base import Audience, Hit, Item, Kind, Record, Severity, rule

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"

# --- Measurements: what each is, its units, and what no living person can have ------------


def _unit_key(text: str) -> str:
    """A unit as a key: lower case, no spaces, µ as u, UCUM annotations dropped
    ("{beats}/min" is "/min"), the eGFR body surface in one spelling."""
    text = (text or "").strip().lower().replace("µ", "u").replace("μ", "u").replace(" ", "")
    text = re.sub(r"/?\{?1\.73_?m\^?2\}?", "/1.73m2", text)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = text.replace("^", "*").replace("x10", "10").replace("//", "/")
    return text


def _units(table: dict) -> dict:
    return {_unit_key(unit): convert for unit, convert in table.items()}


def _scale(factor: float) -> Callable[[float], float]:
    return lambda value: value * factor


SAME = _scale(1)

# Counts of cells per litre of blood, in 10^9/L (10^3/µL is the same number).
CELL_COUNT = _units(
    {
        "10*9/L": SAME,
        "10*3/uL": SAME,
        "10*3/mm3": SAME,
        "K/uL": SAME,
        "/nL": SAME,
        "/uL": _scale(0.001),
        "/mm3": _scale(0.001),
        "10*6/mL": SAME,
    }
)
ENZYME = _units({"U/L": SAME, "[IU]/L": SAME, "[iU]/L": SAME, "IU/L": SAME, "ukat/L": _scale(60)})


def _mass_conc(mg_per_mmol: float) -> dict:
    """mmol/L, plus the mass units that convert to it by the analyte's molar mass."""
    return _units(
        {
            "mmol/L": SAME,
            "mEq/L": SAME,
            "umol/L": _scale(0.001),
            "mg/dL": _scale(10 / mg_per_mmol),
            "mg/L": _scale(1 / mg_per_mmol),
            "g/L": _scale(1000 / mg_per_mmol),
        }
    )


@dataclass(frozen=True)
class Measure:
    """A kind of measurement: its codes, its units (each a conversion to ``unit``) and
    the limits no living person's value can pass, in ``unit``. ``noun`` starts the
    sentence: "a weight" of 750 kg."""

    noun: str
    unit: str
    low: float
    high: float
    units: dict
    loinc: frozenset = field(default_factory=frozenset)
    snomed: frozenset = field(default_factory=frozenset)


def _measure(noun, unit, low, high, units, loinc=(), snomed=()) -> Measure:
    return Measure(noun, unit, low, high, _units(units), frozenset(loinc), frozenset(snomed))


MEASURES = (
    # Smallest surviving newborns weigh about 0.25 kg; the heaviest person recorded
    # (Jon Brower Minnoch) was estimated at about 635 kg.
    _measure(
        "a weight",
        "kg",
        0.2,
        650,
        {
            "kg": SAME,
            "g": _scale(0.001),
            "[lb_av]": _scale(0.45359237),
            "lb": _scale(0.45359237),
            "lbs": _scale(0.45359237),
            "[stone_av]": _scale(6.35029318),
            "st": _scale(6.35029318),
        },
        loinc=("29463-7", "3141-9", "8335-2"),
        snomed=("27113001", "363808001"),
    ),
    # The smallest surviving premature babies are about 20 cm long; the tallest person
    # recorded (Robert Wadlow) was 272 cm.
    _measure(
        "a height",
        "cm",
        15,
        275,
        {
            "cm": SAME,
            "m": _scale(100),
            "mm": _scale(0.1),
            "[in_i]": _scale(2.54),
            "in": _scale(2.54),
            "[ft_i]": _scale(30.48),
        },
        loinc=("8302-2", "8306-3", "8308-9"),
        snomed=("50373000", "248333004"),
    ),
    # Survival is reported at a BMI of about 7 (severe anorexia); Minnoch's BMI was over
    # 180. Newborns are about 10-13.
    _measure(
        "a body mass index (BMI)",
        "kg/m2",
        5,
        260,
        {"kg/m2": SAME, "kg/m^2": SAME},
        loinc=("39156-5",),
        snomed=("60621009",),
    ),
    # The highest pressures measured were about 480/350 mmHg, in weightlifters mid-lift
    # (MacDougall et al., 1985); a systolic pressure below 20 mmHg cannot be measured
    # with a cuff. A diastolic pressure of 0 is recorded when sounds are heard to zero.
    _measure(
        "a systolic (upper) blood pressure",
        "mm[Hg]",
        20,
        500,
        {"mm[Hg]": SAME, "mmHg": SAME, "kPa": _scale(7.50062)},
        loinc=("8480-6",),
        snomed=("72313002", "271649006", "163030003"),
    ),
    _measure(
        "a diastolic (lower) blood pressure",
        "mm[Hg]",
        0,
        360,
        {"mm[Hg]": SAME, "mmHg": SAME, "kPa": _scale(7.50062)},
        loinc=("8462-4",),
        snomed=("1091811000000102", "271650006", "163031004"),
    ),
    # Heart rates of about 600 a minute are reported in pre-excited atrial fibrillation;
    # the slowest in a conscious person are under 30 (complete heart block).
    _measure(
        "a heart rate",
        "/min",
        10,
        600,
        {"/min": SAME, "{beats}/min": SAME, "bpm": SAME, "beats/min": SAME, "/s": _scale(60)},
        loinc=("8867-4", "8889-8"),
        snomed=("364075005", "78564009"),
    ),
    # A breathing rate of 0 is recorded in apnoea; newborns breathe up to about 100 a minute.
    _measure(
        "a breathing rate",
        "/min",
        0,
        150,
        {"/min": SAME, "{breaths}/min": SAME, "breaths/min": SAME},
        loinc=("9279-1",),
        snomed=("86290005",),
    ),
    # The lowest body temperatures survived are about 12-14 °C (accidental hypothermia);
    # the highest about 46.5 °C (heat stroke, Willie Jones, 1980).
    _measure(
        "a body temperature",
        "Cel",
        10,
        47,
        {
            "Cel": SAME,
            "°C": SAME,
            "C": SAME,
            "degC": SAME,
            "[degF]": lambda f: (f - 32) * 5 / 9,
            "°F": lambda f: (f - 32) * 5 / 9,
            "degF": lambda f: (f - 32) * 5 / 9,
            "K": lambda k: k - 273.15,
        },
        loinc=("8310-5", "8331-1", "8328-7", "8333-7", "8332-9"),
        snomed=("386725007",),
    ),
    # Saturation is a share of haemoglobin, so never above 100%; oximeters read down to
    # about 10% (cyanotic heart disease is 60-80%).
    _measure(
        "an oxygen saturation",
        "%",
        10,
        100,
        {"%": SAME},
        loinc=("59408-5", "2708-6", "20564-1", "2713-6"),
        snomed=("431314004", "103228002"),
    ),
    # HbA1c in % (DCCT). Case reports of haemolysis show about 2%; over 20% is barely
    # reported. IFCC mmol/mol = (% - 2.15) x 10.929 (the IFCC-DCCT master equation).
    _measure(
        "an HbA1c",
        "%",
        2,
        25,
        {"%": SAME, "mmol/mol": lambda m: m / 10.929 + 2.15},
        loinc=("4548-4", "17856-6", "59261-8", "41995-2"),
        snomed=("1003671000000109", "43396009"),
    ),
    # Creatinine in µmol/L (88.42 µmol/L per mg/dL): about 10 in tiny infants; the
    # highest reported in acute kidney injury are about 6,500 (73 mg/dL).
    _measure(
        "a creatinine",
        "umol/L",
        5,
        7000,
        {"umol/L": SAME, "mmol/L": _scale(1000), "mg/dL": _scale(88.42), "mg/L": _scale(8.842)},
        loinc=("2160-0", "38483-4", "14682-9", "59826-8"),
        snomed=("1000731000000107", "113075003"),
    ),
    # Potassium: survival is reported from about 1.0 to about 14 mmol/L; a sample
    # contaminated with EDTA can read 20 or more, so the upper limit is wider still.
    _measure(
        "a potassium",
        "mmol/L",
        0.5,
        25,
        _mass_conc(39.098),
        loinc=("2823-3", "6298-4"),
        snomed=("1000651000000109",),
    ),
    # Sodium: survival is reported from about 95 mmol/L to about 255 (salt poisoning).
    _measure(
        "a sodium",
        "mmol/L",
        80,
        260,
        _mass_conc(22.990),
        loinc=("2951-2", "2947-0"),
        snomed=("1000661000000107",),
    ),
    # Haemoglobin in g/L: survival is reported at about 7 g/L (Jehovah's Witness case
    # reports); polycythaemia and newborns reach about 250. 1 mmol/L (Fe) = 16.11 g/L.
    _measure(
        "a haemoglobin",
        "g/L",
        5,
        300,
        {"g/L": SAME, "g/dL": _scale(10), "mg/dL": _scale(0.01), "mmol/L": _scale(16.11)},
        loinc=("718-7", "20509-6", "30313-1"),
        snomed=("1022431000000105", "271026005"),
    ),
    # Total cholesterol in mmol/L (38.67 mg/dL per mmol/L): about 1 in
    # abetalipoproteinaemia; over 50 in cholestasis (lipoprotein X).
    _measure(
        "a cholesterol",
        "mmol/L",
        0.2,
        80,
        {"mmol/L": SAME, "mg/dL": _scale(1 / 38.67), "g/L": _scale(100 / 38.67)},
        loinc=("2093-3", "14647-2"),
        snomed=("1005671000000105",),
    ),
    # HDL cholesterol: near 0 in Tangier disease, about 5 in CETP deficiency.
    _measure(
        "an HDL cholesterol",
        "mmol/L",
        0,
        10,
        {"mmol/L": SAME, "mg/dL": _scale(1 / 38.67)},
        loinc=("2085-9", "14646-4"),
    ),
    # LDL cholesterol: never below 0; about 25 in homozygous familial hypercholesterolaemia.
    _measure(
        "an LDL cholesterol",
        "mmol/L",
        0,
        60,
        {"mmol/L": SAME, "mg/dL": _scale(1 / 38.67)},
        loinc=("18262-6", "13457-7", "2089-1", "22748-8"),
        snomed=("1022191000000100",),
    ),
    # Triglycerides in mmol/L (88.57 mg/dL per mmol/L): case reports of familial
    # chylomicronaemia reach about 200 mmol/L.
    _measure(
        "a triglyceride",
        "mmol/L",
        0.05,
        400,
        {"mmol/L": SAME, "mg/dL": _scale(1 / 88.57), "g/L": _scale(100 / 88.57)},
        loinc=("2571-8", "14927-8"),
    ),
    # Glucose in mmol/L (18.016 mg/dL per mmol/L): the highest survived is about
    # 147 mmol/L (2,656 mg/dL); meters read down to about 0.5.
    _measure(
        "a blood glucose",
        "mmol/L",
        0.2,
        160,
        _mass_conc(180.16),
        loinc=("2339-0", "2345-7", "14749-6", "15074-8", "41653-7"),
        snomed=("33747003",),
    ),
    # eGFR in mL/min/1.73 m²: never below 0; hyperfiltration rarely exceeds 200.
    _measure(
        "an eGFR",
        "mL/min/1.73m2",
        0,
        350,
        {"mL/min/{1.73_m2}": SAME, "mL/min/1.73m2": SAME, "mL/min": SAME},
        loinc=("33914-3", "62238-1", "48642-3", "48643-1", "69405-9", "98979-8"),
        snomed=("1011481000000105",),
    ),
    # Urea in mmol/L: about 0.5 in liver failure or pregnancy; about 100 in untreated
    # kidney failure. Urea nitrogen (BUN) in mg/dL x 0.357; urea in mg/dL x 0.1665.
    _measure(
        "a urea",
        "mmol/L",
        0.1,
        150,
        {"mmol/L": SAME, "mg/dL": _scale(0.357)},
        loinc=("6299-2", "3094-0", "14937-7"),
    ),
    _measure(
        "a urea",
        "mmol/L",
        0.1,
        150,
        {"mmol/L": SAME, "mg/dL": _scale(0.1665)},
        loinc=("22664-7", "3091-6"),
        snomed=("1000981000000109",),
    ),
    # ALT in U/L: reported "< 5" as low as labs measure; about 20,000 in paracetamol
    # poisoning. 1 µkat/L = 60 U/L.
    _measure(
        "an ALT", "U/L", 0, 40000, ENZYME, loinc=("1742-6", "1743-4", "76625-3"), snomed=("1018251000000107",)
    ),
    # Platelets in 10^9/L: 0 in aplasia; about 5,000 in extreme thrombocytosis.
    _measure(
        "a platelet count",
        "10*9/L",
        0,
        6000,
        CELL_COUNT,
        loinc=("777-3", "26515-7", "49497-1"),
        snomed=("1022651000000100",),
    ),
    # White cells in 10^9/L: 0 in aplasia; over 1,000 in leukaemia with leucostasis.
    _measure(
        "a white cell count",
        "10*9/L",
        0,
        2000,
        CELL_COUNT,
        loinc=("6690-2", "26464-8", "804-5"),
        snomed=("1022541000000102",),
    ),
)

BY_CODE: dict[tuple[str, str], Measure] = {}
for _m in MEASURES:
    BY_CODE.update({(LOINC, c): _m for c in _m.loinc})
    BY_CODE.update({(SNOMED, c): _m for c in _m.snomed})
# Every unit some measurement here uses: a unit outside these is not known well enough to
# say it does not fit.
KNOWN_UNITS = frozenset(u for m in MEASURES for u in m.units) | frozenset(
    _unit_key(u)
    for u in ("mg", "mL", "L", "mmol", "ng/mL", "pg/mL", "fL", "pg", "kU/L", "mU/L", "ug/L", "s", "h")
)


def _measure_of(concept) -> Measure | None:
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict):
            found = BY_CODE.get((coding.get("system"), str(coding.get("code") or "").strip()))
            if found:
                return found
    return None


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        found = float(value)
    except ValueError:
        return None
    return found if found == found and abs(found) != float("inf") else None


def _convert(measure: Measure, quantity: dict) -> tuple[str, float | None]:
    """("fits", value in the measure's unit), ("unknown", None) for a unit not known
    here, or ("wrong", None) for a known unit of something else."""
    keys = [_unit_key(str(quantity.get(k) or "")) for k in ("code", "unit")]
    keys = [k for k in keys if k]
    value = _number(quantity.get("value"))
    for key in keys:
        if key in measure.units:
            return "fits", (measure.units[key](value) if value is not None else None)
    if keys and any(k in KNOWN_UNITS for k in keys):
        return "wrong", None
    return "unknown", None


def _amount(quantity: dict) -> str:
    value = _number(quantity.get("value"))
    if value is None:
        return str(quantity.get("value") or "")
    shown = Decimal(str(value)).quantize(Decimal("0.01")).normalize()
    text = f"{shown:,f}"
    return with_unit(text, unit_words(quantity))


def _quantities(item: Item) -> Iterator[tuple[Measure, dict]]:
    """The measured quantities of an Observation this module knows: its value and its
    components' values (the two numbers of a blood pressure)."""
    measure = _measure_of(item.resource.get("code"))
    quantity = item.resource.get("valueQuantity")
    if measure and isinstance(quantity, dict):
        yield measure, quantity
    for component in item.resource.get("component") or ():
        if not isinstance(component, dict):
            continue
        measure = _measure_of(component.get("code"))
        quantity = component.get("valueQuantity")
        if measure and isinstance(quantity, dict):
            yield measure, quantity


def _observations(record: Record) -> list[Item]:
    return [i for i in record.of_type("Observation") if not i.entry.entered_in_error]


def _when(item: Item) -> str:
    moment = item.entry.clinical_date
    return f", on {day(moment)}" if moment else ""


@rule(
    "value-out-of-range",
    kind=Kind.PLAUSIBILITY,
    severity=Severity.MEDIUM,
    audience=Audience.BOTH,
    title="A measurement that is not possible",
    sentence="{measurement} is not possible: it may have been recorded in the wrong unit or mistyped.",
)
def value_out_of_range(record: Record) -> Iterator[Hit]:
    for item in _observations(record):
        found = []
        for measure, quantity in _quantities(item):
            fits, value = _convert(measure, quantity)
            if fits == "fits" and value is not None and not measure.low <= value <= measure.high:
                found.append(f"{measure.noun} of {_amount(quantity)}")
        if found:
            first = found[0]
            yield Hit(
                items=(item,),
                says={item.entry.pk: "; ".join(found) + _when(item)},
                words={"measurement": first[0].upper() + first[1:]},
            )


@rule(
    "unit-does-not-fit",
    kind=Kind.PLAUSIBILITY,
    severity=Severity.LOW,
    audience=Audience.HOLDER,
    title="A unit that does not fit the measurement",
    sentence="{measurement} is recorded in {unit}, which is not a unit of that measurement.",
)
def unit_does_not_fit(record: Record) -> Iterator[Hit]:
    for item in _observations(record):
        found = []
        for measure, quantity in _quantities(item):
            if _convert(measure, quantity)[0] == "wrong":
                found.append((measure, quantity))
        if found:
            measure, quantity = found[0]
            noun = measure.noun.split(" ", 1)[1]
            yield Hit(
                items=(item,),
                says={item.entry.pk: "; ".join(f"{m.noun} of {_amount(q)}" for m, q in found) + _when(item)},
                words={"measurement": f"The {noun}", "unit": unit_words(quantity) or "an unknown unit"},
            )


# --- Dates ---------------------------------------------------------------------------------

# Where each type keeps its clinical dates, and whether the date is of the event itself
# (checked against the date of death) or of when it was written down (a condition may be
# recorded after death, on a death certificate).
DATES = {
    "Condition": (("onsetDateTime", True), ("onsetPeriod.start", True), ("recordedDate", False)),
    "Observation": (("effectiveDateTime", True), ("effectivePeriod.start", True), ("effectiveInstant", True)),
    "Procedure": (("performedDateTime", True), ("performedPeriod.start", True)),
    "MedicationRequest": (("authoredOn", True),),
    "Immunization": (("occurrenceDateTime", True),),
    "Encounter": (("period.start", True),),
    "AllergyIntolerance": (("recordedDate", False),),
}
# What is done after a death because of it: certifying it, its cause, a post-mortem.
AFTER_DEATH = frozenset(
    {
        (SNOMED, "308646001"),  # death certification
        (SNOMED, "29240004"),  # autopsy examination
        (LOINC, "69453-9"),  # cause of death
        (LOINC, "69409-1"),  # certificate of death
    }
)
# Items that may rightly be dated ahead: what is planned, not done.
NOT_DONE = frozenset({"planned", "preparation", "not-done", "draft", "proposed", "on-hold"})


def _path(resource: dict, path: str):
    return value_at(resource, path)


def _span(value: str) -> tuple[date, date, timedelta] | None:
    """The first and last day a FHIR date or dateTime may mean, as written (its own
    local day: "2020" is 1 January to 31 December 2020), and the slack to allow for a
    time of day in another time zone (a day, when there is a time)."""
    if not isinstance(value, str):
        return None
    moment = parse_fhir_datetime(value)
    if moment is None:
        return None
    if len(value) == 4:
        return date(moment.year, 1, 1), date(moment.year, 12, 31), timedelta(0)
    if len(value) == 7:
        following = date(moment.year + moment.month // 12, moment.month % 12 + 1, 1)
        return date(moment.year, moment.month, 1), following - timedelta(days=1), timedelta(0)
    try:
        written = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return written, written, timedelta(days=1 if len(value) > 10 else 0)


def _codes(item: Item) -> set[tuple[str, str]]:
    found = {(c.get("system"), str(c.get("code"))) for c in item.codings()}
    for concept in item.resource.get("type") or ():
        if isinstance(concept, dict):
            found |= {
                (c.get("system"), str(c.get("code")))
                for c in concept.get("coding") or ()
                if isinstance(c, dict)
            }
    return found


def _impossible_date(record: Record, item: Item, today: date) -> tuple[str, str] | None:
    status = str(item.resource.get("status") or "")
    for path, of_event in DATES.get(item.type, ()):
        value = _path(item.resource, path)
        span = _span(value)
        if span is None:
            continue
        first, last, slack = span
        # The date is written in words only for a hit: most items have none.
        if first > today + timedelta(days=1) and status not in NOT_DONE:
            return fhir_moment(value), "which is in the future"
        if record.birth_date and last + slack < record.birth_date:
            return fhir_moment(value), f"which is before the date of birth, {day(record.birth_date)}"
        died = record.death_date
        if of_event and died and first - slack > died and not (_codes(item) & AFTER_DEATH):
            return fhir_moment(value), f"which is after the date of death, {day(record.death_date)}"
    return None


@rule(
    "date-impossible",
    kind=Kind.PLAUSIBILITY,
    severity=Severity.MEDIUM,
    audience=Audience.BOTH,
    title="A date that is not possible",
    sentence="{name} is dated {when}, {why}: the date may have been mistyped.",
)
def date_impossible(record: Record) -> Iterator[Hit]:
    today = timezone.localdate(timezone.now())
    for item in record.of_type(*DATES):
        if item.entry.entered_in_error:
            continue
        found = _impossible_date(record, item, today)
        if found:
            when, why = found
            yield Hit(
                items=(item,),
                says={item.entry.pk: f"{item.name}, dated {when}"},
                words={"name": item.name, "when": when, "why": why},
            )


# --- Conditions that cannot be, at an age or for a sex --------------------------------------


@dataclass(frozen=True)
class Limit:
    name: str  # in clinical words: the holder reads these
    sex: str = ""  # the administrative sex it cannot be recorded against
    min_age: int | None = None
    max_age: int | None = None


# Conservative on purpose. Administrative sex is not anatomy (a trans man may be pregnant),
# so the sex limits are not applied at all when the record holds anything about gender
# identity, and the finding goes to the holder only.
CONDITION_LIMITS = {
    # Pregnancy: the youngest mother recorded was 5 (Lina Medina, 1939); the oldest,
    # after IVF, about 74.
    "77386006": Limit("Pregnancy", sex="male", min_age=5, max_age=80),
    "72892002": Limit("Normal pregnancy", sex="male", min_age=5, max_age=80),
    "19169002": Limit("Miscarriage in first trimester", sex="male", min_age=5, max_age=80),
    "198992004": Limit("Antepartum eclampsia", sex="male", min_age=5, max_age=80),
    "398254007": Limit("Pre-eclampsia", sex="male", min_age=5, max_age=80),
    "363443007": Limit("Malignant tumour of ovary", sex="male"),
    "363354003": Limit("Malignant tumour of cervix", sex="male"),
    "129103003": Limit("Endometriosis", sex="male"),
    # Menopause: premature ovarian insufficiency starts in the teens at the earliest.
    "289903006": Limit("Menopause", sex="male", min_age=10),
    "76498008": Limit("Postmenopausal state", sex="male", min_age=10),
    "399068003": Limit("Malignant tumour of prostate", sex="female"),
    "126906006": Limit("Neoplasm of prostate", sex="female"),
    "92691004": Limit("Carcinoma in situ of prostate", sex="female"),
    # Benign prostatic hyperplasia needs adult androgens: none before puberty.
    "266569009": Limit("Benign prostatic hyperplasia", sex="female", min_age=10),
    "363449006": Limit("Malignant tumour of testis", sex="female"),
    # Senile dementia is by definition of late life; the youngest Alzheimer's disease
    # reported began at 19.
    "15662003": Limit("Senile dementia", min_age=40),
    "26929004": Limit("Alzheimer's disease", min_age=15),
}
GENDER_IDENTITY = frozenset({"93461009", "407374003", "407375002", "407376001", "407377005"})


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _mentions_gender_identity(record: Record) -> bool:
    for item in record.items:
        if item.entry.category == "gender_identity":
            return True
        if item.type == "Condition" and any(c.get("code") in GENDER_IDENTITY for c in item.codings()):
            return True
    return False


def _onset(item: Item) -> date | None:
    for path in ("onsetDateTime", "onsetPeriod.start", "recordedDate"):
        value = _path(item.resource, path)
        if isinstance(value, str) and len(value) >= 10:
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                continue
    return None


@rule(
    "condition-impossible-for-age-or-sex",
    kind=Kind.PLAUSIBILITY,
    severity=Severity.MEDIUM,
    audience=Audience.HOLDER,
    title="A condition that cannot apply to this patient",
    sentence="{condition} is recorded {why}: the code, the patient's details or the patient may be wrong.",
)
def condition_impossible_for_age_or_sex(record: Record) -> Iterator[Hit]:
    sex_known = record.sex in ("male", "female") and not _mentions_gender_identity(record)
    for item in record.of_type("Condition"):
        if item.entry.entered_in_error:
            continue
        codes = [str(c.get("code")) for c in item.codings() if c.get("system") == SNOMED]
        limit = next((CONDITION_LIMITS[c] for c in codes if c in CONDITION_LIMITS), None)
        if limit is None:
            continue
        why = ""
        if sex_known and limit.sex and record.sex == limit.sex:
            why = f"for a patient whose recorded sex is {record.sex}"
        onset = _onset(item)
        if not why and onset and record.birth_date:
            age = _age(record.birth_date, onset)
            if (limit.min_age is not None and 0 <= age < limit.min_age) or (
                limit.max_age is not None and age > limit.max_age
            ):
                why = f"at the age of {age}" if age else "in the first year of life"
        if why:
            name = item.name or limit.name
            yield Hit(
                items=(item,),
                says={item.entry.pk: f"{name} ({limit.name.lower()}), {why}"},
                words={"condition": name, "why": why},
            )


# --- Medicines current for too long -------------------------------------------------------

YEARS_CURRENT = 15


def _medicine_keys(item: Item) -> set:
    keys = {("code", c.get("system"), str(c.get("code"))) for c in item.codings("medicationCodeableConcept")}
    reference = item.resource.get("medicationReference")
    if isinstance(reference, dict) and reference.get("reference"):
        keys.add(("ref", str(reference["reference"])))
    name = (item.concept_text("medicationCodeableConcept") or item.entry.display or "").strip().lower()
    if name:
        keys.add(("name", name))
    return keys


def _medicine_date(item: Item) -> datetime | None:
    """When the medicine was last prescribed or said to be taken: a statement's
    assertion, else a request's authoring, else the entry's clinical date."""
    paths = ("dateAsserted",) if item.type == "MedicationStatement" else ("authoredOn",)
    for path in paths:
        found = parse_fhir_datetime(item.resource.get(path))
        if found:
            return found
    return item.entry.clinical_date


@rule(
    "medicine-unchanged-too-long",
    kind=Kind.PLAUSIBILITY,
    severity=Severity.LOW,
    audience=Audience.HOLDER,
    title="A medicine current for a very long time",
    sentence=(
        "{medicine} has been recorded as current since {year}, with no later prescription or "
        "review of it: it may no longer be taken."
    ),
)
def medicine_unchanged_too_long(record: Record) -> Iterator[Hit]:
    medicines = [
        (i, _medicine_date(i), _medicine_keys(i))
        for i in record.of_type("MedicationRequest", "MedicationStatement")
        if not i.entry.entered_in_error
    ]
    now = timezone.now()
    until = now
    if record.death_date:
        until = min(now, datetime.combine(record.death_date, datetime.min.time(), tzinfo=now.tzinfo))
    cutoff = until.replace(year=until.year - YEARS_CURRENT, day=min(until.day, 28))
    for item, when, keys in medicines:
        if item.resource.get("status") != "active" or when is None or when >= cutoff:
            continue
        later = any(other is not item and w and w > when and k & keys for other, w, k in medicines)
        if later:
            continue
        name = item.name
        yield Hit(
            items=(item,),
            says={item.entry.pk: f"{name}, current since {fhir_moment(when.date().isoformat())}"},
            words={"medicine": name, "year": str(when.year)},
        )
