"""python manage.py ingest PATH... --org ODS [--org-name NAME] [--atomic] [--json]
[--background] [--wait SECONDS | --no-wait], and python manage.py ingest --follow BATCH"""

import json
import math
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable

from phr import fhir, spool
from phr.ingest import IngestResult, UnusableInput, expand_paths, get_or_register_organisation, ingest_paths
from phr.models import IngestBatch
from phr.tasks import ingest_batch

EXIT_REJECTED, EXIT_UNUSABLE, EXIT_NOT_FINISHED, EXIT_NOT_QUEUED = 1, 2, 3, 4
POLL_SECONDS = 0.5


MAX_WORKERS = 32


class Command(BaseCommand):
    help = (
        "Ingest FHIR R4 Bundles, single resources or NDJSON from files or folders, as one batch "
        "owned by the sending organisation. Exit 0: all accepted; 1: some rejected; 2: input unusable; "
        "3: a background batch had not finished when --wait ran out; 4: a background batch could "
        "not be queued."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        self._parser = super().create_parser(prog_name, subcommand, **kwargs)
        return self._parser

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="*", metavar="PATH")
        parser.add_argument("--org", metavar="ODS", help="ODS code of the sending organisation (required)")
        parser.add_argument("--org-name", default="", help="registers the organisation if it is new")
        parser.add_argument("--atomic", action="store_true", help="store nothing if anything is rejected")
        parser.add_argument("--json", action="store_true", help="print one JSON object with the outcome")
        parser.add_argument("--background", action="store_true", help="run as a Celery task and follow it")
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            metavar="N",
            help="validate in N processes (1-32; default 1); a background batch runs in one worker",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=3600,
            metavar="SECONDS",
            help="how long to follow a background batch before leaving it running (default 3600)",
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="queue as a Celery task, print its batch id and return"
        )
        parser.add_argument(
            "--follow", metavar="BATCH", help="follow a background batch queued earlier, by its id"
        )

    def handle(self, *args, **options):
        self._check_arguments(options)
        as_json = options["json"]
        try:
            outcome = self._outcome(options)
        except (UnusableInput, OSError, RecursionError, MemoryError) as exc:
            message = str(exc) if isinstance(exc, UnusableInput) else f"input unusable ({type(exc).__name__})"
            if as_json:
                self.stdout.write(json.dumps(unusable_outcome(message)))
            raise CommandError(message, returncode=EXIT_UNUSABLE) from None
        if outcome is None:
            return
        self._report(outcome, as_json)
        if outcome.rejected:
            sys.exit(EXIT_REJECTED)

    def _check_arguments(self, options) -> None:
        if not math.isfinite(options["wait"]) or options["wait"] < 0:
            self._parser.error("--wait must be a number of seconds, 0 or more")
        if not 1 <= options["workers"] <= MAX_WORKERS:
            self._parser.error(f"--workers must be a number of processes from 1 to {MAX_WORKERS}")
        if options["follow"]:
            if options["paths"]:
                self._parser.error("--follow takes a batch id and no paths")
            return
        given = {"PATH": options["paths"], "--org": options["org"]}
        missing = [name for name, value in given.items() if not value]
        if missing:
            self._parser.error(f"the following arguments are required: {', '.join(missing)}")

    def _outcome(self, options) -> IngestResult | None:
        """The batch's outcome, or None when it was queued to run without waiting."""
        if options["follow"]:
            return self._follow(batch_named(options["follow"]), options["wait"], options["json"])
        organisation = get_or_register_organisation(options["org"], options["org_name"])
        files = expand_paths(options["paths"])
        size = sum(p.stat().st_size for p in files)
        if options["background"] or options["no_wait"] or size > settings.INGEST_BACKGROUND_BYTES:
            return self._in_background(organisation, files, options)
        bar = None if options["json"] else ProgressBar(self.stderr)
        outcome = ingest_paths(
            files,
            organisation=organisation,
            atomic=options["atomic"],
            progress=bar.update if bar else None,
            workers=options["workers"],
        )
        if bar:
            bar.close()
        return outcome

    def _in_background(self, organisation, files: list[Path], options) -> IngestResult | None:
        """Copy the input into the spool the worker shares, queue the batch, and follow it."""
        as_json = options["json"]
        batch = IngestBatch.objects.create(
            organisation=organisation, source="command", atomic=options["atomic"]
        )
        try:
            copies = spool.receive(batch.pk, files)
        except OSError as exc:
            why = f"the input could not be copied into the ingest spool folder ({exc.strerror or exc})"
            raise self._not_queued(batch, why, as_json) from None
        transaction.on_commit(lambda: self._queue(batch, copies, as_json))
        if not options["no_wait"]:
            return self._follow(batch, options["wait"], as_json)
        batch.refresh_from_db()
        if as_json:
            self.stdout.write(json.dumps({"batch": str(batch.pk), "status": batch.status}))
        else:
            self.stdout.write(
                f"ingest batch {batch.pk}: {batch.status}. Follow it with: {follow_command(batch)}"
            )
        return None

    def _queue(self, batch: IngestBatch, copies: list[Path], as_json: bool) -> None:
        try:
            ingest_batch.delay(str(batch.pk), [str(p) for p in copies])
        except BrokerUnreachable:
            raise self._not_queued(
                batch, "the task queue (CELERY_BROKER_URL) could not be reached", as_json
            ) from None

    def _not_queued(self, batch: IngestBatch, why: str, as_json: bool) -> CommandError:
        """Close a batch that never reached the worker and say so."""
        spool.discard(batch.pk)
        message = f"{why}; nothing was queued or stored"
        IngestBatch.objects.filter(pk=batch.pk).update(
            status=IngestBatch.Status.FAILED, finished_at=timezone.now(), outcome={"error": message}
        )
        if as_json:
            self.stdout.write(json.dumps(unusable_outcome(message) | {"batch": str(batch.pk)}))
        return CommandError(message, returncode=EXIT_NOT_QUEUED)

    def _follow(self, batch: IngestBatch, wait: float, as_json: bool) -> IngestResult:
        """Show a background batch's progress until it ends, or for ``wait`` seconds at most."""
        bar = None if as_json else ProgressBar(self.stderr, always=True)
        deadline = time.monotonic() + wait
        while True:
            batch.refresh_from_db()
            if bar and batch.total:
                bar.update(batch.processed, batch.total)
            left = deadline - time.monotonic()
            if batch.finished or left <= 0:
                break
            time.sleep(min(POLL_SECONDS, left))
        if bar:
            bar.close()
        if not batch.finished:
            raise self._still_going(batch, wait, as_json)
        if batch.status == IngestBatch.Status.FAILED:
            raise UnusableInput(batch.outcome.get("error", "the input could not be used"))
        data = batch.outcome
        return IngestResult(
            **{k: data[k] for k in ("accepted", "created", "updated", "unchanged", "rejected", "issues")},
            batch_id=data.get("batch", ""),
        )

    def _still_going(self, batch: IngestBatch, wait: float, as_json: bool) -> CommandError:
        """Stop following a batch that has not ended; it goes on without the command."""
        if batch.status == IngestBatch.Status.QUEUED:
            state = "still queued: no worker has started it (is the Celery worker running?)"
        else:
            state = f"still running ({batch.processed} of {batch.total} resources checked)"
        message = (
            f"ingest batch {batch.pk} is {state} after {wait:g} seconds; it goes on in the background. "
            f"Follow it with: {follow_command(batch)}"
        )
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "batch": str(batch.pk),
                        "status": batch.status,
                        "processed": batch.processed,
                        "total": batch.total,
                        "error": message,
                    }
                )
            )
        return CommandError(message, returncode=EXIT_NOT_FINISHED)

    def _report(self, outcome: IngestResult, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(outcome.as_dict()))
            return
        if outcome.by_type:
            width = max(len(t) for t in outcome.by_type)
            self.stdout.write(f"{'type'.ljust(width)}  created  updated  unchanged  rejected")
            for rtype in sorted(outcome.by_type):
                row = outcome.by_type[rtype]
                self.stdout.write(
                    f"{rtype.ljust(width)}  {row.get('created', 0):7}  {row.get('updated', 0):7}  "
                    f"{row.get('unchanged', 0):9}  {row.get('rejected', 0):8}"
                )
        self.stdout.write(
            f"accepted {outcome.accepted} (created {outcome.created}, updated {outcome.updated}, "
            f"unchanged {outcome.unchanged}), rejected {outcome.rejected}"
        )
        for item in outcome.issues:
            self.stdout.write(f"  {item['severity']}: {item['diagnostics']}")


def batch_named(value: str) -> IngestBatch:
    try:
        batch = IngestBatch.objects.filter(pk=uuid.UUID(value)).first()
    except ValueError:
        batch = None
    if batch is None:
        raise UnusableInput(f"there is no ingest batch {value}")
    return batch


def follow_command(batch: IngestBatch) -> str:
    return f"python manage.py ingest --follow {batch.pk}"


def unusable_outcome(message: str) -> dict:
    return {
        "accepted": 0,
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "issues": [fhir.issue("", message, severity="fatal", code="structure")],
        "error": message,
    }


class ProgressBar:
    """A one-line progress bar on stderr, shown only for long inputs on a terminal."""

    def __init__(self, stream, *, always: bool = False, threshold: int = 1000):
        self.stream, self.always, self.threshold, self.shown = stream, always, threshold, False

    def update(self, done: int, total: int) -> None:
        if (
            not (self.always or total >= self.threshold)
            or not getattr(self.stream, "isatty", lambda: False)()
        ):
            return
        width = 30
        filled = int(width * done / total) if total else width
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("")
