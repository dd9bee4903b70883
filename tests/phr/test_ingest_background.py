"""A background ingest in a deployment where the command, web and worker are separate
containers: the input travels through the shared spool folder, the worker reads nothing
outside it, the command stops following after --wait, and a message the broker delivers
twice runs the batch once (or again, when the worker running it has died)."""

import json
import time
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from phr import spool, tasks
from phr.models import EntryVersion, IngestBatch, RecordEntry
from phr.tasks import ingest_batch

pytestmark = pytest.mark.django_db

NHS = "https://fhir.nhs.uk/Id/nhs-number"
FEED = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {
            "resource": {
                "resourceType": "Patient",
                "id": "bg-p",
                "identifier": [{"system": NHS, "value": "9990000026"}],
            }
        },
        {
            "resource": {
                "resourceType": "Condition",
                "id": "bg-c",
                "subject": {"reference": "Patient/bg-p"},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
            }
        },
    ],
}


@pytest.fixture(autouse=True)
def spool_dir(settings, tmp_path):
    settings.INGEST_SPOOL_DIR = tmp_path / "spool"
    return settings.INGEST_SPOOL_DIR


@pytest.fixture
def feed(tmp_path):
    path = tmp_path / "outside" / "feed.json"
    path.parent.mkdir()
    path.write_text(json.dumps(FEED))
    return path


def queued_batch(organisation, feed, **fields) -> tuple[IngestBatch, list[str]]:
    """A batch as the command leaves it: its input copied into its spool folder."""
    batch = IngestBatch.objects.create(organisation=organisation, source="command", **fields)
    return batch, [str(p) for p in spool.receive(batch.pk, [feed])]


def spooled_files(batch: IngestBatch) -> list:
    return sorted(p for p in spool.batch_folder(batch.pk).rglob("*") if p.is_file())


# --- The spool ---------------------------------------------------------------------------


def test_the_command_queues_a_copy_in_the_spool_and_the_worker_removes_it(
    gp, feed, spool_dir, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        call_command("ingest", str(feed), "--org", gp.ods_code, "--no-wait")
    batch = IngestBatch.objects.get()
    copies = spooled_files(batch)
    assert len(queued) == 1
    assert [p.name for p in copies] == ["feed.json"]
    assert copies[0].read_bytes() == feed.read_bytes()
    assert spool_dir in copies[0].parents

    feed.unlink()  # the worker's container never saw the original
    outcome = ingest_batch(str(batch.pk), [str(p) for p in copies])

    assert (outcome["created"], outcome["rejected"]) == (2, 0)
    assert IngestBatch.objects.get(pk=batch.pk).status == IngestBatch.Status.DONE
    assert not spool.batch_folder(batch.pk).exists()


def test_a_batch_that_fails_leaves_no_spool_folder(gp, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": "Bundle", "entry": [')
    batch, paths = queued_batch(gp, broken)
    outcome = ingest_batch(str(batch.pk), paths)
    assert "not valid JSON" in outcome["error"]
    assert IngestBatch.objects.get(pk=batch.pk).status == IngestBatch.Status.FAILED
    assert not spool.batch_folder(batch.pk).exists()


def test_a_spool_folder_that_cannot_be_written_is_said_plainly_and_queues_nothing(gp, feed, settings):
    settings.INGEST_SPOOL_DIR = feed / "spool"  # under a file: no folder can be made there
    with pytest.raises(CommandError) as refused:
        call_command("ingest", str(feed), "--org", gp.ods_code, "--background")
    assert refused.value.returncode == 4
    assert "could not be copied into the ingest spool folder" in str(refused.value)
    assert IngestBatch.objects.get().status == IngestBatch.Status.FAILED


def test_same_named_inputs_keep_their_names_in_the_spool(gp, tmp_path):
    first, second = tmp_path / "a" / "feed.json", tmp_path / "b" / "feed.json"
    for path, fhir_id in ((first, "one"), (second, "two")):
        path.parent.mkdir()
        path.write_text(json.dumps({"resourceType": "Basic", "id": fhir_id, "code": {"text": "x"}}))
    batch = IngestBatch.objects.create(organisation=gp)
    copies = spool.receive(batch.pk, [first, second])
    assert [p.name for p in copies] == ["feed.json", "feed.json"]
    assert [json.loads(p.read_text())["id"] for p in copies] == ["one", "two"]


def test_the_worker_refuses_a_path_outside_the_spool(gp, feed):
    batch = IngestBatch.objects.create(organisation=gp, source="command")
    outcome = ingest_batch(str(batch.pk), [str(feed)])
    assert "outside the ingest spool folder" in outcome["error"]
    assert IngestBatch.objects.get(pk=batch.pk).status == IngestBatch.Status.FAILED
    assert not RecordEntry.objects.exists()


@pytest.mark.parametrize("batch_id", ["not-a-batch", "", "1; DROP TABLE phr_ingestbatch"])
def test_a_message_naming_no_batch_does_nothing(gp, feed, batch_id):
    assert ingest_batch(batch_id, [str(feed)]) == {}
    assert not RecordEntry.objects.exists()


def test_the_worker_refuses_a_path_that_climbs_out_of_the_spool(gp, feed):
    batch, _ = queued_batch(gp, feed)
    climbing = spool.batch_folder(batch.pk) / ".." / ".." / "outside" / "feed.json"
    outcome = ingest_batch(str(batch.pk), [str(climbing)])
    assert "outside the ingest spool folder" in outcome["error"]
    assert not RecordEntry.objects.exists()


def test_the_worker_refuses_a_link_in_the_spool_to_a_file_outside(gp, feed):
    batch, _ = queued_batch(gp, feed)
    link = spool.batch_folder(batch.pk) / "link.json"
    link.symlink_to(feed)
    outcome = ingest_batch(str(batch.pk), [str(link)])
    assert "outside the ingest spool folder" in outcome["error"]
    assert not RecordEntry.objects.exists()


def test_the_worker_refuses_another_batchs_spool_folder(gp, feed):
    other, other_paths = queued_batch(gp, feed)
    batch = IngestBatch.objects.create(organisation=gp, source="command")
    outcome = ingest_batch(str(batch.pk), other_paths)
    assert "outside the ingest spool folder" in outcome["error"]
    assert not RecordEntry.objects.exists()
    assert spooled_files(other)  # the other batch's input is left for it


# --- Waiting ------------------------------------------------------------------------------


def test_a_batch_no_worker_starts_stops_the_command_after_wait_with_its_id(
    gp, feed, django_capture_on_commit_callbacks
):
    # The message is queued only when the transaction commits; this one never does, so
    # the batch waits in the database as it would for a worker that is not running.
    started = time.monotonic()
    with django_capture_on_commit_callbacks(), pytest.raises(CommandError) as stopped:
        call_command("ingest", str(feed), "--org", gp.ods_code, "--background", "--wait", "0.4")
    batch = IngestBatch.objects.get()
    assert time.monotonic() - started < 5
    assert stopped.value.returncode == 3
    message = str(stopped.value)
    assert f"ingest batch {batch.pk} is still queued" in message
    assert "is the Celery worker running?" in message
    assert f"python manage.py ingest --follow {batch.pk}" in message
    assert batch.status == IngestBatch.Status.QUEUED  # it goes on without the command


def test_following_a_running_batch_stops_after_wait_with_its_progress(gp, capsys):
    batch = IngestBatch.objects.create(
        organisation=gp, status=IngestBatch.Status.RUNNING, processed=200, total=1000
    )
    with pytest.raises(CommandError) as stopped:
        call_command("ingest", "--follow", str(batch.pk), "--wait", "0.2", "--json")
    assert stopped.value.returncode == 3
    assert "still running (200 of 1000 resources checked)" in str(stopped.value)
    printed = json.loads(capsys.readouterr().out)
    assert (printed["batch"], printed["status"], printed["processed"]) == (str(batch.pk), "running", 200)


def test_following_a_finished_batch_reports_its_outcome(gp, feed, capsys):
    batch, paths = queued_batch(gp, feed)
    ingest_batch(str(batch.pk), paths)
    call_command("ingest", "--follow", str(batch.pk), "--json")
    printed = json.loads(capsys.readouterr().out)
    assert (printed["batch"], printed["created"]) == (str(batch.pk), 2)


def test_following_a_batch_that_does_not_exist_is_refused(db):
    with pytest.raises(CommandError) as refused:
        call_command("ingest", "--follow", str(uuid.uuid4()))
    assert refused.value.returncode == 2
    assert "there is no ingest batch" in str(refused.value)


# --- Delivered twice ---------------------------------------------------------------------


def test_a_delivery_while_another_worker_runs_the_batch_does_nothing(gp, feed):
    runner = uuid.uuid4()
    batch, paths = queued_batch(
        gp, feed, status=IngestBatch.Status.RUNNING, run_token=runner, heartbeat_at=timezone.now()
    )
    assert ingest_batch(str(batch.pk), paths) == {}
    batch.refresh_from_db()
    assert (batch.status, batch.run_token) == (IngestBatch.Status.RUNNING, runner)
    assert not RecordEntry.objects.exists()
    assert spooled_files(batch)  # still there for the worker running it


def test_a_batch_whose_worker_died_is_taken_over_after_the_lease(gp, feed):
    dead = uuid.uuid4()
    batch, paths = queued_batch(
        gp,
        feed,
        status=IngestBatch.Status.RUNNING,
        run_token=dead,
        heartbeat_at=timezone.now() - tasks.LEASE - timedelta(seconds=1),
    )
    outcome = ingest_batch(str(batch.pk), paths)
    batch.refresh_from_db()
    assert (outcome["created"], batch.status) == (2, IngestBatch.Status.DONE)
    assert batch.run_token != dead
    assert not spool.batch_folder(batch.pk).exists()


def test_taking_over_a_batch_already_stored_adds_no_version(gp, feed):
    batch, paths = queued_batch(gp, feed)
    ingest_batch(str(batch.pk), paths)
    versions = EntryVersion.objects.count()
    # As if the worker had stored everything and was killed before marking the batch done.
    IngestBatch.objects.filter(pk=batch.pk).update(
        status=IngestBatch.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    paths = [str(p) for p in spool.receive(batch.pk, [feed])]

    outcome = ingest_batch(str(batch.pk), paths)

    assert (outcome["unchanged"], outcome["created"], outcome["updated"]) == (2, 0, 0)
    assert EntryVersion.objects.count() == versions
    assert RecordEntry.objects.count() == 2


def test_a_delivery_that_lost_the_batch_to_another_stops_before_storing(gp, tmp_path, monkeypatch):
    many = tmp_path / "many.ndjson"
    many.write_text(
        "\n".join(
            json.dumps({"resourceType": "Basic", "id": f"b{n}", "code": {"text": "x"}}) for n in range(400)
        )
    )
    batch, paths = queued_batch(gp, many)
    ingest = tasks.ingest_paths

    def another_worker_takes_over_meanwhile(*args, progress, **kwargs):
        def progress_after_takeover(done, total):
            IngestBatch.objects.filter(pk=batch.pk).update(run_token=uuid.uuid4())
            progress(done, total)

        return ingest(*args, progress=progress_after_takeover, **kwargs)

    monkeypatch.setattr(tasks, "ingest_paths", another_worker_takes_over_meanwhile)

    assert ingest_batch(str(batch.pk), paths) == {}
    assert not RecordEntry.objects.exists()
    assert IngestBatch.objects.get(pk=batch.pk).status == IngestBatch.Status.RUNNING
    assert spooled_files(batch)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_goes_on_while_a_long_step_reports_no_progress(gp, monkeypatch):
    monkeypatch.setattr(tasks, "HEARTBEAT", timedelta(seconds=0.05))
    token = uuid.uuid4()
    long_ago = timezone.now() - timedelta(hours=1)
    batch = IngestBatch.objects.create(
        organisation=gp, status=IngestBatch.Status.RUNNING, run_token=token, heartbeat_at=long_ago
    )
    with tasks._heartbeat(batch.pk, token):
        time.sleep(0.5)
    batch.refresh_from_db()
    assert batch.heartbeat_at > long_ago + timedelta(minutes=59)
