"""A large ingest runs as a Celery task in a live worker and reports its progress."""

import json
from pathlib import Path

import pytest

from phr.models import EntryVersion, IngestBatch, Organisation, RecordEntry
from phr.tasks import ingest_batch


@pytest.mark.django_db(transaction=True)
def test_a_worker_ingests_a_batch_and_reports_progress(live_worker, samples, wait_for):
    org = Organisation.objects.create(ods_code="RW100", name="Worker Test Trust", kind="acute_trust")
    paths = sorted(str(p) for p in (samples / "synthea").glob("*.json"))[:4]
    expected = sum(len(json.loads(Path(p).read_text())["entry"]) for p in paths)
    batch = IngestBatch.objects.create(organisation=org, source="integration")

    ingest_batch.delay(str(batch.pk), paths)

    seen_progress = set()

    def finished():
        batch.refresh_from_db()
        seen_progress.add(batch.processed)
        return batch.status == IngestBatch.Status.DONE

    wait_for(finished, timeout=120, what="the ingest task")
    assert batch.total == expected
    assert batch.processed == expected
    assert batch.accepted == expected
    assert batch.rejected == 0
    assert RecordEntry.objects.filter(owner=org).count() == batch.created
    assert EntryVersion.objects.filter(batch=batch).count() == batch.created
    assert live_worker.poll() is None  # the worker is still alive
    assert "phr.tasks.ingest_batch[" in live_worker.log_path.read_text()  # it ran there, not in this process


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_finished_batch_changes_nothing(live_worker, samples, wait_for):
    org = Organisation.objects.create(ods_code="RW101", name="Worker Test Trust 2", kind="acute_trust")
    path = str(next((samples / "synthea").glob("Clemente_Kreiger_*.json")))
    batch = IngestBatch.objects.create(organisation=org, source="integration")
    ingest_batch.delay(str(batch.pk), [path])
    wait_for(lambda: IngestBatch.objects.get(pk=batch.pk).status == "done", what="the first delivery")
    versions = EntryVersion.objects.count()

    ingest_batch.delay(str(batch.pk), [path])  # as if the broker delivered it twice
    marker = IngestBatch.objects.create(organisation=org, source="integration-marker")
    ingest_batch.delay(str(marker.pk), [path])  # queued after the duplicate: runs after it
    wait_for(lambda: IngestBatch.objects.get(pk=marker.pk).status == "done", what="the marker batch")

    assert EntryVersion.objects.count() == versions
    assert IngestBatch.objects.get(pk=marker.pk).unchanged == 70
