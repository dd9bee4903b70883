"""Background work for the record: large ingests run here and report progress on
their IngestBatch row, which the command (and later the API) polls.

The broker can deliver a message again while its first delivery is still running (a
long ingest outlives the visibility timeout) or after the worker running it was killed.
So a delivery first claims its batch: a queued batch, or a running one whose worker has
shown no sign of life for LEASE, can be claimed; any other delivery leaves the batch
alone and looks again after LEASE, in case that worker dies in the meantime.
"""

import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta

from celery import shared_task
from django.db import DatabaseError, connection
from django.db.models import F
from django.utils import timezone

from . import spool
from .ingest import UnusableInput, fail_batch, ingest_paths
from .models import IngestBatch

# LEASE must stay below the broker's visibility timeout: the look again after a skipped
# delivery is a message held by a worker until then, and must not itself be redelivered.
LEASE = timedelta(minutes=5)
HEARTBEAT = timedelta(seconds=30)


class LeaseLost(Exception):
    """Another delivery has taken the batch over; this one stops."""


@shared_task(bind=True, acks_late=True, max_retries=None)
def ingest_batch(self, batch_id: str, paths: list[str]) -> dict:
    """Run a queued ingest batch from its spool folder, once: a delivery of a finished
    batch, or of one another worker is running, changes nothing."""
    try:
        batch = IngestBatch.objects.select_related("organisation").filter(pk=uuid.UUID(str(batch_id))).first()
    except ValueError:  # not a batch id at all: a forged or garbled message
        batch = None
    if batch is None:
        return {}
    if batch.finished:
        return batch.outcome
    token = uuid.uuid4()
    if not _claim(batch.pk, token):
        _look_again_later(self)
        return {}
    batch.refresh_from_db()
    try:
        with _heartbeat(batch.pk, token):
            return _run(batch, paths, token)
    except LeaseLost:
        return {}
    except Exception as exc:
        _stop(batch, exc)
        raise
    finally:
        if IngestBatch.objects.get(pk=batch.pk).finished:
            spool.discard(batch.pk)


def _claim(batch_id, token: uuid.UUID) -> bool:
    """Take the batch for this delivery, unless a live worker holds it (one atomic update,
    so two deliveries at the same moment cannot both win)."""
    now = timezone.now()
    claimed = (
        IngestBatch.objects.filter(pk=batch_id)
        .takeable(stale_before=now - LEASE)
        .update(status=IngestBatch.Status.RUNNING, run_token=token, heartbeat_at=now, processed=0)
    )
    return claimed == 1


def _look_again_later(task) -> None:
    """Queue one more look at a batch another worker is running: the message this delivery
    acknowledges may be the batch's last, and if that worker dies the look takes over."""
    if task.request.called_directly or task.request.is_eager:
        return  # run in this process: no other worker can be running it
    task.retry(countdown=int(LEASE.total_seconds()))


@contextmanager
def _heartbeat(batch_id, token: uuid.UUID):
    """Renew the batch's heartbeat from a thread for as long as the run lasts, so a long
    step with no progress to report (storing a large batch in one transaction) never
    looks like a dead worker."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(HEARTBEAT.total_seconds()):
                try:
                    IngestBatch.objects.filter(pk=batch_id, run_token=token).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError:
                    connection.close()  # reconnect on the next beat
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"ingest-heartbeat-{batch_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _run(batch: IngestBatch, paths: list[str], token: uuid.UUID) -> dict:
    try:
        files = spool.checked(batch.pk, paths)
    except spool.OutsideSpool as exc:
        fail_batch(batch, str(exc))
        return batch.outcome

    def progress(done: int, total: int) -> None:
        still_ours = IngestBatch.objects.filter(pk=batch.pk, run_token=token).update(
            processed=done, total=total, heartbeat_at=timezone.now()
        )
        if not still_ours:
            raise LeaseLost

    try:
        result = ingest_paths(
            files,
            organisation=batch.organisation,
            atomic=batch.atomic,
            source=batch.source,
            progress=progress,
            batch=batch,
        )
    except UnusableInput:
        return IngestBatch.objects.values_list("outcome", flat=True).get(pk=batch.pk)
    IngestBatch.objects.filter(pk=batch.pk).update(processed=F("total"))
    return result.as_dict()


def _stop(batch: IngestBatch, exc: Exception) -> None:
    """Close a batch an unexpected error ended, so that nobody waits for it; what it had
    stored is kept, and ingesting the same files again stores only what is missing."""
    message = (
        f"the ingest stopped on an unexpected error ({type(exc).__name__}); anything it stored "
        "is kept, and ingesting the same files again stores only what is missing"
    )
    IngestBatch.objects.filter(pk=batch.pk).update(
        status=IngestBatch.Status.FAILED, finished_at=timezone.now(), outcome={"error": message}
    )
