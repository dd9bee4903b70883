"""Accuracy checks across the holders of a shared record (issue 13): declared rules
(accuracy.checks.base) in families by kind, run by the engine (accuracy.checks.engine)."""

from . import base  # noqa: F401  (the rules register themselves on import, below)


def load_rules() -> None:
    """Import every family of rules so that each registers itself in base.RULES."""
    from . import agreement, completeness, conformance, holders, plausibility  # noqa: F401
