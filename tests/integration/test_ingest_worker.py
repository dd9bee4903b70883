"""A large ingest runs as a Celery task in a live worker and reports its progress; its
input reaches the worker through the shared spool folder, and a message the broker
delivers twice runs the batch once."""

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from phr import spool
from phr.models import EntryVersion, IngestBatch, Organisation, RecordEntry
from phr.tasks import LEASE, ingest_batch


def cleared(batch: IngestBatch, wait_for) -> None:
    """The worker clears a finished batch's spool folder just after it commits the batch
    as done, so a test that has seen "done" waits a moment for the folder to go."""
    wait_for(
        lambda: not spool.batch_folder(batch.pk).exists(), timeout=10, what="the spool folder to be cleared"
    )


def queue(batch: IngestBatch, paths) -> list[str]:
    """Copy the input into the batch's spool folder, as the ingest command does."""
    return [str(p) for p in spool.receive(batch.pk, [Path(p) for p in paths])]


@pytest.mark.django_db(transaction=True)
def test_a_worker_ingests_a_batch_and_reports_progress(live_worker, samples, wait_for):
    org = Organisation.objects.create(ods_code="RW100", name="Worker Test Trust", kind="acute_trust")
    paths = sorted(str(p) for p in (samples / "synthea").glob("*.json"))[:4]
    expected = sum(len(json.loads(Path(p).read_text())["entry"]) for p in paths)
    batch = IngestBatch.objects.create(organisation=org, source="integration")

    ingest_batch.delay(str(batch.pk), queue(batch, paths))

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
    cleared(batch, wait_for)  # the worker cleared its input
    assert live_worker.poll() is None  # the worker is still alive
    assert "phr.tasks.ingest_batch[" in live_worker.log_path.read_text()  # it ran there, not in this process


@pytest.mark.django_db(transaction=True)
def test_the_command_hands_its_input_to_the_worker_through_the_spool(live_worker, samples, capsys, wait_for):
    Organisation.objects.create(ods_code="RW102", name="Worker Test Trust 3", kind="acute_trust")
    path = str(next((samples / "synthea").glob("Clemente_Kreiger_*.json")))

    call_command("ingest", path, "--org", "RW102", "--background", "--wait", "120", "--json")

    outcome = json.loads(capsys.readouterr().out)
    assert (outcome["created"], outcome["rejected"]) == (70, 0)
    batch = IngestBatch.objects.get(pk=outcome["batch"])
    assert batch.status == IngestBatch.Status.DONE
    cleared(batch, wait_for)
    assert f"ingest batch {batch.pk} for RW102: 70 accepted" in live_worker.log_path.read_text()


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_finished_batch_changes_nothing(live_worker, samples, wait_for):
    org = Organisation.objects.create(ods_code="RW101", name="Worker Test Trust 2", kind="acute_trust")
    path = str(next((samples / "synthea").glob("Clemente_Kreiger_*.json")))
    batch = IngestBatch.objects.create(organisation=org, source="integration")
    paths = queue(batch, [path])
    ingest_batch.delay(str(batch.pk), paths)
    wait_for(lambda: IngestBatch.objects.get(pk=batch.pk).status == "done", what="the first delivery")
    versions = EntryVersion.objects.count()

    ingest_batch.delay(str(batch.pk), paths)  # as if the broker delivered it twice
    marker = IngestBatch.objects.create(organisation=org, source="integration-marker")
    ingest_batch.delay(str(marker.pk), queue(marker, [path]))  # queued after the duplicate: runs after it
    wait_for(lambda: IngestBatch.objects.get(pk=marker.pk).status == "done", what="the marker batch")

    assert EntryVersion.objects.count() == versions
    assert IngestBatch.objects.get(pk=marker.pk).unchanged == 70


@pytest.mark.django_db(transaction=True)
def test_a_delivery_while_another_worker_runs_the_batch_leaves_it_and_looks_again(
    live_worker, samples, wait_for
):
    org = Organisation.objects.create(ods_code="RW103", name="Worker Test Trust 4", kind="acute_trust")
    path = str(next((samples / "synthea").glob("Clemente_Kreiger_*.json")))
    runner = uuid.uuid4()
    batch = IngestBatch.objects.create(
        organisation=org, status="running", run_token=runner, heartbeat_at=timezone.now()
    )

    sent = ingest_batch.delay(str(batch.pk), queue(batch, [path]))

    looks_again = f"phr.tasks.ingest_batch[{sent.id}] retry: Retry in {LEASE.total_seconds():.0f}s"
    wait_for(lambda: looks_again in live_worker.log_path.read_text(), what="the redelivery")
    batch.refresh_from_db()
    assert (batch.status, batch.run_token) == ("running", runner)
    assert not RecordEntry.objects.filter(owner=org).exists()
    assert spool.batch_folder(batch.pk).exists()
    spool.discard(batch.pk)


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_worker_died_is_taken_over_by_the_next_delivery(live_worker, samples, wait_for):
    org = Organisation.objects.create(ods_code="RW104", name="Worker Test Trust 5", kind="acute_trust")
    path = str(next((samples / "synthea").glob("Clemente_Kreiger_*.json")))
    batch = IngestBatch.objects.create(
        organisation=org,
        status="running",
        run_token=uuid.uuid4(),
        heartbeat_at=timezone.now() - LEASE - timedelta(seconds=1),
    )

    ingest_batch.delay(str(batch.pk), queue(batch, [path]))

    wait_for(lambda: IngestBatch.objects.get(pk=batch.pk).status == "done", what="the takeover")
    assert IngestBatch.objects.get(pk=batch.pk).created == 70
    cleared(batch, wait_for)
