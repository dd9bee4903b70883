"""Parts of the portal broken on purpose: what is lost, repeated or answered with a 5xx.

It needs PostgreSQL (DATABASE_URL_BENCH's server, or 127.0.0.1:5432 as postgres with
trust) and Redis (REDIS_URL_BENCH, or redis://127.0.0.1:6379/0); without them it says so
and stops. Every database here is its own (faults_*), made fresh each run. Three scenarios:

  kills    tests/integration/test_worker_kills.py run with WORKER_KILLS=--kills: a live
           Celery worker SIGKILLed that many times while notifications flow, then one
           left running with the outbox sweep. Read from the figures it writes
           (FAULTS_JSON): notifications, emails lost, the same key handed to the mail
           backend twice, emails sent by a retry, delay median and max, late over 5 min.
  broker   Redis down, as production runs: gunicorn (2 sync workers, DEBUG off, the
           production settings) with CELERY_BROKER_URL and CACHE_URL on a port where
           nothing listens (compose keeps the cache on the broker's Redis), beside a
           second gunicorn on a live Redis with a real `celery worker` (2 processes, its
           own queue), each on fresh data: a GP practice with one clinician, a hospital
           clinician, --patients patients, each with a linked account, --items medication
           items held by the GP and a network-wide "do not share" (so break-glass is
           allowed). Each patient asks for a correction of every item (POST
           /api/v1/corrections/ with a bearer token), and the hospital clinician declares
           break-glass on the page (a signed-in session with a second factor) twice, as a
           retry after a timeout would. The two sides take turns, batch by batch. Then the
           broker comes back: a worker starts for the outage's database and outbox_sweep
           is sent to it, as beat would, OUTBOX_RETRY_SECONDS (2 here) after the last
           action. Reported per side: status codes, p50 and p95 latency of each action;
           emails owed, sent, lost, repeated (by Message-ID in the mail folder), corrections
           saved, break-glass rows per (clinician, patient), and verify_audit.
  drops    Database connections dropped under reads: gunicorn (2 workers, DB_CONN_MAX_AGE=60)
           read by --drop-clients clients (FHIR Patient/$everything and an Observation
           search, bearer tokens) for --drop-seconds, while every --drop-every seconds
           every backend of the bench database is ended (pg_terminate_backend). Reported:
           requests, 200s, 5xx, 503s, backends ended, reads run again by config.reconnect,
           audit events of the reads against the 200s (one per successful read is the
           promise), and verify_audit.

Prints a table per scenario and writes bench/results/faults.json (a scenario run alone
replaces only its own part).

  load     --load-clients clients (50) for --load-seconds (60) on one gunicorn (2 sync
           workers, the Redis cache), each reading its own record of --drop-entries
           entries: $everything with a bearer token and the record page with a signed-in
           session, in turn. Reported per read: requests, errors (anything but 200), p50
           and p95; the reads' audit events, those still unsealed at the end (no beat runs
           beside gunicorn here, so they are sealed before verify_audit), and verify_audit.

  outage   Redis (the broker and the cache) stopped for --outage-seconds (30) and started
           again on the same port, with its append-only file: a bench redis-server of its
           own, gunicorn (2 sync workers) and a live Celery worker on it. --outage-clients
           patients (8) each file a correction (which owes emails to the holder's
           clinicians) and read $everything in a loop, for 10 s before, through the
           outage, and 10 s after, while a real `celery beat` sends the schedule (sealing
           every 2 s, the outbox sweep every OUTBOX_RETRY_SECONDS). Reported per phase:
           requests, errors, p50, p95; how long after Redis came back every email owed
           was sent and every audit event sealed; emails lost or repeated; verify_audit.

    python bench/faults.py [--only kills|broker|drops|load|outage] [--kills 200] [--patients 40]
        [--items 2] [--concurrency 4] [--rounds 4] [--drop-seconds 30] [--drop-every 2]
        [--drop-clients 4] [--drop-entries 200]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import itertools
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from benchlib import PG_ADMIN_URL, fresh_postgres, nhs_number

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = REPO / "bench" / "results"
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
REDIS_URL = os.environ.get("REDIS_URL_BENCH", "redis://127.0.0.1:6379/0")
LIVE_CACHE = REDIS_URL.rsplit("/", 1)[0] + "/1"
DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens: refused at once, as when Redis is down
DEAD_CACHE = "redis://127.0.0.1:1/1"
# pytest-django makes test_faults from it, so a run never meets another run's test_test.
KILLS_DB = "faults"
DATABASES = {"down": "faults_broker_down", "up": "faults_broker_up", "drops": "faults_drops"}
OUTBOX_RETRY_SECONDS = 2
MESSAGE_ID = re.compile(r"^Message-ID: <([0-9a-f-]{36})@", re.MULTILINE)
CSRF_SECRET = "f" * 32  # sent as cookie and form field alike, as a browser does
ELEMENT = "dosage[0].text"
CORRECTION = {
    "proposed": "5mg once daily",
    "reason": "My GP changed the dose",
    "contact_preference": "portal",
}
BREAK_GLASS = {"reason_code": "emergency", "reason_text": "Unconscious on arrival, history needed now"}
ACTIONS = ("correction", "break-glass", "break-glass retry")
SIDES = ("down", "up")


# --- Children: setup and counting against one bench database ------------------------------


def django_setup() -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)


def medication(key: str, n: int) -> dict:
    return {
        "resourceType": "MedicationStatement",
        "id": f"{key}-med-{n}",
        "status": "active",
        "subject": {"reference": f"Patient/{key}-patient"},
        "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
        "dosage": [{"text": "50mg once daily"}],
    }


def observation(key: str, n: int) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"{key}-obs-{n}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": f"Patient/{key}-patient"},
        "effectiveDateTime": (datetime(2010, 1, 1, tzinfo=UTC) + timedelta(hours=n)).isoformat(),
        "valueQuantity": {
            "value": 60 + n % 40,
            "unit": "beats/minute",
            "system": "http://unitsofmeasure.org",
        },
    }


def linked_patient(number: int, owner, resources) -> tuple:
    """A patient whose record the owner sends (a Patient and `resources`), and their
    linked account."""
    from accounts.models import PatientLink, Role, User
    from phr.ingest import ingest_documents
    from phr.models import RecordEntry

    key = f"p{number}"
    person = {
        "resourceType": "Patient",
        "id": f"{key}-patient",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs_number(number * 10)}],
        "name": [{"use": "official", "family": "Faults", "given": [key]}],
        "birthDate": "1970-01-01",
    }
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": person}]}
    bundle["entry"] += [{"resource": r(key, n)} for n, r in enumerate(resources)]
    result = ingest_documents([(key, bundle)], organisation=owner, source="bench")
    if result.rejected:
        raise SystemExit(f"the bench record was not accepted: {result.as_dict()}")
    patient = RecordEntry.objects.get(owner=owner, resource_type="Patient", fhir_id=f"{key}-patient").patient
    user = User.objects.create_user(f"{key}@bench.example", role=Role.PATIENT)
    PatientLink.objects.create(user=user, patient=patient, method=PatientLink.Method.DEMO)
    return patient, user


def staff(email: str, organisation):
    """A clinician of the organisation with an authenticator app (staff see nothing without)."""
    from allauth.mfa.totp.internal.auth import TOTP

    from accounts.models import Membership, Role, User

    user = User.objects.create_user(email, role=Role.CLINICIAN)
    Membership.objects.create(user=user, organisation=organisation)
    TOTP.activate(user, base64.b32encode(secrets.token_bytes(20)).decode())
    return user


def token_for(user, scope: str) -> str:
    from api.oauth_server import cli_application, issue_access_token

    token, _ = issue_access_token(
        application=cli_application(), user=user, scope=scope, minutes=120, issued_by="bench"
    )
    return token


def setup_broker(spec: dict) -> dict:
    """The GP, the hospital and their clinicians; patients who deny network sharing, each
    with a correction token; the hospital clinician's session."""
    django_setup()
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import Notification
    from consent.models import ConsentChoice, Decision, Scope
    from phr.models import Organisation, OrganisationKind, RecordEntry

    call_command("migrate", verbosity=0)
    gp = Organisation.objects.create(
        ods_code="A10001", name="Bench Surgery", kind=OrganisationKind.GP_PRACTICE
    )
    hospital = Organisation.objects.create(
        ods_code="RX100", name="Bench Hospital", kind=OrganisationKind.ACUTE_TRUST
    )
    staff("dr.gp@bench.example", gp)
    trust_doctor = staff("dr.trust@bench.example", hospital)
    patients = []
    for number in range(1, spec["patients"] + 1):
        patient, user = linked_patient(number, gp, [medication] * spec["items"])
        ConsentChoice.objects.create(patient=patient, scope=Scope.NETWORK, decision=Decision.DENY)
        items = RecordEntry.objects.filter(patient=patient, resource_type="MedicationStatement")
        patients.append(
            {
                "patient": str(patient.pk),
                "token": token_for(user, "patient/*.read patient/Communication.write"),
                "items": [str(pk) for pk in items.order_by("fhir_id").values_list("pk", flat=True)],
            }
        )
    browser = Client()
    browser.force_login(trust_doctor)
    last = Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return {"patients": patients, "session": browser.cookies["sessionid"].value, "notifications_before": last}


def setup_drops(spec: dict) -> dict:
    """Patients with records of spec["entries"] entries and a read token each."""
    django_setup()
    from django.core.management import call_command

    from phr.models import Organisation, OrganisationKind

    call_command("migrate", verbosity=0)
    gp = Organisation.objects.create(
        ods_code="A10001", name="Bench Surgery", kind=OrganisationKind.GP_PRACTICE
    )
    from django.test import Client

    readers = []
    for number in range(1, spec["patients"] + 1):
        patient, user = linked_patient(number, gp, [observation] * (spec["entries"] - 1))
        browser = Client()
        browser.force_login(user)  # a signed-in session, for the record page (load)
        readers.append(
            {
                "patient": str(patient.pk),
                "user": user.pk,
                "token": token_for(user, "patient/*.read"),
                "session": browser.cookies["sessionid"].value,
            }
        )
    return {"readers": readers}


def audit_verified() -> dict:
    import io

    from django.core.management import CommandError, call_command

    try:
        call_command("verify_audit", stdout=io.StringIO(), stderr=io.StringIO())
    except CommandError as broken:
        return {"ok": False, "problem": str(broken)}
    return {"ok": True}


def count_broker(spec: dict) -> dict:
    """What the actions left: the emails owed, the corrections, the break-glass rows."""
    django_setup()
    from django.db.models import Count

    from accounts.models import Notification
    from accuracy.models import CorrectionRequest
    from consent.models import BreakGlass

    notes = list(
        Notification.objects.filter(pk__gt=spec["notifications_before"]).values(
            "email_key", "email_state", "emailed_at", "email_attempts"
        )
    )
    pairs = list(
        BreakGlass.objects.values("clinician", "patient")
        .annotate(rows=Count("id"))
        .values_list("rows", flat=True)
    )
    return {
        "owed": [str(n["email_key"]) for n in notes],
        "states": dict(Counter(n["email_state"] for n in notes)),
        "emailed_at": [n["emailed_at"].timestamp() for n in notes if n["emailed_at"]],
        "sent_by_retry": sum(1 for n in notes if n["email_attempts"] > 1),
        "corrections": CorrectionRequest.objects.count(),
        "break_glass_rows": sum(pairs),
        "break_glass_pairs": len(pairs),
        "break_glass_max_per_pair": max(pairs, default=0),
        "verify_audit": audit_verified(),
    }


def count_drops(spec: dict) -> dict:
    """The readers' audit events (their record.* reads), and the ledger's check; with
    spec["seal"], the events still unsealed are counted and sealed first, as the beat's
    sealer (not run beside gunicorn here) would have done."""
    django_setup()
    from audit.ledger import seal_all
    from audit.models import AuditEvent, Unsealed

    unsealed = Unsealed.objects.count()
    if spec.get("seal"):
        seal_all()
    events = AuditEvent.objects.filter(actor_id__in=spec["users"], action__startswith="record.")
    return {"read_events": events.count(), "unsealed_before": unsealed, "verify_audit": audit_verified()}


def count_unsealed(spec: dict) -> dict:
    django_setup()
    from audit.models import Unsealed

    return {"unsealed": Unsealed.objects.count()}


CHILDREN = {
    "count-unsealed": count_unsealed,
    "setup-broker": setup_broker,
    "setup-drops": setup_drops,
    "count-broker": count_broker,
    "count-drops": count_drops,
}


# --- Processes: environments, children, servers, workers -----------------------------------


def run_keys() -> dict:
    """This run's own keys, the same in every process of the run (production needs all three)."""
    from cryptography.fernet import Fernet

    return {
        "SECRET_KEY": "bench-only-" + secrets.token_urlsafe(48),
        "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
        "MFA_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }


def app_env(database: str, workdir: str, keys: dict, **extra: str) -> dict:
    """Production settings on one bench database, with its own audit witness file."""
    env = {
        **os.environ,
        **keys,
        "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "AUDIT_WITNESS_PATH": str(Path(workdir) / f"witness-{database}.log"),
        "OUTBOX_RETRY_SECONDS": str(OUTBOX_RETRY_SECONDS),
        "EMAIL_BACKEND": "locmem",
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **extra,
    }
    for name in ("CELERY_BROKER_URL", "CACHE_URL", "CELERY_TASK_DEFAULT_QUEUE"):
        if name not in extra:
            env.pop(name, None)
    return env


def start_child(name: str, spec: dict, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, "--child", name, json.dumps(spec)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def child_result(proc: subprocess.Popen, name: str) -> dict:
    out, err = proc.communicate(timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def child(name: str, spec: dict, env: dict) -> dict:
    return child_result(start_child(name, spec, env), name)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with the portal, 2 sync workers, as production serves it."""

    def __init__(self, name: str, env: dict, workdir: str):
        self.name, self.port = name, free_port()
        self.log = Path(workdir) / f"gunicorn-{name}.log"
        command = [GUNICORN, "config.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "2", "--chdir", str(REPO)]
        command += ["--timeout", "60", "--graceful-timeout", "5"]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if request(self.port, "GET", "/fhir/metadata")[0] == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"gunicorn ({self.name}) did not get ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        stop(self.proc)


class Worker:
    """A `celery worker` (2 processes, as compose runs it) consuming one queue."""

    def __init__(self, name: str, queue: str, env: dict, workdir: str):
        self.log = Path(workdir) / f"worker-{name}.log"
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-n", f"{queue}@%h"]
        command += ["--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 60
        while b" ready." not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stop(self.proc)
                raise SystemExit(f"the Celery worker did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        stop(self.proc)


class Beat:
    """`celery beat` with the portal's schedule (sealing every AUDIT_SEAL_SECONDS, the
    outbox sweep every OUTBOX_SWEEP_SECONDS, ...), sending to the worker's queue."""

    def __init__(self, name: str, env: dict, workdir: str):
        self.log = Path(workdir) / f"beat-{name}.log"
        command = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]
        command += ["-s", str(Path(workdir) / f"beat-{name}.db")]
        env = {**env, "BEAT_HEARTBEAT_PATH": str(Path(workdir) / f"beat-{name}.heartbeat")}
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)

    def stop(self) -> None:
        stop(self.proc)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes = b"") -> tuple:
    """(status, seconds, Location) of one request on a new connection (gunicorn's sync
    workers close each one); status 0 when no answer came."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            method, path, body=body or None, headers={"Host": f"127.0.0.1:{port}", **(headers or {})}
        )
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started, response.getheader("Location", "")
    except (OSError, http.client.HTTPException):
        return 0, time.perf_counter() - started, ""
    finally:
        conn.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else 0.0


def handed_to_mail(mail_dir: Path) -> Counter:
    """How many times each key reached the mail backend (the file backend writes a file
    per connection)."""
    return Counter(key for path in mail_dir.iterdir() for key in MESSAGE_ID.findall(path.read_text()))


# --- Scenario 1: worker kills ----------------------------------------------------------------


def kills(args: argparse.Namespace, workdir: str, keys: dict) -> dict:
    if not fresh_postgres(KILLS_DB):
        raise SystemExit("PostgreSQL stopped answering")
    figures = Path(workdir) / "kills.json"
    env = {
        **os.environ,
        "WORKER_KILLS": str(args.kills),
        "FAULTS_JSON": str(figures),
        "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{KILLS_DB}",
        "CELERY_BROKER_URL": REDIS_URL,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command.append("tests/integration/test_worker_kills.py")
    print(f"  {args.kills} SIGKILLs of a live worker (tests/integration/test_worker_kills.py)...", flush=True)
    started = time.perf_counter()
    proc = subprocess.run(
        command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600 + args.kills * 5, check=False
    )
    if not figures.exists():
        raise SystemExit(
            f"the worker-kills test wrote no figures (exit {proc.returncode}):\n{proc.stdout[-3000:]}"
        )
    result = json.loads(figures.read_text())
    result["test_passed"] = proc.returncode == 0
    result["seconds"] = round(time.perf_counter() - started, 1)
    if proc.returncode != 0:
        result["test_output"] = proc.stdout[-2000:]
    return result


def print_kills(result: dict) -> None:
    print(f"\nworker kills: {result['kills']} SIGKILLs, {result['notifications']} notifications")
    print(
        f"{'lost':>6} {'repeated':>9} {'by retry':>9} {'delay p50':>10} {'delay max':>10}"
        f" {'late>5min':>10}  test"
    )
    print(
        f"{result['lost']:>6} {result['repeated_same_key']:>9} {result['sent_by_retry']:>9}"
        f" {result['delay_median_s']:>9.1f}s {result['delay_max_s']:>9.1f}s {result['late_over_5_min']:>10}"
        f"  {'passed' if result['test_passed'] else 'FAILED'}"
    )
    print("  (repeated: the same key handed to the mail backend again; the mailbox keeps one per Message-ID)")
    print(
        f"  audit: {result['audit_events']} events sealed into {result['audit_blocks']} blocks while the"
        f" sealer was killed; {result['audit_unsealed_after']} unsealed once a worker was back"
    )


# --- Scenario 2: the broker down -------------------------------------------------------------


def patient_actions(port: int, patient: dict, session: str) -> list[tuple[str, int, float, str]]:
    """One patient's turn: a correction of each item, then break-glass declared twice."""
    seen = []
    api = {
        "Authorization": f"Bearer {patient['token']}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    for item in patient["items"]:
        body = json.dumps({**CORRECTION, "entry": item, "element": ELEMENT}).encode()
        status, seconds, _ = request(port, "POST", "/api/v1/corrections/", api, body)
        seen.append(("correction", status, seconds, ""))
    page = {
        "Cookie": f"sessionid={session}; csrftoken={CSRF_SECRET}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    form = urlencode({**BREAK_GLASS, "csrfmiddlewaretoken": CSRF_SECRET}).encode()
    path = f"/clinician/patients/{patient['patient']}/emergency-access/"
    for action in ("break-glass", "break-glass retry"):
        status, seconds, location = request(port, "POST", path, page, form)
        seen.append((action, status, seconds, location))
    return seen


def warm_up(port: int, patient: dict, concurrency: int) -> None:
    """Reads of the corrections list, not measured, so that each gunicorn worker has
    loaded its views and opened its connections before the first measured action."""
    headers = {"Authorization": f"Bearer {patient['token']}", "Accept": "application/json"}
    with ThreadPoolExecutor(concurrency) as pool:
        list(
            pool.map(lambda _: request(port, "GET", "/api/v1/corrections/", headers), range(concurrency * 2))
        )


def act(port: int, patients: list[dict], session: str, concurrency: int) -> list[tuple]:
    with ThreadPoolExecutor(concurrency) as pool:
        return [r for batch in pool.map(lambda p: patient_actions(port, p, session), patients) for r in batch]


def action_summary(results: list[tuple], patient_ids: list[str]) -> dict:
    summary = {}
    for action in ACTIONS:
        rows = [r for r in results if r[0] == action]
        latencies = [r[2] for r in rows]
        summary[action] = {
            "requests": len(rows),
            "statuses": dict(sorted(Counter(str(r[1]) for r in rows).items())),
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
            "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        }
    # A 302 that is not to the record (say, to the sign-in page) would be a false success.
    glass = [r for r in results if r[0].startswith("break-glass") and r[1] == 302]
    summary["break_glass_redirects_elsewhere"] = sum(
        1 for r in glass if not any(f"/clinician/patients/{p}/" in r[3] for p in patient_ids)
    )
    everything = [r[2] for r in results]
    summary["all"] = {
        "requests": len(results),
        "5xx": sum(1 for r in results if r[1] >= 500),
        "no_answer": sum(1 for r in results if r[1] == 0),
        "p50_ms": round(percentile(everything, 0.50) * 1000, 1),
        "p95_ms": round(percentile(everything, 0.95) * 1000, 1),
    }
    return summary


def mail_figures(counted: dict, mail_dir: Path) -> dict:
    handed = handed_to_mail(mail_dir)
    owed = set(counted["owed"])
    return {
        "owed": len(owed),
        "sent": len(owed & set(handed)),
        "lost": len(owed - set(handed)),
        "repeated_same_key": sum(n - 1 for n in handed.values()),
        "strangers": len(set(handed) - owed),
        "states": counted["states"],
        "sent_by_retry": counted["sent_by_retry"],
    }


def wait_for_mail(mail_dir: Path, owed: set, timeout: float, nudge=None) -> float | None:
    """Seconds until every owed key reached the mail folder (None: not within timeout);
    nudge, if given, is called every OUTBOX_RETRY_SECONDS meanwhile (beat's sweep)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if nudge is not None:
            nudge()
        if owed <= set(handed_to_mail(mail_dir)):
            return round(time.monotonic() - started, 1)
        time.sleep(OUTBOX_RETRY_SECONDS)
    return None


def send_sweep(queue: str, broker_url: str = REDIS_URL) -> None:
    """Ask for accounts.tasks.outbox_sweep by name on the queue, as beat does."""
    from celery import Celery

    with contextlib.closing(Celery("faults", broker=broker_url)) as app:
        app.send_task("accounts.tasks.outbox_sweep", queue=queue)


def broker(args: argparse.Namespace, workdir: str, keys: dict) -> dict:
    for database in (DATABASES["down"], DATABASES["up"]):
        if not fresh_postgres(database):
            raise SystemExit("PostgreSQL stopped answering")
    spec = {"patients": args.patients, "items": args.items}
    started = time.perf_counter()
    setups = {
        side: start_child("setup-broker", spec, app_env(DATABASES[side], workdir, keys)) for side in SIDES
    }
    data = {side: child_result(proc, f"setup ({side})") for side, proc in setups.items()}
    print(
        f"  two databases of {args.patients} patients each in {time.perf_counter() - started:.1f}s",
        flush=True,
    )

    mail = {side: Path(workdir) / f"mail-{side}" for side in SIDES}
    queue = {side: f"faults-{side}-{os.getpid()}" for side in SIDES}
    envs = {}
    for side in SIDES:
        mail[side].mkdir()
        live = side == "up"
        envs[side] = app_env(
            DATABASES[side],
            workdir,
            keys,
            CELERY_BROKER_URL=REDIS_URL if live else DEAD_BROKER,
            CACHE_URL=LIVE_CACHE if live else DEAD_CACHE,
            CELERY_TASK_DEFAULT_QUEUE=queue[side],
            EMAIL_BACKEND="file",
            EMAIL_FILE_PATH=str(mail[side]),
        )
    running: list = []  # whatever is started is stopped, however the run ends
    try:
        return broker_run(args, workdir, keys, data, envs, mail, queue, running)
    finally:
        for process in running:
            process.stop()


def broker_run(args, workdir, keys, data, envs, mail, queue, running) -> dict:
    running.append(Worker("up", queue["up"], envs["up"], workdir))
    up_worker = running[-1]
    servers = {side: Server(side, envs[side], workdir) for side in SIDES}
    running += servers.values()
    results: dict[str, list] = {side: [] for side in SIDES}
    for side, server in servers.items():
        server.wait_ready()
        warm_up(server.port, data[side]["patients"][0], args.concurrency)
    size = -(-args.patients // args.rounds)
    for number in range(args.rounds):
        order = SIDES if number % 2 == 0 else SIDES[::-1]
        for side in order:
            batch = data[side]["patients"][number * size : (number + 1) * size]
            results[side] += act(servers[side].port, batch, data[side]["session"], args.concurrency)
    last_action = time.monotonic()
    for server in servers.values():
        server.stop()

    report: dict = {}
    for side in SIDES:
        ids = [p["patient"] for p in data[side]["patients"]]
        report[side] = {"actions": action_summary(results[side], ids)}
        report[side]["gunicorn_tracebacks"] = servers[side].log.read_text().count("Traceback")

    # The live side: the worker sends as the actions commit.
    counted = child("count-broker", data["up"], app_env(DATABASES["up"], workdir, keys))
    report["up"]["all_sent_after_s"] = wait_for_mail(mail["up"], set(counted["owed"]), 60)
    up_worker.stop()
    counted = child("count-broker", data["up"], app_env(DATABASES["up"], workdir, keys))
    report["up"].update(after_counts(counted, mail["up"]))

    # The outage's side: nothing went while the broker was away; then it comes back.
    before = child("count-broker", data["down"], app_env(DATABASES["down"], workdir, keys))
    report["down"]["while_down"] = mail_figures(before, mail["down"])
    time.sleep(max(0.0, OUTBOX_RETRY_SECONDS + 0.5 - (time.monotonic() - last_action)))
    back_env = {**envs["down"], "CELERY_BROKER_URL": REDIS_URL, "CACHE_URL": LIVE_CACHE}
    running.append(Worker("down", queue["down"], back_env, workdir))
    back = time.time()
    took = wait_for_mail(mail["down"], set(before["owed"]), 120, lambda: send_sweep(queue["down"]))
    report["down"]["all_sent_after_broker_back_s"] = took
    for _ in range(3):  # more sweeps, as beat goes on: nothing may go twice
        send_sweep(queue["down"])
    time.sleep(OUTBOX_RETRY_SECONDS * 2)
    running[-1].stop()
    counted = child("count-broker", data["down"], app_env(DATABASES["down"], workdir, keys))
    report["down"].update(after_counts(counted, mail["down"]))
    if counted["emailed_at"]:
        report["down"]["last_sent_after_broker_back_s"] = round(max(counted["emailed_at"]) - back, 1)
    report["patients_per_side"] = args.patients
    report["items_per_patient"] = args.items
    return report


def after_counts(counted: dict, mail_dir: Path) -> dict:
    return {
        "emails": mail_figures(counted, mail_dir),
        "corrections_saved": counted["corrections"],
        "break_glass_rows": counted["break_glass_rows"],
        "break_glass_pairs": counted["break_glass_pairs"],
        "break_glass_max_per_pair": counted["break_glass_max_per_pair"],
        "verify_audit": counted["verify_audit"],
    }


def print_broker(result: dict) -> None:
    print(
        f"\nbroker down vs up: {result['patients_per_side']} patients a side,"
        f" {result['items_per_patient']} corrections and 2 break-glass declarations each"
    )
    print(f"{'side':<5} {'action':<18} {'requests':>8}  {'statuses':<22} {'p50 ms':>8} {'p95 ms':>8}")
    for side in SIDES:
        actions = result[side]["actions"]
        for action in (*ACTIONS, "all"):
            row = actions[action]
            statuses = (
                ", ".join(f"{code} x{n}" for code, n in row["statuses"].items())
                if "statuses" in row
                else f"5xx x{row['5xx']}, none x{row['no_answer']}"
            )
            print(
                f"{side:<5} {action:<18} {row['requests']:>8}  {statuses:<22}"
                f" {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f}"
            )
    print(
        f"\n{'side':<5} {'owed':>5} {'sent':>5} {'lost':>5} {'repeated':>9} {'corrections':>12}"
        f" {'glass rows':>11} {'max/pair':>9}  audit   all sent after"
    )
    for side in SIDES:
        r, mail = result[side], result[side]["emails"]
        after = r.get("all_sent_after_broker_back_s", r.get("all_sent_after_s"))
        print(
            f"{side:<5} {mail['owed']:>5} {mail['sent']:>5} {mail['lost']:>5} {mail['repeated_same_key']:>9}"
            f" {r['corrections_saved']:>12} {r['break_glass_rows']:>11} {r['break_glass_max_per_pair']:>9}"
            f"  {'intact' if r['verify_audit']['ok'] else 'BROKEN'}  "
            + (f"{after}s" if after is not None else "NOT within the wait")
            + (" of the broker's return" if side == "down" else "")
        )
    while_down = result["down"]["while_down"]
    print(
        f"while the broker was down: {while_down['sent']} of {while_down['owed']} emails sent,"
        f" states {while_down['states']}"
    )


# --- Scenario 3: dropped database connections ------------------------------------------------


def read_loop(port: int, reader: dict, until: float) -> list[tuple[int, float]]:
    headers = {"Authorization": f"Bearer {reader['token']}", "Accept": "application/fhir+json"}
    paths = itertools.cycle(
        [f"/fhir/Patient/{reader['patient']}/$everything", f"/fhir/Observation?patient={reader['patient']}"]
    )
    seen = []
    while time.monotonic() < until:
        status, seconds, _ = request(port, "GET", next(paths), headers)
        seen.append((status, seconds))
    return seen


def drop_loop(database: str, every: float, until: float, ended: list) -> None:
    """Every `every` seconds, end every client backend of the bench database."""
    import psycopg

    url = PG_ADMIN_URL.replace("postgres://", "postgresql://")
    with psycopg.connect(url, autocommit=True, application_name="faults-dropper") as conn:
        while time.monotonic() + every < until:
            time.sleep(every)
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE ended) FROM (SELECT pg_terminate_backend(pid) AS ended"
                " FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend') AS t",
                [database],
            ).fetchone()
            ended.append(row[0])


def drops(args: argparse.Namespace, workdir: str, keys: dict) -> dict:
    database = DATABASES["drops"]
    if not fresh_postgres(database):
        raise SystemExit("PostgreSQL stopped answering")
    plain = app_env(database, workdir, keys)
    started = time.perf_counter()
    data = child("setup-drops", {"patients": args.drop_clients, "entries": args.drop_entries}, plain)
    print(
        f"  {args.drop_clients} records of {args.drop_entries} entries"
        f" in {time.perf_counter() - started:.1f}s"
    )
    env = app_env(
        database,
        workdir,
        keys,
        DB_CONN_MAX_AGE="60",
        CELERY_BROKER_URL=REDIS_URL,
        CACHE_URL=LIVE_CACHE,
        CELERY_TASK_DEFAULT_QUEUE=f"faults-drops-{os.getpid()}",
    )
    server = Server("drops", env, workdir)
    ended: list[int] = []
    try:
        server.wait_ready()
        until = time.monotonic() + args.drop_seconds
        dropper = threading.Thread(target=drop_loop, args=(database, args.drop_every, until, ended))
        dropper.start()
        with ThreadPoolExecutor(args.drop_clients) as pool:
            seen = [
                r for rs in pool.map(lambda r: read_loop(server.port, r, until), data["readers"]) for r in rs
            ]
        dropper.join()
    finally:
        server.stop()
    log = server.log.read_text()
    counted = child("count-drops", {"users": [r["user"] for r in data["readers"]]}, plain)
    statuses = Counter(status for status, _ in seen)
    ok = statuses.get(200, 0)
    latencies = [seconds for status, seconds in seen if status == 200]
    return {
        "seconds": args.drop_seconds,
        "clients": args.drop_clients,
        "entries_per_record": args.drop_entries,
        "drop_every_s": args.drop_every,
        "drop_rounds": len(ended),
        "backends_ended": sum(ended),
        "requests": len(seen),
        "statuses": dict(sorted((str(k), v) for k, v in statuses.items())),
        "ok_200": ok,
        "5xx": sum(v for k, v in statuses.items() if k >= 500),
        "503": statuses.get(503, 0),
        "no_answer": statuses.get(0, 0),
        "reads_run_again": log.count("running it again"),
        "gunicorn_tracebacks": log.count("Traceback"),
        "read_events": counted["read_events"],
        "events_minus_200s": counted["read_events"] - ok,
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "verify_audit": counted["verify_audit"],
    }


def print_drops(result: dict) -> None:
    print(
        f"\nconnection drops: {result['clients']} clients reading for {result['seconds']}s,"
        f" every backend ended every {result['drop_every_s']}s"
    )
    print(
        f"{'requests':>8} {'200':>6} {'5xx':>5} {'503':>5} {'no answer':>9} {'ended':>6} {'run again':>9}"
        f" {'events':>7} {'events-200':>10} {'p50 ms':>7} {'p95 ms':>7}  audit"
    )
    print(
        f"{result['requests']:>8} {result['ok_200']:>6} {result['5xx']:>5} {result['503']:>5}"
        f" {result['no_answer']:>9} {result['backends_ended']:>6} {result['reads_run_again']:>9}"
        f" {result['read_events']:>7} {result['events_minus_200s']:>10} {result['p50_ms']:>7.1f}"
        f" {result['p95_ms']:>7.1f}  {'intact' if result['verify_audit']['ok'] else 'BROKEN'}"
    )


# --- Scenario 4: many clients at once ------------------------------------------------------


def load_loop(port: int, reader: dict, until: float) -> list[tuple[str, int, float]]:
    """One client: $everything with its token and the record page with its session, in turn."""
    calls = itertools.cycle(
        [
            (
                "$everything",
                f"/fhir/Patient/{reader['patient']}/$everything",
                {"Authorization": f"Bearer {reader['token']}", "Accept": "application/fhir+json"},
            ),
            ("record page", "/record/", {"Cookie": f"sessionid={reader['session']}"}),
        ]
    )
    seen = []
    while time.monotonic() < until:
        name, path, headers = next(calls)
        status, seconds, _ = request(port, "GET", path, headers)
        seen.append((name, status, seconds))
    return seen


def load(args: argparse.Namespace, workdir: str, keys: dict) -> dict:
    """--load-clients clients for --load-seconds against gunicorn (2 sync workers, as
    compose runs it), each with its own record of --drop-entries entries."""
    database = "faults_load"
    if not fresh_postgres(database):
        raise SystemExit("PostgreSQL stopped answering")
    static = str(Path(workdir) / "static")  # the pages name hashed files, as production serves them
    plain = app_env(database, workdir, keys, CACHE_URL=LIVE_CACHE, STATIC_ROOT=static)
    data = child("setup-drops", {"patients": args.load_clients, "entries": args.drop_entries}, plain)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], env=plain, cwd=REPO, check=True
    )
    env = app_env(database, workdir, keys, DB_CONN_MAX_AGE="60", CACHE_URL=LIVE_CACHE, STATIC_ROOT=static)
    server = Server("load", env, workdir)
    try:
        server.wait_ready()
        until = time.monotonic() + args.load_seconds
        with ThreadPoolExecutor(args.load_clients) as pool:
            seen = [
                r for rs in pool.map(lambda r: load_loop(server.port, r, until), data["readers"]) for r in rs
            ]
    finally:
        server.stop()
    log = server.log.read_text()
    counted = child("count-drops", {"users": [r["user"] for r in data["readers"]], "seal": True}, plain)
    result = {
        "seconds": args.load_seconds,
        "clients": args.load_clients,
        "entries_per_record": args.drop_entries,
        "requests": len(seen),
        "gunicorn_tracebacks": log.count("Traceback"),
        "read_events": counted["read_events"],
        "unsealed_at_the_end": counted["unsealed_before"],
        "verify_audit": counted["verify_audit"],
        "reads": {},
    }
    for name in ("$everything", "record page"):
        mine = [(status, seconds) for n, status, seconds in seen if n == name]
        result["reads"][name] = {
            **answers_figures(mine),
            "per_second": round(len(mine) / args.load_seconds, 1),
        }
    return result


def answers_figures(rows: list[tuple[int, float]]) -> dict:
    """One kind of request's answers (status, seconds): how many, by status, the errors
    (anything but a 2xx), and p50 and p95 of the successful ones."""
    latencies = [seconds for status, seconds in rows if 200 <= status < 300] or [0.0]
    return {
        "requests": len(rows),
        "statuses": dict(sorted(Counter(str(status) for status, _ in rows).items())),
        "errors": sum(1 for status, _ in rows if not 200 <= status < 300),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
    }


def print_load(result: dict) -> None:
    print(f"\nload: {result['clients']} clients for {result['seconds']}s, gunicorn with 2 sync workers")
    print(f"{'read':<14} {'requests':>8} {'errors':>6} {'per s':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for name, read in result["reads"].items():
        print(
            f"{name:<14} {read['requests']:>8} {read['errors']:>6} {read['per_second']:>6.1f}"
            f" {read['p50_ms']:>8.1f} {read['p95_ms']:>8.1f}"
        )
    print(
        f"audit events of the reads: {result['read_events']};"
        f" unsealed at the end: {result['unsealed_at_the_end']};"
        f" ledger {'intact' if result['verify_audit']['ok'] else 'BROKEN'};"
        f" tracebacks {result['gunicorn_tracebacks']}"
    )


# --- Scenario 5: Redis stopped for a while, then started again ----------------------------------


class OwnRedis:
    """A redis-server of the bench's own, on a free port, keeping its data in an
    append-only file as a production Redis would: stopped (SIGTERM) and started again on
    the same port and folder, while the portal runs."""

    def __init__(self, workdir: str):
        self.port = free_port()
        self.folder = Path(workdir) / "redis"
        self.folder.mkdir()
        self.proc: subprocess.Popen | None = None
        self.start()

    def url(self, number: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{number}"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        command += ["--appendonly", "yes", "--save", ""]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis.from_url(self.url(0), socket_connect_timeout=1).ping():
                    return
            if time.monotonic() > deadline:
                raise SystemExit("the bench's own redis-server did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


OUTAGE_PHASES = (("before", 10.0), ("Redis stopped", 30.0), ("Redis back", 10.0))


def outage_loop(port: int, patient: dict, phase: int, until: float) -> list[tuple[str, int, float]]:
    """One patient during one phase: a correction of this phase's item (it owes emails to
    the holder's clinicians), then $everything until the phase ends."""
    api = {
        "Authorization": f"Bearer {patient['token']}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    body = json.dumps({**CORRECTION, "entry": patient["items"][phase], "element": ELEMENT}).encode()
    status, seconds, _ = request(port, "POST", "/api/v1/corrections/", api, body)
    seen = [("correction", status, seconds)]
    read = {"Authorization": f"Bearer {patient['token']}", "Accept": "application/fhir+json"}
    while time.monotonic() < until:
        status, seconds, _ = request(port, "GET", f"/fhir/Patient/{patient['patient']}/$everything", read)
        seen.append(("$everything", status, seconds))
    return seen


def outage(args: argparse.Namespace, workdir: str, keys: dict) -> dict:
    """Redis (broker and cache) stopped for --outage-seconds and started again, while
    gunicorn serves reads and corrections and a Celery worker sends the emails."""
    database = "faults_outage"
    if not fresh_postgres(database):
        raise SystemExit("PostgreSQL stopped answering")
    phases = [
        (name, args.outage_seconds if name == "Redis stopped" else seconds) for name, seconds in OUTAGE_PHASES
    ]
    spec = {"patients": args.outage_clients, "items": len(phases)}
    data = child("setup-broker", spec, app_env(database, workdir, keys))
    redis = OwnRedis(workdir)
    queue, mail = f"faults-outage-{os.getpid()}", Path(workdir) / "mail-outage"
    mail.mkdir()
    env = app_env(
        database,
        workdir,
        keys,
        CELERY_BROKER_URL=redis.url(0),
        CACHE_URL=redis.url(1),
        CELERY_TASK_DEFAULT_QUEUE=queue,
        EMAIL_BACKEND="file",
        EMAIL_FILE_PATH=str(mail),
        OUTBOX_SWEEP_SECONDS=str(OUTBOX_RETRY_SECONDS),
    )
    running: list = []
    result: dict = {"clients": args.outage_clients, "phases": {}}
    try:
        running.append(Worker("outage", queue, env, workdir))
        running.append(Beat("outage", env, workdir))
        server = Server("outage", env, workdir)
        running.append(server)
        server.wait_ready()
        warm_up(server.port, data["patients"][0], 4)
        for number, (name, seconds) in enumerate(phases):
            if name == "Redis stopped":
                redis.stop()
            elif name == "Redis back":
                redis.start()
                back = time.monotonic()
            until = time.monotonic() + seconds
            with ThreadPoolExecutor(len(data["patients"])) as pool:
                turns = [pool.submit(outage_loop, server.port, p, number, until) for p in data["patients"]]
                seen = [r for turn in turns for r in turn.result()]
            result["phases"][name] = outage_summary(seen)
        # Beat goes on (its sweep every OUTBOX_RETRY_SECONDS, its sealing every 2 s): what
        # was owed while Redis was away goes now, and every event is sealed.
        counted = child("count-broker", data, app_env(database, workdir, keys))
        took = wait_for_mail(mail, set(counted["owed"]), 180)
        result["all_sent_after_redis_back_s"] = None if took is None else round(time.monotonic() - back, 1)
        result["all_sealed_after_redis_back_s"] = wait_until_sealed(database, workdir, keys, back, 180)
        time.sleep(OUTBOX_RETRY_SECONDS * 3)  # more sweeps: nothing may go twice
        server.stop()
        result["gunicorn_tracebacks"] = server.log.read_text().count("Traceback")
    finally:
        for process in running:
            process.stop()
        redis.stop()
    counted = child("count-broker", data, app_env(database, workdir, keys))
    result["emails"] = mail_figures(counted, mail)
    result["corrections_saved"] = counted["corrections"]
    result["verify_audit"] = counted["verify_audit"]
    return result


def wait_until_sealed(database: str, workdir: str, keys: dict, since: float, timeout: float) -> float | None:
    """Seconds from ``since`` until no audit event waits to be sealed (None: not within
    the timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child("count-unsealed", {}, app_env(database, workdir, keys))["unsealed"] == 0:
            return round(time.monotonic() - since, 1)
        time.sleep(1)
    return None


def outage_summary(seen: list[tuple[str, int, float]]) -> dict:
    return {
        action: answers_figures([(status, seconds) for name, status, seconds in seen if name == action])
        for action in ("$everything", "correction")
    }


def print_outage(result: dict) -> None:
    print(f"\nRedis stopped and started again: {result['clients']} clients")
    print(f"{'phase':<14} {'read':<12} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for phase, reads in result["phases"].items():
        for action, row in reads.items():
            print(
                f"{phase:<14} {action:<12} {row['requests']:>8} {row['errors']:>6}"
                f" {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f}"
            )
    emails = result["emails"]
    print(
        f"emails owed {emails['owed']}, sent {emails['sent']}, lost {emails['lost']},"
        f" repeated {emails['repeated_same_key']}; all sent {result['all_sent_after_redis_back_s']} s"
        f" and all events sealed {result['all_sealed_after_redis_back_s']} s after Redis came back;"
        f" corrections saved {result['corrections_saved']};"
        f" ledger {'intact' if result['verify_audit']['ok'] else 'BROKEN'};"
        f" tracebacks {result['gunicorn_tracebacks']}"
    )


# --- The run ---------------------------------------------------------------------------------


SCENARIOS = {
    "kills": (kills, print_kills),
    "broker": (broker, print_broker),
    "drops": (drops, print_drops),
    "load": (load, print_load),
    "outage": (outage, print_outage),
}


def services_answer() -> str | None:
    """Why the bench cannot run here, or None."""
    import psycopg
    import redis

    try:
        psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), connect_timeout=3).close()
    except psycopg.Error:
        return f"PostgreSQL does not answer at {PG_ADMIN_URL}"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return f"Redis does not answer at {REDIS_URL}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(SCENARIOS))
    parser.add_argument("--kills", type=int, default=200, help="SIGKILLs of the worker")
    parser.add_argument("--patients", type=int, default=40, help="patients on each side (broker)")
    parser.add_argument("--items", type=int, default=2, help="items, so corrections, per patient (broker)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients (broker)")
    parser.add_argument("--rounds", type=int, default=4, help="batches each side takes in turn (broker)")
    parser.add_argument("--drop-seconds", type=float, default=30)
    parser.add_argument("--drop-every", type=float, default=2.0, help="seconds between drops")
    parser.add_argument("--drop-clients", type=int, default=4)
    parser.add_argument("--drop-entries", type=int, default=200, help="entries in each reader's record")
    parser.add_argument("--load-clients", type=int, default=50)
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--outage-clients", type=int, default=8)
    parser.add_argument("--outage-seconds", type=float, default=30, help="how long Redis is stopped")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, spec = args.child
        print(json.dumps(CHILDREN[name](json.loads(spec))))
        return

    if not Path(GUNICORN).exists():
        raise SystemExit(f"gunicorn is not installed beside this Python ({GUNICORN})")
    missing = services_answer()
    if missing:
        print(f"faults: skipped, {missing}")
        return
    chosen = [args.only] if args.only else list(SCENARIOS)
    out = RESULTS / "faults.json"
    report = json.loads(out.read_text()) if args.only and out.exists() else {}
    report.update(
        {
            "benchmark": "parts broken on purpose (worker kills, broker down, dropped database connections)"
            " and 50 clients at once",
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
            },
        }
    )
    report.setdefault("results", {})
    keys = run_keys()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        for name in chosen:
            print(f"running {name}...", flush=True)
            began = time.perf_counter()
            result = SCENARIOS[name][0](args, workdir, keys)
            result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
            result["took_s"] = round(time.perf_counter() - began, 1)
            report["results"][name] = result
    for name in chosen:
        SCENARIOS[name][1](report["results"][name])
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
