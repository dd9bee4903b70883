"""The witness: the audit ledger's sealed blocks, written outside the database.

Each event and block carries an HMAC, so database access alone cannot forge one; but it
can delete the newest blocks with their events, leaving a ledger that is consistent up
to an older block, which was genuine once. So after each block commits, its number and
hash (with an HMAC) are appended to a file the database cannot reach,
``AUDIT_WITNESS_PATH``, and ``audit.ledger.verify`` checks that every block the file saw
is still there, unchanged. Before the ledger, the old chain's every head was written
here the same way (four fields a line, where a block's line has five).

The file is append-only and carries no content: ``<database id> block <number> <hash>
<hmac>``. The database id tells apart the ledgers of several databases that share a file
(a test run's, the demo's). This module only keeps the file; the keyed parts are
audit.ledger's and audit.chain's.
"""

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)


def path() -> Path:
    return Path(settings.AUDIT_WITNESS_PATH)


def database_id() -> str:
    """A short name for the database this process writes its ledger to: its engine and
    its name (a SQLite file by its real path), never how the address was spelled, so a
    check run with ``localhost`` in place of ``127.0.0.1`` still finds its lines."""
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite":
        name = os.path.realpath(name)
    return hashlib.sha256(f"{connection.vendor}:{name}".encode()).hexdigest()[:16]


def _spelled_id() -> str:
    """The name lines were written under until December 2026: from the address as the
    settings spelled it (host and port included)."""
    db = connection.settings_dict
    label = f"{connection.vendor}://{db.get('HOST') or ''}:{db.get('PORT') or ''}/{db['NAME']}"
    return hashlib.sha256(label.encode()).hexdigest()[:16]


def database_ids() -> tuple[str, ...]:
    """Every name this database's lines may carry: today's, then the older spelling."""
    return tuple(dict.fromkeys((database_id(), _spelled_id())))


def append(line: str) -> None:
    """Add one line, in one write to a file opened for appending, so that the lines of
    concurrent processes never interleave. Called after the event's transaction commits:
    a failure here leaves the event in place and only widens what a cut could remove
    unnoticed, so it is logged (without the line), never raised into the request."""
    data = (line + "\n").encode()
    target = path()
    try:
        try:
            handle = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(handle, data)
        finally:
            os.close(handle)
    except OSError as error:
        logger.error("The audit witness at %s could not be written: %s", target, error.strerror)


def lines() -> Iterator[tuple[int, str]]:
    """The witness's lines with their numbers (from 1); none when there is no file."""
    try:
        with path().open(encoding="ascii", errors="replace") as witness:
            for number, line in enumerate(witness, start=1):
                yield number, line.rstrip("\n")
    except FileNotFoundError:
        return
