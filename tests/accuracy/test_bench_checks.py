"""The accuracy bench's generator (bench/checks.py) stays in step with the rules: on the
smallest Synthea sample, every rule has an injector, and each injection is found by the
rule it targets. No timing here: the bench itself measures."""

import importlib.util
import sys
from pathlib import Path

import pytest

from accuracy.checks import load_rules
from accuracy.checks.base import RULES

pytestmark = pytest.mark.django_db

BENCH = Path(__file__).resolve().parents[2] / "bench" / "checks.py"


def bench_module():
    if "bench_checks" in sys.modules:
        return sys.modules["bench_checks"]
    spec = importlib.util.spec_from_file_location("bench_checks", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_checks"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_rule_has_an_injector():
    load_rules()
    assert set(bench_module().INJECTORS) == set(RULES)


def test_injectors_produce_findings_of_their_rules(samples):
    bench = bench_module()
    path = next((samples / "synthea").glob("Clemente_Kreiger_*.json"))
    result = bench.evaluate([path], seed=bench.SEED)
    rows = result["score"]["rules"]
    injected = {rule for rule, row in rows.items() if row["injected"]}
    assert injected == set(RULES), f"not injected: {set(RULES) - injected}"
    missed = {rule: row["missed"] for rule, row in rows.items() if row["missed"]}
    assert not missed, result["score"]["missed"]
