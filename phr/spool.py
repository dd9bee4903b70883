"""The ingest spool: where the input of a background batch waits for the worker.

The ingest command, web and worker may run in different containers, so a path the
command was given means nothing to the worker. The command copies each input into the
batch's own folder under INGEST_SPOOL_DIR, a folder they all share, and queues those
copies; the worker reads only inside that folder and removes it when the batch ends.
"""

import shutil
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings


class OutsideSpool(Exception):
    """A queued path lies outside the batch's spool folder."""


def batch_folder(batch_id) -> Path:
    return Path(settings.INGEST_SPOOL_DIR) / str(batch_id)


def receive(batch_id, files: Iterable[Path]) -> list[Path]:
    """Copy each input file into the batch's spool folder, each in a numbered folder of its
    own so that names, which label the issues reported, are kept and never collide."""
    folder = batch_folder(batch_id)
    folder.mkdir(parents=True)
    copies = []
    for number, source in enumerate(files):
        target = folder / f"{number:05d}" / source.name
        target.parent.mkdir()
        shutil.copyfile(source, target)
        copies.append(target)
    return copies


def checked(batch_id, paths: Iterable[str]) -> list[Path]:
    """The queued paths with every link resolved, each inside the batch's spool folder;
    a message that names anything else is refused, so the worker never reads it."""
    folder = batch_folder(batch_id).resolve()
    resolved = [Path(p).resolve() for p in paths]
    if not resolved or any(folder not in path.parents for path in resolved):
        raise OutsideSpool(
            "refused: the batch named a file outside the ingest spool folder (INGEST_SPOOL_DIR); "
            "queue it again with the ingest command"
        )
    return resolved


def discard(batch_id) -> None:
    """Remove the batch's spool folder and everything in it (the batch has ended)."""
    shutil.rmtree(batch_folder(batch_id), ignore_errors=True)
