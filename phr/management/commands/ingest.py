"""python manage.py ingest PATH... --org ODS [--org-name NAME] [--atomic] [--json]"""

import json
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from phr import fhir
from phr.ingest import IngestResult, UnusableInput, expand_paths, get_or_register_organisation, ingest_paths
from phr.models import IngestBatch
from phr.tasks import ingest_batch

EXIT_REJECTED, EXIT_UNUSABLE = 1, 2


class Command(BaseCommand):
    help = (
        "Ingest FHIR R4 Bundles, single resources or NDJSON from files or folders, as one batch "
        "owned by the sending organisation. Exit 0: all accepted; 1: some rejected; 2: input unusable."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument(
            "--org", required=True, metavar="ODS", help="ODS code of the sending organisation"
        )
        parser.add_argument("--org-name", default="", help="registers the organisation if it is new")
        parser.add_argument("--atomic", action="store_true", help="store nothing if anything is rejected")
        parser.add_argument("--json", action="store_true", help="print one JSON object with the outcome")
        parser.add_argument("--background", action="store_true", help="run as a Celery task and follow it")

    def handle(self, *args, **options):
        as_json = options["json"]
        try:
            organisation = get_or_register_organisation(options["org"], options["org_name"])
            files = expand_paths(options["paths"])
            size = sum(p.stat().st_size for p in files)
            if options["background"] or size > settings.INGEST_BACKGROUND_BYTES:
                outcome = self._in_background(organisation, files, options["atomic"], as_json)
            else:
                bar = None if as_json else ProgressBar(self.stderr)
                outcome = ingest_paths(
                    files,
                    organisation=organisation,
                    atomic=options["atomic"],
                    progress=bar.update if bar else None,
                )
                if bar:
                    bar.close()
        except (UnusableInput, OSError, RecursionError, MemoryError) as exc:
            message = str(exc) if isinstance(exc, UnusableInput) else f"input unusable ({type(exc).__name__})"
            if as_json:
                self.stdout.write(json.dumps(unusable_outcome(message)))
            raise CommandError(message, returncode=EXIT_UNUSABLE) from None
        self._report(outcome, as_json)
        if outcome.rejected:
            sys.exit(EXIT_REJECTED)

    def _in_background(self, organisation, files: list[Path], atomic: bool, as_json: bool) -> IngestResult:
        batch = IngestBatch.objects.create(organisation=organisation, source="command", atomic=atomic)
        paths = [str(p.resolve()) for p in files]
        transaction.on_commit(lambda: ingest_batch.delay(str(batch.pk), paths))
        bar = None if as_json else ProgressBar(self.stderr, always=True)
        while True:
            batch.refresh_from_db()
            if bar and batch.total:
                bar.update(batch.processed, batch.total)
            if batch.status in (IngestBatch.Status.DONE, IngestBatch.Status.FAILED):
                break
            time.sleep(0.5)
        if bar:
            bar.close()
        if batch.status == IngestBatch.Status.FAILED:
            raise UnusableInput(batch.outcome.get("error", "the input could not be used"))
        data = batch.outcome
        return IngestResult(
            **{k: data[k] for k in ("accepted", "created", "updated", "unchanged", "rejected", "issues")},
            batch_id=data.get("batch", ""),
        )

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
