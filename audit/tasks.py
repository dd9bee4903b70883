"""Run by beat every AUDIT_SEAL_SECONDS: seal the audit events committed since the last
block (audit.ledger). Any number of workers may run it at once: one seals, the others
find the sealer's lock taken and return. And hourly: add the months ahead to the
partitioned trail (audit.partitions)."""

from celery import shared_task

from . import ledger, partitions


@shared_task(acks_late=True)
def seal() -> int:
    """Seal what is pending, however many blocks it takes; the number of blocks."""
    return ledger.seal_all()


@shared_task
def add_partitions() -> list[str]:
    """The partitions missing up to MONTHS_AHEAD months from now (PostgreSQL only)."""
    return partitions.ensure_months()
