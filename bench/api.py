"""FHIR Patient/$everything under gunicorn, against a bare view of the same stored rows.

For each database (SQLite in a scratch file; PostgreSQL when DATABASE_URL_BENCH or
127.0.0.1:5432 answers) a setup child loads three patients with records of 100, 1,000
and 5,000 entries (a Patient and small Observations, through the ingest), a linked
patient account for each and a bearer token (api.oauth_server.issue_access_token). Two
gunicorn servers then run side by side with production settings (DEBUG off, persistent
database connections, DB_CONN_MAX_AGE=600), 2 sync workers each:

  api   GET /fhir/Patient/<id>/$everything with the bearer token: the token check, the
        access decision, the permitted query, the audit event naming every entry
        disclosed, and the Bundle built from the stored JSON
  bare  bare_view below, a Django view behind the same middleware: the same rows in the
        same order straight from the table, joined into the same Bundle shape
        (api.fhir.bundle), with no token, policy or audit. The issue's goal compares
        these two: what the policy and audit cost.
  raw   bare_app below: the bare view's work as a plain WSGI app, without Django's request
        handling and middleware. Shown for information: api / raw is what a request
        costs in all, framework included.

A second process on loopback applies a bounded load to one of them at a time: N=4
concurrent clients with http.client keep-alive connections (gunicorn's sync workers
close each connection after a response, so the clients reconnect as they would), a fixed
number of requests. Rounds alternate which side goes first. Reported per database and
record size: requests per second (median over rounds), p50 and p95 latency (over every
request of every round), and the ratio api / bare.

The issue's goal, on PostgreSQL: api >= 85% of the bare view's requests per second, and
p95 latency growing no faster than the entry count.

Prints a table per database and writes bench/results/api.json.

    python bench/api.py [--rounds 3] [--scale 1.0] [--concurrency 4] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = REPO / "bench" / "results"
PG_BENCH_DB = "bench_api"
SIZES = (100, 1000, 5000)
# Requests per round and side for each record size (times --scale): a bounded load.
REQUESTS = {100: 160, 1000: 48, 5000: 12}
WARMUP = 4
GOAL = 0.85
SIDES = ("bare", "api", "raw")
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
BARE_PATH = re.compile(r"^/bare/Patient/([0-9a-f-]{36})/\$everything$")


# --- The bare sides --------------------------------------------------------------------------


def bare_rows(patient_uuid, host: str, path: str) -> bytes:
    """The same stored rows as $everything, in the same order and Bundle shape."""
    from api.fhir.bundle import bundle, bundle_entry, patient_text
    from api.fhir.record import ordered
    from phr.models import Patient, RecordEntry

    patient = Patient.objects.get(pk=patient_uuid)
    rows = list(ordered(RecordEntry.objects.filter(patient=patient)))
    base = f"http://{host}/fhir/"
    parts = []
    for entry in rows:
        if entry.resource_type == "Patient":
            parts.append(bundle_entry(f"{base}Patient/{patient.pk}", patient_text(patient, entry)))
        else:
            parts.append(bundle_entry(f"{base}{entry.resource_type}/{entry.fhir_id}", entry.json))
    return bundle("searchset", parts, total=len(rows), links=[("self", f"http://{host}{path}")]).encode()


def bare_view(request, patient_uuid):
    """The bare side: a Django view (bench/bench_urls.py) with no token, policy or audit."""
    from django.http import HttpResponse

    from api.fhir.bundle import CONTENT_TYPE

    return HttpResponse(bare_rows(patient_uuid, request.get_host(), request.path), content_type=CONTENT_TYPE)


_raw_handler = None


def bare_app(environ, start_response):
    """The raw side: bare_rows as a plain WSGI app, without Django's request handling."""
    global _raw_handler  # built once per worker, after the fork
    if _raw_handler is None:
        _raw_handler = _make_raw_handler()
    return _raw_handler(environ, start_response)


def _make_raw_handler():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from api.fhir.bundle import CONTENT_TYPE

    def handler(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/bare/ready":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        found = BARE_PATH.match(path)
        if not found:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        body = bare_rows(found.group(1), environ["HTTP_HOST"], path)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
        return [body]

    return handler


# --- Setup: runs in a child process against an empty bench database ----------------------


def record_bundle(key: str, nhs: str, entries: int) -> dict:
    """A collection of one Patient and entries - 1 small Observations about them."""
    patient = {
        "resourceType": "Patient",
        "id": f"{key}-patient",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
        "name": [{"use": "official", "family": "Bench", "given": [key]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }
    start = datetime(2010, 1, 1, tzinfo=UTC)
    observations = [
        {
            "resourceType": "Observation",
            "id": f"{key}-obs-{n}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": f"Patient/{key}-patient"},
            "effectiveDateTime": (start + timedelta(hours=n)).isoformat(),
            "valueQuantity": {
                "value": 60 + n % 40,
                "unit": "beats/minute",
                "system": "http://unitsofmeasure.org",
                "code": "/min",
            },
        }
        for n in range(entries - 1)
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in [patient, *observations]],
    }


def setup() -> dict:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    from benchlib import nhs_number
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import PatientLink, User
    from api.oauth_server import cli_application, issue_access_token
    from phr.ingest import ingest_documents
    from phr.models import Organisation, OrganisationKind, RecordEntry

    logging.disable(logging.INFO)
    call_command("migrate", verbosity=0)
    owner = Organisation.objects.create(
        ods_code="A10001", name="Bench Surgery", kind=OrganisationKind.GP_PRACTICE
    )
    application = cli_application()
    patients = {}
    for number, size in enumerate(SIZES, start=1):
        key = f"p{size}"
        started = time.perf_counter()
        result = ingest_documents(
            [(key, record_bundle(key, nhs_number(number * 1000), size))], organisation=owner, source="bench"
        )
        if result.rejected:
            raise SystemExit(f"the bench record was not accepted: {result.as_dict()}")
        patient = RecordEntry.objects.get(
            owner=owner, resource_type="Patient", fhir_id=f"{key}-patient"
        ).patient
        user = User.objects.create_user(f"{key}@bench.example", role="patient")
        PatientLink.objects.create(user=user, patient=patient, method="demo")
        token, _ = issue_access_token(
            application=application, user=user, scope="patient/*.read", minutes=120, issued_by="bench"
        )
        patients[str(size)] = {
            "patient": str(patient.pk),
            "token": token,
            "entries": RecordEntry.objects.filter(patient=patient).count(),
            "ingest_seconds": round(time.perf_counter() - started, 2),
        }
    return {"vendor": connection.vendor, "patients": patients}


# --- The load: runs in its own process ------------------------------------------------------


def load(port: int, path: str, token: str | None, total: int, concurrency: int) -> dict:
    """`total` GETs of `path` from `concurrency` keep-alive clients; every answer must be 200."""
    headers = {"Accept": "application/fhir+json", "Host": f"127.0.0.1:{port}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    tickets = itertools.count()

    def client() -> list[tuple[float, int, int]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        seen = []
        try:
            while next(tickets) < total:
                started = time.perf_counter()
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                seen.append((time.perf_counter() - started, response.status, len(body)))
        finally:
            conn.close()
        return seen

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(client) for _ in range(concurrency)]
        results = [r for f in futures for r in f.result()]
    elapsed = time.perf_counter() - started
    statuses = sorted({status for _, status, _ in results})
    return {
        "requests": len(results),
        "seconds": elapsed,
        "rps": len(results) / elapsed,
        "latencies": [latency for latency, _, _ in results],
        "statuses": statuses,
        "bytes": statistics.median(size for _, _, size in results),
    }


def run_load(port: int, path: str, token: str | None, total: int, concurrency: int) -> dict:
    spec = json.dumps(
        {"port": port, "path": path, "token": token, "total": total, "concurrency": concurrency}
    )
    proc = subprocess.run(
        [sys.executable, __file__, "--load", spec], capture_output=True, text=True, check=False, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the load process failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["statuses"] != [200]:
        raise RuntimeError(f"{path} answered {result['statuses']}, not only 200")
    return result


# --- The servers ----------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, app: str, env: dict, workdir: str):
        self.name, self.port = name, free_port()
        self.log = Path(workdir) / f"gunicorn-{name}.log"
        command = [GUNICORN, app, "-b", f"127.0.0.1:{self.port}", "-w", "2", "--chdir", str(REPO)]
        command += ["--timeout", "120", "--graceful-timeout", "5"]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", path, headers={"Host": f"127.0.0.1:{self.port}"})
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn ({self.name}) did not get ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bench_backend(backend: str, args: argparse.Namespace, workdir: str) -> dict:
    from benchlib import child_env

    env = child_env(backend, workdir, PG_BENCH_DB)
    env.update({"ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false", "DB_CONN_MAX_AGE": "600"})
    env["PYTHONPATH"] = str(REPO)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["DJANGO_SETTINGS_MODULE"] = "bench.bench_settings"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--setup"], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{backend} setup failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"  loaded {', '.join(str(p['entries']) for p in data['patients'].values())} entries "
        f"in {time.perf_counter() - started:.1f}s",
        flush=True,
    )

    servers = {
        "api": Server("api", "config.wsgi", env, workdir),
        "bare": Server("bare", "config.wsgi", env, workdir),
        "raw": Server("raw", "bench.api:bare_app", env, workdir),
    }
    try:
        servers["api"].wait_ready("/fhir/metadata")
        servers["bare"].wait_ready("/fhir/metadata")
        servers["raw"].wait_ready("/bare/ready")
        sizes = {}
        for size in SIZES:
            patient = data["patients"][str(size)]
            bare_path = f"/bare/Patient/{patient['patient']}/$everything"
            paths = {
                "api": (f"/fhir/Patient/{patient['patient']}/$everything", patient["token"]),
                "bare": (bare_path, None),
                "raw": (bare_path, None),
            }
            total = max(8, round(REQUESTS[size] * args.scale))
            for side, (path, token) in paths.items():  # warm every worker's connections and caches
                run_load(servers[side].port, path, token, WARMUP, args.concurrency)
            runs: dict[str, list[dict]] = {side: [] for side in SIDES}
            for number in range(args.rounds):
                # Each round starts with a different side, so no side always goes first.
                order = SIDES[number % len(SIDES) :] + SIDES[: number % len(SIDES)]
                for side in order:
                    path, token = paths[side]
                    runs[side].append(run_load(servers[side].port, path, token, total, args.concurrency))
            summary = {}
            for side, results in runs.items():
                latencies = [x for r in results for x in r["latencies"]]
                summary[side] = {
                    "rps_median": round(statistics.median(r["rps"] for r in results), 2),
                    "rps_all": [round(r["rps"], 2) for r in results],
                    "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
                    "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
                    "body_bytes": results[0]["bytes"],
                }
            ratios = [a["rps"] / b["rps"] for a, b in zip(runs["api"], runs["bare"], strict=True)]
            raw_ratios = [a["rps"] / b["rps"] for a, b in zip(runs["api"], runs["raw"], strict=True)]
            sizes[str(size)] = {
                "entries": patient["entries"],
                "requests_per_round": total,
                **summary,
                "ratio_median": round(statistics.median(ratios), 3),
                "ratio_all": [round(r, 3) for r in ratios],
                "ratio_vs_raw_median": round(statistics.median(raw_ratios), 3),
            }
            s = sizes[str(size)]
            print(
                f"  {size:>5} entries: bare {s['bare']['rps_median']:.1f}/s,"
                f" api {s['api']['rps_median']:.1f}/s, ratio {s['ratio_median']:.0%}"
                f" (raw {s['raw']['rps_median']:.1f}/s, api/raw {s['ratio_vs_raw_median']:.0%})",
                flush=True,
            )
    finally:
        for server in servers.values():
            server.stop()
    return {"vendor": data["vendor"], "sizes": sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the requests per round")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup:
        print(json.dumps(setup()))
        return
    if args.load:
        spec = json.loads(args.load)
        print(json.dumps(load(spec["port"], spec["path"], spec["token"], spec["total"], spec["concurrency"])))
        return

    from benchlib import fresh_postgres

    if not Path(GUNICORN).exists():
        raise SystemExit(f"gunicorn is not installed beside this Python ({GUNICORN})")
    backends = [args.only] if args.only else ["sqlite", "postgresql"]
    report = {
        "benchmark": "FHIR Patient/$everything under gunicorn: api (token, policy, audit) vs bare view",
        "goal_ratio": GOAL,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "method": {
            "gunicorn": "2 sync workers per side, DEBUG off, DB_CONN_MAX_AGE=600",
            "sides": "api and bare: Django, same middleware; raw: plain WSGI (information only)",
            "load": f"{args.concurrency} concurrent http.client keep-alive clients in a second process",
            "rounds": args.rounds,
            "requests_per_round": {str(s): max(8, round(n * args.scale)) for s, n in REQUESTS.items()},
        },
        "results": {},
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        for backend in backends:
            if backend == "postgresql" and not fresh_postgres(PG_BENCH_DB):
                print("postgresql: not reachable, skipped")
                continue
            print(f"running {backend} ({args.rounds} rounds)...", flush=True)
            report["results"][backend] = bench_backend(backend, args, workdir)
    report["seconds"] = round(time.perf_counter() - started, 1)

    for backend, result in report["results"].items():
        print(f"\n{backend}: $everything, {args.concurrency} clients, goal api >= {GOAL:.0%} of bare")
        print(
            f"{'entries':>7} {'bare/s':>8} {'api/s':>8} {'ratio':>6} {'p50 bare':>9} {'p50 api':>8}"
            f" {'p95 bare':>9} {'p95 api':>8}  goal     {'raw/s':>7} {'api/raw':>7}"
        )
        for s in result["sizes"].values():
            verdict = "met" if s["ratio_median"] >= GOAL else "NOT met"
            print(
                f"{s['entries']:>7} {s['bare']['rps_median']:>8.1f} {s['api']['rps_median']:>8.1f}"
                f" {s['ratio_median']:>6.0%} {s['bare']['p50_ms']:>9.1f} {s['api']['p50_ms']:>8.1f}"
                f" {s['bare']['p95_ms']:>9.1f} {s['api']['p95_ms']:>8.1f}  {verdict:<7}"
                f"  {s['raw']['rps_median']:>7.1f} {s['ratio_vs_raw_median']:>7.0%}"
            )
        points = list(result["sizes"].values())
        growth = [
            (b["api"]["p95_ms"] / a["api"]["p95_ms"], b["entries"] / a["entries"])
            for a, b in itertools.pairwise(points)
        ]
        result["p95_growth_vs_entries"] = [{"p95": round(g, 2), "entries": round(e, 2)} for g, e in growth]
        text = ", ".join(f"p95 x{g:.1f} for entries x{e:.0f}" for g, e in growth)
        pace = "no faster" if all(g <= e for g, e in growth) else "FASTER"
        print(f"api p95 growth: {text} ({pace} than entries)")
    print(f"\ntotal {report['seconds']:.0f}s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "api.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
