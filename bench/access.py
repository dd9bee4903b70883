"""The cost of the access decision and its audit write on a read of a whole record.

Both are run side by side, alternating round by round in one process per database, so
that the ratio survives a noisy shared machine. For each database (SQLite in a scratch
file; PostgreSQL when DATABASE_URL_BENCH or 127.0.0.1:5432 answers) one patient has a
record of 1,000 entries held by organisation A, and a clinician of organisation B reads
it, the patient's choices permitting:

  bare     the entries straight from the table, joined into a Bundle-like JSON body
  policy   open_record (the decision) + RecordAccess.read (the query and the audit event
           naming every entry disclosed) + the same body

and, to say where the difference goes, each part of the policy path on its own: the
decision, the permitted query, the audit event, and inside the audit event its entry
references, its canonical JSON and keyed hash, and its statements.

Prints a table and writes bench/results/access.json.

    python bench/access.py [--rounds 5] [--reads 50] [--entries 1000] [--only sqlite|postgresql]
        [--profile]
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchlib import child_env, fresh_postgres

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PG_BENCH_DB = "bench_access"
GOAL = 0.15  # the bound on the overhead of policy + audit over a bare read
# What the API serves from a row: the stored JSON, and what orders and audits it.
FIELDS = ("id", "version", "resource_type", "clinical_date", "json")


def record_bundle(entries: int) -> dict:
    """A collection of one Patient and entries - 1 small Observations about them."""
    patient = {
        "resourceType": "Patient",
        "id": "bench-patient",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}],
        "name": [{"use": "official", "family": "Bench", "given": ["Ada"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }
    start = datetime(2015, 1, 1, tzinfo=UTC)
    observations = [
        {
            "resourceType": "Observation",
            "id": f"obs-{n}",
            "status": "final",
            "code": {
                "coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}],
            },
            "subject": {"reference": "Patient/bench-patient"},
            "effectiveDateTime": (start + timedelta(days=n)).isoformat(),
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


def body(rows) -> str:
    """The response the API serves: the stored JSON texts, never re-encoded."""
    return (
        '{"resourceType":"Bundle","type":"searchset","total":%d,"entry":[%s]}'  # noqa: UP031
        % (len(rows), ",".join('{"resource":' + row.json + "}" for row in rows))
    )


def measure(rounds: int, reads: int, entries: int, profile: bool) -> dict:
    """Run inside a child process whose DATABASE_URL points at an empty bench database."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    from allauth.mfa.totp.internal.auth import TOTP
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    import audit
    from accounts.models import Membership, PatientLink, User
    from audit.chain import canonical, disclosure_set
    from audit.ledger import MAC_FIELDS, event_mac
    from audit.models import AuditEvent
    from consent.policy import (
        _policy_scope,  # the bench times the permitted query on its own
        actor_for,
        current_choices,
        find_patient,
        open_break_glass,
        open_record,
        sharing_for,
    )
    from consent.services import change_consent
    from phr.ingest import ingest_documents
    from phr.models import Organisation, OrganisationKind, RecordEntry

    logging.disable(logging.INFO)
    call_command("migrate", verbosity=0)

    owner = Organisation.objects.create(
        ods_code="A10001", name="Owner Surgery", kind=OrganisationKind.GP_PRACTICE
    )
    reader = Organisation.objects.create(
        ods_code="RX100", name="Reader Trust", kind=OrganisationKind.ACUTE_TRUST
    )
    other = Organisation.objects.create(ods_code="RX200", name="Other Trust", kind=OrganisationKind.OTHER)
    result = ingest_documents([("bench", record_bundle(entries))], organisation=owner, source="bench")
    if result.rejected:
        raise SystemExit(f"the bench record was not accepted: {result.as_dict()}")
    patient_user = User.objects.create_user("patient@bench.example", role="patient")
    patient = RecordEntry.objects.get(owner=owner, resource_type="Patient").patient
    PatientLink.objects.create(user=patient_user, patient=patient, method="demo")
    patient_user = User.objects.get(pk=patient_user.pk)
    # A few choices, as a patient who has made some: the decision reads and weighs them all.
    as_patient = actor_for(patient_user)
    later = timezone.now() + timedelta(days=365)
    for scope, decision, org, category, until in [
        ("network", "permit", None, "", None),
        ("category", "deny", None, "sexual_health", None),
        ("organisation", "permit", reader, "", later),
        ("organisation_category", "deny", reader, "safeguarding", None),
        ("organisation", "deny", other, "", None),
    ]:
        change_consent(
            actor=as_patient,
            patient_id=patient.pk,
            scope=scope,
            decision=decision,
            organisation=org,
            category=category,
            until=until,
        )
    clinician = User.objects.create_user("clinician@bench.example", role="clinician")
    Membership.objects.create(user=clinician, organisation=reader)
    TOTP.activate(clinician, "NBSWY3DPORVXA4TPMFZWI3LPNRXXEYLM")  # staff read with a second factor only
    actor = actor_for(clinician)

    shape = lambda qs: qs.order_by("resource_type", "-clinical_date").only(*FIELDS)  # noqa: E731

    def bare() -> int:
        rows = list(shape(RecordEntry.objects.filter(patient=patient)))
        return len(body(rows))

    def policy() -> int:
        access = open_record(actor, patient.pk)
        rows = access.read(shape)
        return len(body(rows))

    sizes = {bare(), policy()}
    disclosed = len(open_record(actor, patient.pk).read(shape))
    record_size = RecordEntry.objects.filter(patient=patient).count()
    if len(sizes) != 1 or disclosed != record_size:
        raise SystemExit(f"policy and bare reads differ: {sizes}, {disclosed} of {record_size} entries")

    def timed(fn, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n

    for _ in range(3):  # warm the connection, the query plans and the caches
        bare(), policy()

    # Side by side: alternate which goes first so neither always gets the warmer machine.
    runs: dict[str, list[float]] = {"bare": [], "policy": []}
    for number in range(rounds):
        order = ("bare", "policy") if number % 2 == 0 else ("policy", "bare")
        for name in order:
            runs[name].append(timed(bare if name == "bare" else policy, reads))

    # The parts of the policy path, each on its own (median of per-call times).
    access = open_record(actor, patient.pk)

    def permitted() -> list:
        """The permitted query alone, unaudited: only the policy's own scope may run it."""
        with _policy_scope():
            return list(shape(access.entries))

    rows = permitted()
    fields = {
        "action": "record.read",
        "entries": [audit.entry_ref(e) for e in rows],
        "patient": patient,
        "outcome": "permit",
        "purpose": access.decision.purpose,
        "reason": access.decision.reason[:200],
        "detail": {},
        **actor.audit_fields(),
    }
    refs = fields["entries"]
    digest = disclosure_set(refs)
    sample = AuditEvent(
        occurred_at=timezone.now(),
        prev_hash="",
        disclosure_id=digest,
        **{k: v for k, v in fields.items() if k != "entries"},
    )

    def audit_write():
        with transaction.atomic():
            audit.record(
                "record.read",
                entries=rows,
                **{k: v for k, v in fields.items() if k not in ("action", "entries")},
            )

    def rolled_back_audit():
        with transaction.atomic():
            audit.record(
                "record.read",
                entries=rows,
                **{k: v for k, v in fields.items() if k not in ("action", "entries")},
            )
            transaction.set_rollback(True)

    choices = current_choices(patient)
    parts = {
        "decision (open_record)": lambda: open_record(actor, patient.pk),
        "  find_patient": lambda: find_patient(patient.pk),
        "  open_break_glass": lambda: open_break_glass(actor, patient),
        "  current_choices": lambda: current_choices(patient),
        "  sharing_for": lambda: sharing_for(reader, choices),
        "bare query": lambda: list(shape(RecordEntry.objects.filter(patient=patient))),
        "permitted query": permitted,
        "body": lambda: body(rows),
        "audit event (audit.record)": audit_write,
        "  entry refs": lambda: [audit.entry_ref(e) for e in rows],
        "  disclosure set (digest + lookup)": lambda: disclosure_set(refs),
        "  canonical JSON": lambda: canonical(sample, MAC_FIELDS),
        "  canonical JSON + HMAC": lambda: event_mac(sample),
        "  audit.record rolled back": rolled_back_audit,
    }
    breakdown = {}
    for name, fn in parts.items():
        samples = [timed(fn, max(reads // 5, 5)) for _ in range(rounds)]
        breakdown[name] = round(statistics.median(samples) * 1000, 3)
    breakdown["  statements + commit"] = round(
        breakdown["audit event (audit.record)"]
        - breakdown["  entry refs"]
        - breakdown["  disclosure set (digest + lookup)"]
        - breakdown["  canonical JSON + HMAC"],
        3,
    )

    profile_text = ""
    if profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(reads):
            policy()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        profile_text = out.getvalue()

    rates = {name: [1 / t for t in times] for name, times in runs.items()}
    overheads = [(p - b) / b for b, p in zip(runs["bare"], runs["policy"], strict=True)]
    return {
        "vendor": connection.vendor,
        "debug": settings.DEBUG,
        "entries_read": record_size,
        "body_bytes": sizes.pop(),
        "rounds": rounds,
        "reads_per_round": reads,
        "ms_per_read_median": {name: round(statistics.median(t) * 1000, 3) for name, t in runs.items()},
        "reads_per_second_median": {name: round(statistics.median(r), 1) for name, r in rates.items()},
        "reads_per_second_all": {name: [round(x, 1) for x in r] for name, r in rates.items()},
        "overhead_median": round(statistics.median(overheads), 4),
        "overhead_all": [round(x, 4) for x in overheads],
        "breakdown_ms": breakdown,
        "audit_entries_json_bytes": len(json.dumps(fields["entries"])),
        "profile": profile_text,
    }


def postgres_available() -> bool:
    return fresh_postgres(PG_BENCH_DB)


def child(backend: str, args: argparse.Namespace, workdir: str) -> dict:
    env = child_env(backend, workdir, PG_BENCH_DB)
    command = [sys.executable, __file__, "--child", "--rounds", str(args.rounds), "--reads", str(args.reads)]
    command += ["--entries", str(args.entries)] + (["--profile"] if args.profile else [])
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{backend} run failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reads", type=int, default=50, help="reads per round, of each kind")
    parser.add_argument("--entries", type=int, default=1000, help="entries in the record read")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--profile", action="store_true", help="cProfile the policy reads and print it")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.rounds, args.reads, args.entries, args.profile)))
        return

    backends = [args.only] if args.only else ["sqlite", "postgresql"]
    report = {
        "benchmark": "record read: access decision + audit write vs bare read",
        "goal_overhead": GOAL,
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
            print(f"running {backend} ({args.rounds} rounds of {args.reads} reads each)...", flush=True)
            report["results"][backend] = child(backend, args, workdir)

    print()
    print(
        f"{'database':<11} {'entries':>7} {'bare/s':>8} {'policy/s':>8} {'bare ms':>8} {'policy ms':>9} "
        f"{'overhead':>8}  goal <= {GOAL:.0%}"
    )
    for backend, r in report["results"].items():
        rate, ms = r["reads_per_second_median"], r["ms_per_read_median"]
        verdict = "met" if r["overhead_median"] <= GOAL else "NOT met"
        print(
            f"{backend:<11} {r['entries_read']:>7} {rate['bare']:>8.1f} {rate['policy']:>8.1f} "
            f"{ms['bare']:>8.2f} {ms['policy']:>9.2f} {r['overhead_median']:>8.1%}  {verdict}"
        )
    print()
    names = list(next(iter(report["results"].values()))["breakdown_ms"]) if report["results"] else []
    if names:
        print(f"{'part (ms per call, median)':<30}" + "".join(f"{b:>12}" for b in report["results"]))
        for name in names:
            print(
                f"{name:<30}"
                + "".join(f"{r['breakdown_ms'][name]:>12.3f}" for r in report["results"].values())
            )
    for backend, r in report["results"].items():
        if r["profile"]:
            print(f"\n--- cProfile of {args.reads} policy reads on {backend} ---\n{r['profile']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "access.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
