"""Accuracy checks: the conformance rules (accuracy.checks.base declares what a rule is)."""

from __future__ import annotations
