"""Accuracy checks: the plausibility rules (accuracy.checks.base declares what a rule is)."""

from __future__ import annotations
