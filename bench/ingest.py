"""Ingest throughput against bare fhir.resources.R4B validation of the same bytes.

Both are run side by side, alternating round by round in one process per database, so
that the ratio survives a noisy shared machine. For each database (SQLite in a scratch
file; PostgreSQL when DATABASE_URL_BENCH or 127.0.0.1:5432 answers) it measures:

  bare       parse each Synthea file and validate every entry with R4B, nothing else
  ingest     the full ingest into an empty record (every entry created)
  re-ingest  the same files again (every entry unchanged: hashing and lookups only)
  parallel   the full ingest with --workers N (validation in N processes; N = --workers,
             2 by default), into another empty record
  check-1    the check step alone (parse, identity, references, validation), one process
  check-N    the same with N validating processes, their start-up included

Prints a table and writes bench/results/ingest.json.

    python bench/ingest.py [--rounds 3] [--files N] [--only sqlite|postgresql]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchlib import child_env, fresh_postgres

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO.parent / "shared" / "fhir-samples" / "synthea"
RESULTS = REPO / "bench" / "results"
PG_BENCH_DB = "bench_ingest"


def measure(rounds: int, files: int, workers: int, copies: int) -> dict:
    """Run inside a child process whose DATABASE_URL points at an empty bench database."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    import orjson
    from django.core.management import call_command
    from fhir.resources.R4B import get_fhir_model_class

    from phr.ingest import IngestResult, _received_from, check, ingest_documents
    from phr.models import Organisation

    logging.disable(logging.INFO)
    call_command("migrate", verbosity=0)
    paths = sorted(SAMPLES.glob("*.json"))[:files]
    blobs = [(p.name, p.read_bytes()) for p in paths]
    resources = sum(len(orjson.loads(b)["entry"]) for _, b in blobs)

    def bare() -> float:
        start = time.perf_counter()
        for _, blob in blobs:
            for entry in orjson.loads(blob)["entry"]:
                resource = entry["resource"]
                get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        return time.perf_counter() - start

    def ingest(org, processes: int = 1) -> float:
        start = time.perf_counter()
        documents = [(n, orjson.loads(b)) for n, b in blobs]
        result = ingest_documents(documents, organisation=org, source="bench", workers=processes)
        elapsed = time.perf_counter() - start
        if result.rejected or result.accepted != resources:
            raise SystemExit(f"ingest did not accept every sample: {result.as_dict()}")
        return elapsed

    def checking(processes: int) -> float:
        start = time.perf_counter()
        items = [item for _ in range(copies) for n, b in blobs for item in _received_from(n, orjson.loads(b))]
        checked = check(items, IngestResult(), source="bench", workers=processes)
        elapsed = time.perf_counter() - start
        if len(checked) != resources * copies:
            raise SystemExit(f"check kept {len(checked)} of {resources}")
        return elapsed

    bare()  # warm the model classes and the validator caches
    runs: dict[str, list[float]] = {
        "bare": [],
        "ingest": [],
        "re-ingest": [],
        "parallel": [],
        "check-1": [],
        "check-N": [],
    }
    for number in range(rounds):
        org = Organisation.objects.create(ods_code=f"BENCH{number}{int(time.time()) % 10000}", name="Bench")
        other = Organisation.objects.create(ods_code=f"BENCP{number}{int(time.time()) % 10000}", name="Bench")
        runs["bare"].append(bare())
        if number % 2 == 0:
            runs["ingest"].append(ingest(org))
            runs["parallel"].append(ingest(other, workers))
        else:
            runs["parallel"].append(ingest(other, workers))
            runs["ingest"].append(ingest(org))
        runs["re-ingest"].append(ingest(org))
        for name, processes in (("check-1", 1), ("check-N", workers))[:: 1 if number % 2 == 0 else -1]:
            runs[name].append(checking(processes))
    rates = {
        name: [resources * (copies if name.startswith("check") else 1) / t for t in times]
        for name, times in runs.items()
    }
    pairs = list(zip(rates["parallel"], rates["bare"], strict=True))
    return {
        "resources": resources,
        "files": len(blobs),
        "rounds": rounds,
        "per_second_median": {name: round(statistics.median(r), 1) for name, r in rates.items()},
        "per_second_all": {name: [round(x, 1) for x in r] for name, r in rates.items()},
        "ratio_ingest_to_bare": round(
            statistics.median([i / b for i, b in zip(rates["ingest"], rates["bare"], strict=True)]), 3
        ),
        "ratio_reingest_to_bare": round(
            statistics.median([i / b for i, b in zip(rates["re-ingest"], rates["bare"], strict=True)]), 3
        ),
        "workers": workers,
        "check_copies": copies,
        "speedup_parallel_to_one": round(
            statistics.median([p / i for p, i in zip(rates["parallel"], rates["ingest"], strict=True)]), 3
        ),
        "speedup_check": round(
            statistics.median([n / one for n, one in zip(rates["check-N"], rates["check-1"], strict=True)]), 3
        ),
        "ratio_parallel_per_worker_to_bare": round(statistics.median([p / b / workers for p, b in pairs]), 3),
    }


def postgres_available() -> bool:
    return fresh_postgres(PG_BENCH_DB)


def child(backend: str, rounds: int, files: int, workers: int, copies: int, workdir: str) -> dict:
    env = child_env(backend, workdir, PG_BENCH_DB)
    proc = subprocess.run(
        [
            *(sys.executable, __file__, "--child", "--rounds", str(rounds)),
            *("--files", str(files), "--workers", str(workers), "--copies", str(copies)),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{backend} run failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=99)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--copies", type=int, default=4, help="the check step reads the files N times")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.rounds, args.files, args.workers, args.copies)))
        return
    if not SAMPLES.is_dir():
        raise SystemExit(f"{SAMPLES} not found: the benchmark needs ../shared/fhir-samples")

    backends = [args.only] if args.only else ["sqlite", "postgresql"]
    report = {
        "benchmark": "ingest vs bare fhir.resources.R4B validation",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "results": {},
    }
    with tempfile.TemporaryDirectory() as workdir:
        for backend in backends:
            if backend == "postgresql" and not postgres_available():
                print("postgresql: not reachable, skipped")
                continue
            print(f"running {backend} ({args.rounds} rounds)...", flush=True)
            report["results"][backend] = child(
                backend, args.rounds, args.files, args.workers, args.copies, workdir
            )

    print()
    print(
        f"{'database':<11} {'resources':>9} {'bare/s':>9} {'ingest/s':>9} {'re-ingest/s':>11} "
        f"{'ingest:bare':>11} {'re-ingest:bare':>14} {'parallel/s':>10} {'speedup':>7} "
        f"{'per worker:bare':>15}"
    )
    for backend, r in report["results"].items():
        m = r["per_second_median"]
        print(
            f"{backend:<11} {r['resources']:>9} {m['bare']:>9.0f} {m['ingest']:>9.0f} "
            f"{m['re-ingest']:>11.0f} "
            f"{r['ratio_ingest_to_bare']:>11.0%} {r['ratio_reingest_to_bare']:>14.0%} "
            f"{m['parallel']:>10.0f} {r['speedup_parallel_to_one']:>6.2f}x "
            f"{r['ratio_parallel_per_worker_to_bare']:>15.0%}"
        )
        print(
            f"{'':<11} check step alone, {r['resources'] * r['check_copies']} resources:"
            f" {m['check-1']:.0f}/s in one process, {m['check-N']:.0f}/s in {r['workers']}"
            f" ({r['speedup_check']:.2f}x)"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "ingest.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
