"""Run by beat every AUDIT_SEAL_SECONDS: seal the audit events committed since the last
block (audit.ledger). Any number of workers may run it at once: one seals, the others
find the sealer's lock taken and return."""

from celery import shared_task

from . import ledger


@shared_task(acks_late=True)
def seal() -> int:
    """Seal what is pending, however many blocks it takes; the number of blocks."""
    return ledger.seal_all()
