"""The audit trail's append throughput (issue 14): events per second written by
``audit.record`` (the ledger) with 1, 4 and 16 writer processes, side by side with a plain
INSERT of the same row into the same table (partitioned by month, with the same indexes
and trigger) with no MAC and no row for the sealer: what an audit trail without the
ledger would cost. In one run on PostgreSQL.

Each writer is its own process with its own connection, as web workers are; each event is
its own committed transaction, as a page view's read is. During the ledger's rounds a
sealer process seals every AUDIT_SEAL_SECONDS on the same machine, as beat's task does,
so its cost is in the figure. Rounds alternate the two modes so that the machine's noise
falls on both; the report gives every round and the ratio ledger / plain of the medians.
The issue's goal: >= 0.8 at every writer count.

    python bench/audit.py [--seconds 5] [--rounds 3] [--writers 1,4,16]

Prints a table and writes bench/results/audit.json. Needs PostgreSQL (DATABASE_URL_BENCH,
or 127.0.0.1:5432); the SQLite embedded mode has one writer by design.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PG_BENCH_DB = "bench_audit"
GOAL_RATIO = 0.8


def _django():
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def prepare() -> None:
    """Migrate the fresh database (the trail's partitions included)."""
    _django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def wait_for_start() -> float:
    """Say "ready" once set up and connected, and read the time to start at: every
    process of a round starts together, however long the machine took to start them."""
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    while time.time() < start_at:
        time.sleep(0.001)
    return start_at


def write(mode: str, seconds: float) -> int:
    """One writer: events committed one by one from the round's start for ``seconds``;
    the count."""
    _django()
    from django.db import connection, transaction
    from django.utils import timezone

    import audit
    from audit.chain import disclosure_digest
    from audit.models import AuditEvent

    patient = uuid.uuid4()
    refs = [f"{uuid.uuid4().hex}:1" for _ in range(3)]
    # The same row as the ledger writes: the set of entries named by its digest.
    digest = disclosure_digest(" ".join(sorted(refs)))
    connection.ensure_connection()
    fields = [f for f in AuditEvent._meta.concrete_fields if f.name not in ("id", "seq")]
    end = wait_for_start() + seconds
    count = 0
    plain_insert = (
        f"INSERT INTO audit_auditevent (seq, {', '.join(f.column for f in fields)})"  # noqa: S608 - bench text
        f" VALUES (nextval('audit_event_seq'), {', '.join(['%s'] * len(fields))}) RETURNING id"
    )
    while time.time() < end:
        if mode == "ledger":
            with transaction.atomic():
                audit.record(
                    "record.read", actor_label="bench", patient_id=patient, entries=refs, purpose="bench"
                )
        else:
            event = AuditEvent(
                occurred_at=timezone.now(),
                action="record.read",
                actor_label="bench",
                patient_id=patient,
                disclosure_id=digest,
                purpose="bench",
                prev_hash="",
                hash=uuid.uuid4().hex * 2,
            )
            params = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(plain_insert, params)
        count += 1
    return count


def seal_for(seconds: float) -> int:
    """The sealer beside the ledger's writers: seal every AUDIT_SEAL_SECONDS until the
    round ends, then once more; the number of blocks."""
    _django()
    from django.conf import settings

    from audit.ledger import seal_all

    seal_all()
    end = wait_for_start() + seconds
    blocks = 0
    while time.time() < end:
        time.sleep(settings.AUDIT_SEAL_SECONDS)
        blocks += seal_all()
    return blocks + seal_all()


def child(args: list[str], env: dict) -> str:
    proc = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench/audit.py {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def one_round(mode: str, writers: int, seconds: float, env: dict) -> float:
    """Events per second with ``writers`` processes writing at once (and, for the
    ledger, the sealer beside them), all started together once every one is ready."""
    commands = [["--write", mode, "--seconds", str(seconds)]] * writers
    if mode == "ledger":
        commands.append(["--seal-for", str(seconds)])
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, *command],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"a {mode} process failed to start:\n{proc.stderr.read()[-3000:]}")
    start_at = time.time() + 0.5
    for proc in procs:
        proc.stdin.write(f"{start_at}\n")
        proc.stdin.flush()
    total = 0
    for number, proc in enumerate(procs):
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a {mode} process failed:\n{err[-3000:]}")
        if number < writers:
            total += int(out.strip().splitlines()[-1])
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", default="1,4,16")
    parser.add_argument("--write", choices=["ledger", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--seal-for", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare()
        return
    if args.write:
        print(write(args.write, args.seconds))
        return
    if args.seal_for:
        print(seal_for(args.seal_for))
        return

    sys.path.insert(0, str(REPO / "bench"))
    from benchlib import child_env, fresh_postgres

    if not fresh_postgres(PG_BENCH_DB):
        raise SystemExit("bench/audit.py needs PostgreSQL (DATABASE_URL_BENCH or 127.0.0.1:5432)")
    env = child_env("postgresql", "", PG_BENCH_DB)
    env["AUDIT_WITNESS_PATH"] = str(RESULTS / "bench-audit-witness.log")
    RESULTS.mkdir(parents=True, exist_ok=True)
    child(["--prepare"], env)
    counts = [int(n) for n in args.writers.split(",")]
    runs: dict[int, dict[str, list[float]]] = {n: {"ledger": [], "plain": []} for n in counts}
    for number in range(args.rounds):
        for writers in counts:
            for mode in ("ledger", "plain") if number % 2 == 0 else ("plain", "ledger"):
                rate = one_round(mode, writers, args.seconds, env)
                runs[writers][mode].append(rate)
                print(
                    f"round {number + 1}: {writers:>2} writer(s), {mode:<5} {rate:8.0f} events/s", flush=True
                )
    rows = []
    for writers in counts:
        ledger, plain = runs[writers]["ledger"], runs[writers]["plain"]
        ratio = statistics.median(ledger) / statistics.median(plain)
        rows.append(
            {
                "writers": writers,
                "ledger_events_per_s": [round(r) for r in ledger],
                "plain_events_per_s": [round(r) for r in plain],
                "ratio_of_medians": round(ratio, 2),
                "ratio_per_round": [round(c / p, 2) for c, p in zip(ledger, plain, strict=True)],
            }
        )
    print(f"\naudit append throughput, {args.rounds} rounds of {args.seconds:.0f} s, PostgreSQL")
    print(f"{'writers':>7}  {'ledger (events/s)':<24} {'plain INSERT (events/s)':<26} ratio")
    for row in rows:
        ledger = "-".join(str(x) for x in (min(row["ledger_events_per_s"]), max(row["ledger_events_per_s"])))
        plain = "-".join(str(x) for x in (min(row["plain_events_per_s"]), max(row["plain_events_per_s"])))
        met = "met" if row["ratio_of_medians"] >= GOAL_RATIO else "NOT met"
        print(f"{row['writers']:>7}  {ledger:<24} {plain:<26} {row['ratio_of_medians']:.2f} ({met})")
    result = {
        "benchmark": (
            "audit append throughput: audit.record (the ledger, a sealer running)"
            " against a plain INSERT of the same row"
        ),
        "at": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "goal_ratio": GOAL_RATIO,
        "results": rows,
    }
    (RESULTS / "audit.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\nwrote bench/results/audit.json")


if __name__ == "__main__":
    main()
