"""Background work for the record: large ingests run here and report progress on
their IngestBatch row, which the command (and later the API) polls."""

from celery import shared_task
from django.db.models import F

from .ingest import UnusableInput, ingest_paths
from .models import IngestBatch


@shared_task(acks_late=True)
def ingest_batch(batch_id: str, paths: list[str]) -> dict:
    """Run a queued ingest batch; re-delivery of a finished batch does nothing."""
    batch = IngestBatch.objects.select_related("organisation").get(pk=batch_id)
    if batch.status in (IngestBatch.Status.DONE, IngestBatch.Status.FAILED):
        return batch.outcome

    def progress(done: int, total: int) -> None:
        IngestBatch.objects.filter(pk=batch.pk).update(processed=done, total=total)

    try:
        result = ingest_paths(
            paths,
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
