"""Audit: the one place every disclosure and change is written down.

Call ``audit.record("ingest.batch", organisation=..., detail={...})`` from anywhere.
"""


def record(action: str, **fields):
    """Write one append-only audit event and return it; a failure propagates to the caller."""
    from .models import AuditEvent  # imported late: audit is a leaf every app may import

    return AuditEvent.objects.create(action=action, **fields)
