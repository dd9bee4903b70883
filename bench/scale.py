"""The portal's everyday reads as the network grows: 1,000, 10,000 and 100,000 patients.

PostgreSQL only (DATABASE_URL_BENCH's server, or 127.0.0.1:5432 as postgres with trust):
a region's network is what this measures, and SQLite is the single-practice mode. For
each size a child process builds a fresh database (bench_scale) with production settings:

  holders   seven organisations: three GP practices, an acute trust, community services,
            a mental health trust and social care
  records   each patient is held by their GP practice (10 items), the acute trust (5) and
            one of the other three (5): 20 items and three Patient resources each. One
            seed patient's records go through the real ingest at every holder; every other
            patient's rows are those rows with the patient's own ids, NHS number and
            content hash, written with COPY (entries and their first versions)
  audit     --events-per-patient events per patient (100 by default: 10 million at
            100,000 patients), record reads by the holders' clinicians, spread over the
            last 12 months, written by INSERT ... SELECT on the server into the monthly
            partitions the portal keeps (audit.partitions adds the past months first, as a
            trail that has run for a year has them)
  people    --sample patients with accounts and bearer tokens, a clinician of the acute
            trust and an IG officer (both with a second factor), and one correction
            request per 100 patients in the acute trust's queue (50 at least, so that the
            queue's first page is full at every size)

Then each read runs --reads times (after warm-up), in process through Django's test
client with the full middleware, policy and audit, spread over the sampled patients:

  record page          GET /record/ as the patient
  $everything          GET /fhir/Patient/<id>/$everything with the patient's token
  search by code       GET /fhir/Observation?code=http://loinc.org|8867-4 (the token's patient)
  clinician find+read  POST the NHS number to /clinician/, then GET the record it leads to
  correction queue     GET /clinician/corrections/ as the trust's clinician
  IG by patient        GET /ig/?patient=<id>
  IG by org, month     GET /ig/?organisation=<ods>&date_from=<30 days ago>&date_to=<today>
  access log           GET /sharing/access-log/ as the patient

Reported per size: p50 and p95 in milliseconds, rows loaded and how long the load took;
and for every read, p50 at each size over p50 at the smallest (the issue's goal: within
1.2x at 100,000 patients). Every response must be 200: a bench that measured error pages
would say nothing.

Prints a table and writes bench/results/scale.json.

    python bench/scale.py [--sizes 1000,10000,100000] [--events-per-patient 100]
        [--reads 40] [--sample 20]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from benchlib import PG_ADMIN_URL, child_env, fresh_postgres

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = REPO / "bench" / "results"
DATABASE = "bench_scale"
SEED = "seedpatientkey"
SEED_NHS = "9999999999"  # replaced in every copy; not a valid number, so never a real one
HOLDERS = [
    ("B81001", "Riverside Surgery", "gp_practice"),
    ("B81002", "Hillside Medical Centre", "gp_practice"),
    ("B81003", "Market Street Practice", "gp_practice"),
    ("RXA", "City Hospitals NHS Trust", "acute_trust"),
    ("RYB", "City Community Services", "community_services"),
    ("RXC", "City Mental Health Trust", "mental_health_trust"),
    ("SC001", "City Council Adult Social Care", "social_care"),
]
HEART_RATE = "http://loinc.org|8867-4"
READS = (
    "record page",
    "$everything",
    "search by code",
    "clinician find+read",
    "correction queue",
    "IG by patient",
    "IG by org, month",
    "access log",
)


# --- The seed records (ingested once per holder) --------------------------------------------


def coded(system: str, code: str, display: str) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def seed_bundle(kind: str) -> dict:
    """One patient's record at a holder of this kind: 10 items at a GP practice, 5 elsewhere."""
    subject = {"reference": f"Patient/{SEED}"}
    tag = kind.replace("_", "-")  # FHIR ids take letters, digits, "-" and "."
    start = datetime(2024, 1, 1, tzinfo=UTC)
    patient = {
        "resourceType": "Patient",
        "id": SEED,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": SEED_NHS}],
        "name": [{"use": "official", "family": "Scale", "given": ["Bench"]}],
        "gender": "female",
        "birthDate": "1961-04-02",
    }

    def observation(n: int, code: str, display: str, value: float, unit: str) -> dict:
        return {
            "resourceType": "Observation",
            "id": f"{SEED}-obs-{tag}-{n}",
            "status": "final",
            "code": coded("http://loinc.org", code, display),
            "subject": subject,
            "effectiveDateTime": (start + timedelta(days=30 * n)).isoformat(),
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
        }

    def condition(n: int, code: str, display: str) -> dict:
        return {
            "resourceType": "Condition",
            "id": f"{SEED}-cond-{tag}-{n}",
            "clinicalStatus": coded(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"
            ),
            "code": coded("http://snomed.info/sct", code, display),
            "subject": subject,
            "recordedDate": (start - timedelta(days=400 * n)).date().isoformat(),
        }

    def medication(n: int, code: str, display: str, dose: str) -> dict:
        return {
            "resourceType": "MedicationStatement",
            "id": f"{SEED}-med-{tag}-{n}",
            "status": "active",
            "medicationCodeableConcept": coded("http://snomed.info/sct", code, display),
            "subject": subject,
            "dosage": [{"text": dose}],
        }

    heart = [observation(n, "8867-4", "Heart rate", 60 + n, "/min") for n in range(2)]
    if kind == "gp_practice":
        items = [
            condition(1, "38341003", "Hypertension"),
            condition(2, "44054006", "Type 2 diabetes mellitus"),
            condition(3, "195967001", "Asthma"),
            medication(1, "318420003", "Amlodipine 5mg tablets", "One tablet daily"),
            medication(2, "325278007", "Metformin 500mg tablets", "One tablet twice daily"),
            medication(3, "320176004", "Salbutamol inhaler", "Two puffs when needed"),
            *heart,
            observation(3, "29463-7", "Body weight", 71.5, "kg"),
            {
                "resourceType": "AllergyIntolerance",
                "id": f"{SEED}-allergy-{tag}-1",
                "clinicalStatus": coded(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"
                ),
                "code": coded("http://snomed.info/sct", "764146007", "Penicillin"),
                "patient": subject,
            },
        ]
    else:
        items = [
            *heart,
            observation(3, "8480-6", "Systolic blood pressure", 132, "mm[Hg]"),
            condition(1, "73211009", "Diabetes mellitus"),
            medication(1, "318420003", "Amlodipine 5mg tablets", "One tablet daily"),
        ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in [patient, *items]],
    }


# --- The child: build one network and read it -------------------------------------------------


def holders_of(index: int, organisations: list) -> list:
    """The patient's GP practice, the acute trust, and one of the other three."""
    return [organisations[index % 3], organisations[3], organisations[4 + index % 3]]


def build(size: int, events_per_patient: int, sample: int) -> dict:
    import logging

    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from audit import partitions
    from phr.ingest import ingest_documents
    from phr.models import EntryVersion, Organisation, Patient, RecordEntry
    from phr.nhs_number import unissued_numbers

    logging.disable(logging.INFO)
    call_command("migrate", verbosity=0)
    # Pages name hashed static files, as in production: collected into the run's scratch
    # folder (STATIC_ROOT), never the working tree's staticfiles/, which every test client
    # would scan.
    call_command("collectstatic", interactive=False, verbosity=0)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    organisations = [
        Organisation.objects.create(ods_code=ods, name=name, kind=kind) for ods, name, kind in HOLDERS
    ]
    templates = {}
    for organisation in organisations:
        result = ingest_documents(
            [(SEED, seed_bundle(organisation.kind))], organisation=organisation, source="bench"
        )
        if result.rejected:
            raise SystemExit(f"the seed record was not accepted: {result.as_dict()}")
        entries = list(RecordEntry.objects.filter(owner=organisation).order_by("resource_type", "fhir_id"))
        versions = {v.entry_id: v for v in EntryVersion.objects.filter(entry__in=entries)}
        templates[organisation.pk] = [(entry, versions[entry.pk]) for entry in entries]
    timings["seed ingest"] = time.perf_counter() - started

    # Every other patient: the seed's rows with their own ids, written with COPY.
    started = time.perf_counter()
    now = timezone.now()
    patients: list[tuple[uuid.UUID, str]] = []
    raw = connection.cursor().connection  # psycopg's own connection, for COPY
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY phr_patient (id, nhs_number, family_name, given_names, birth_date, gender, deceased,"
            " postcode, created_at) FROM STDIN"
        ) as copy:
            for index, number in zip(range(size), unissued_numbers(), strict=False):
                pk = uuid.uuid4()
                patients.append((pk, number))
                copy.write_row(
                    (pk, number, "Scale", f"Patient {index}", date(1961, 4, 2), "female", False, "", now)
                )
        entry_rows = 0
        with cursor.copy(
            "COPY phr_recordentry (id, owner_id, resource_type, fhir_id, patient_id, subject_ref, category,"
            " third_party, clinical_status, entered_in_error, display, clinical_date, json, content_hash,"
            " version, first_received_at, last_updated_at) FROM STDIN"
        ) as entries_copy:
            version_rows = []
            for index, (pk, number) in enumerate(patients):
                key = f"p{index:07d}"
                for organisation in holders_of(index, organisations):
                    for entry, version in templates[organisation.pk]:
                        text = entry.json.replace(SEED, key).replace(SEED_NHS, number)
                        digest = hashlib.sha256(text.encode()).hexdigest()
                        entry_pk = uuid.uuid4()
                        entries_copy.write_row(
                            (
                                entry_pk, organisation.pk, entry.resource_type,
                                entry.fhir_id.replace(SEED, key), pk, entry.subject_ref.replace(SEED, key),
                                entry.category, entry.third_party,
                                entry.clinical_status, False,
                                entry.display.replace("Bench Scale", f"Patient {index} Scale"),
                                entry.clinical_date, text, digest, 1, now, now,
                            )
                        )  # fmt: skip
                        version_rows.append(
                            (entry_pk, 1, text, digest, version.source, now, version.batch_id, pk,
                             version.subject_ref.replace(SEED, key))
                        )  # fmt: skip
                        entry_rows += 1
        with cursor.copy(
            "COPY phr_entryversion (entry_id, number, json, content_hash, source, recorded_at, batch_id,"
            " patient_id, subject_ref) FROM STDIN"
        ) as copy:
            for row in version_rows:
                copy.write_row(row)
        del version_rows
    raw.commit() if not raw.autocommit else None
    timings["records by COPY"] = time.perf_counter() - started

    # The trail: past months' partitions first, then the events, on the server.
    started = time.perf_counter()
    partitions.ensure_months(since=(now - timedelta(days=366)).date())
    people = make_people(organisations, patients, sample)
    events = size * events_per_patient
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE scale_patients (n int PRIMARY KEY, id uuid)")
        with (
            cursor.connection.cursor() as inner,
            inner.copy("COPY scale_patients (n, id) FROM STDIN") as copy,
        ):
            for index, (pk, _) in enumerate(patients):
                copy.write_row((index, pk))
        cursor.execute(
            "CREATE TEMP TABLE scale_readers (n int PRIMARY KEY, actor_id bigint, organisation_id bigint)"
        )
        for n, (actor_id, organisation_id) in enumerate(people["readers"]):
            cursor.execute("INSERT INTO scale_readers VALUES (%s, %s, %s)", [n, actor_id, organisation_id])
        readers = len(people["readers"])
        chunk = 1_000_000
        for first in range(0, events, chunk):
            last = min(events, first + chunk) - 1
            cursor.execute(
                "INSERT INTO audit_auditevent (seq, occurred_at, action, actor_id, actor_label,"
                " organisation_id,"
                " patient_id, entries, outcome, purpose, reason, detail, prev_hash, hash)"
                " SELECT nextval('audit_event_seq'), now() - ((g::bigint * 157) %% 31536000) * interval '1"
                " second', 'record.read',"
                " r.actor_id, 'Clinician', r.organisation_id, p.id, '', 'permit', 'direct_care', '', '{}',"
                " '',"
                " encode(sha256(g::text::bytea), 'hex')"
                " FROM generate_series(%s, %s) AS g"
                " JOIN scale_patients p ON p.n = g %% %s JOIN scale_readers r ON r.n = g %% %s",
                [first, last, size, readers],
            )
        cursor.execute("ANALYZE")
        cursor.execute("SELECT count(*) FROM audit_auditevent")
        (event_rows,) = cursor.fetchone()
    timings["audit events"] = time.perf_counter() - started
    return {
        "patients": Patient.objects.count(),
        "entries": entry_rows + RecordEntry.objects.filter(patient__nhs_number=SEED_NHS).count(),
        "audit_events": event_rows,
        "load_seconds": {name: round(seconds, 1) for name, seconds in timings.items()},
        **people,
    }


def make_people(organisations: list, patients: list, sample: int) -> dict:
    """Sampled patients' accounts and tokens, the trust's clinician and queue, an IG officer."""
    from allauth.mfa.totp.internal.auth import TOTP

    from accounts.models import Membership, PatientLink, User
    from accuracy.models import CorrectionRequest
    from api.oauth_server import cli_application, issue_access_token
    from phr.models import RecordEntry

    secret = "NBSWY3DPORVXA4TPMFZWI3LPNRXXEYLM"  # noqa: S105 - the tests' shared TOTP secret, bench only
    trust = organisations[3]
    clinician = User.objects.create_user("clinician@scale.example", role="clinician")
    Membership.objects.create(user=clinician, organisation=trust)
    TOTP.activate(clinician, secret)
    ig = User.objects.create_user("ig@scale.example", role="ig_officer")
    TOTP.activate(ig, secret)
    readers = []
    for organisation in organisations:
        reader = User.objects.create_user(
            f"reader.{organisation.ods_code.lower()}@scale.example", role="clinician"
        )
        Membership.objects.create(user=reader, organisation=organisation)
        readers.append((reader.pk, organisation.pk))
    application = cli_application()
    step = max(1, len(patients) // sample)
    sampled = []
    for pk, number in patients[::step][:sample]:
        user = User.objects.create_user(f"{number}@scale.example", role="patient")
        PatientLink.objects.create(user=user, patient_id=pk, method="demo")
        token, _ = issue_access_token(
            application=application, user=user, scope="patient/*.read", minutes=600, issued_by="bench"
        )
        sampled.append({"patient": str(pk), "nhs_number": number, "user": user.pk, "token": token})
    # One request per 100 patients in the trust's queue (50 at least: more than a page at
    # every size), each on an item the trust holds.
    today = date.today()
    requests = []
    wanted = max(50, len(patients) // 100)
    for pk, number in patients[:: max(1, len(patients) // wanted)][:wanted]:
        entry = RecordEntry.objects.filter(patient_id=pk, owner=trust, resource_type="Condition").first()
        user = User.objects.filter(patient_link__patient_id=pk).first()
        if user is None:
            user = User.objects.create_user(f"{number}.asks@scale.example", role="patient")
            PatientLink.objects.create(user=user, patient_id=pk, method="demo")
        requests.append(
            CorrectionRequest(
                patient_id=pk, owner=trust, entry=entry, entry_version=entry.version, requested_by=user,
                element_label="The whole item", proposed="Not diabetes: a one-off high reading",
                reason="My GP says I do not have diabetes", contact_preference="portal", jurisdiction="uk",
                received_on=today, first_due_on=today + timedelta(days=30), due_on=today + timedelta(days=30),
            )
        )  # fmt: skip
    CorrectionRequest.objects.bulk_create(requests, batch_size=500)
    return {
        "sampled": sampled,
        "clinician": clinician.pk,
        "ig": ig.pk,
        "readers": readers,
        "trust_ods": trust.ods_code,
        "corrections": len(requests),
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(built: dict, reads: int) -> dict:
    from django.test import Client

    from accounts.models import User

    sampled = built["sampled"]
    patient_clients = []
    for each in sampled:
        client = Client()
        client.force_login(User.objects.get(pk=each["user"]))
        client.get("/healthz")  # a client's first request loads the middleware, whitenoise's file scan too
        patient_clients.append(client)
    clinician = Client()
    clinician.force_login(User.objects.get(pk=built["clinician"]))
    ig = Client()
    ig.force_login(User.objects.get(pk=built["ig"]))
    anonymous = Client()  # one client: each new one loads the middleware (and scans static files) again
    month_ago = (date.today() - timedelta(days=30)).isoformat()
    today = date.today().isoformat()

    def bearer(n: int) -> dict:
        return {"HTTP_AUTHORIZATION": f"Bearer {sampled[n]['token']}"}

    def find_and_read(n: int):
        found = clinician.post("/clinician/", {"nhs_number": sampled[n]["nhs_number"]})
        if found.status_code != 302:
            return found
        return clinician.get(found["Location"])

    calls = {
        "record page": lambda n: patient_clients[n].get("/record/"),
        "$everything": lambda n: anonymous.get(
            f"/fhir/Patient/{sampled[n]['patient']}/$everything", **bearer(n)
        ),
        "search by code": lambda n: anonymous.get("/fhir/Observation", {"code": HEART_RATE}, **bearer(n)),
        "clinician find+read": find_and_read,
        "correction queue": lambda n: clinician.get("/clinician/corrections/"),
        "IG by patient": lambda n: ig.get("/ig/", {"patient": uuid.UUID(sampled[n]["patient"]).hex}),
        "IG by org, month": lambda n: ig.get(
            "/ig/", {"organisation": built["trust_ods"], "date_from": month_ago, "date_to": today}
        ),
        "access log": lambda n: patient_clients[n].get("/sharing/access-log/"),
    }
    figures = {}
    for name in READS:
        call = calls[name]
        for n in range(3):  # warm the connection, the plans and the caches
            call(n % len(sampled))
        times = []
        for n in range(reads):
            started = time.perf_counter()
            response = call(n % len(sampled))
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{name} answered {response.status_code}: {response.content[:300]!r}")
        figures[name] = {
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 0.95), 1),
            "min_ms": round(min(times), 1),
            "max_ms": round(max(times), 1),
        }
    return figures


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    built = build(args.child, args.events_per_patient, args.sample)
    figures = measure(built, args.reads)
    summary = {
        key: built[key] for key in ("patients", "entries", "audit_events", "load_seconds", "corrections")
    }
    print(json.dumps({**summary, "reads": figures}))


# --- The parent: one child per size, a table, the JSON ---------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--events-per-patient", type=int, default=100)
    parser.add_argument("--reads", type=int, default=40)
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    if not fresh_postgres(DATABASE):
        raise SystemExit(f"bench/scale.py needs PostgreSQL ({PG_ADMIN_URL} did not answer)")
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for size in sizes:
            fresh_postgres(DATABASE)
            env = child_env("postgresql", workdir, DATABASE)
            env["ALLOWED_HOSTS"] = "localhost,testserver"
            env["STATIC_ROOT"] = str(Path(workdir) / "static")
            print(f"==> {size:,} patients: building and reading", flush=True)
            started = time.perf_counter()
            command = [
                sys.executable, str(Path(__file__)), "--child", str(size),
                "--events-per-patient", str(args.events_per_patient),
                "--reads", str(args.reads), "--sample", str(args.sample),
            ]  # fmt: skip
            proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=REPO)
            if proc.returncode != 0:
                raise SystemExit(
                    f"the {size} patients run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
                )
            results[size] = json.loads(proc.stdout.strip().splitlines()[-1])
            results[size]["wall_seconds"] = round(time.perf_counter() - started, 1)
            print(
                f"    {results[size]['patients']:,} patients, {results[size]['entries']:,} entries,"
                f" {results[size]['audit_events']:,} audit events; load {results[size]['load_seconds']}",
                flush=True,
            )
    fresh_postgres(DATABASE)  # leave no 100,000-patient database behind
    smallest = sizes[0]
    print(f"\n{'read':<22}" + "".join(f"{f'{s:,} p50/p95 ms':>22}" for s in sizes) + f"{'p50 ratio':>12}")
    ratios = {}
    for name in READS:
        cells = "".join(
            f"{results[s]['reads'][name]['p50_ms']:>12.1f} / {results[s]['reads'][name]['p95_ms']:<7.1f}"
            for s in sizes
        )
        ratio = results[sizes[-1]]["reads"][name]["p50_ms"] / results[smallest]["reads"][name]["p50_ms"]
        ratios[name] = round(ratio, 2)
        print(f"{name:<22}{cells}{ratio:>11.2f}x")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "scale.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "everyday reads at 1,000 to 100,000 patients (PostgreSQL, in process)",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "reads_per_figure": args.reads,
                "sizes": {str(s): results[s] for s in sizes},
                f"p50_ratio_{sizes[-1]}_over_{smallest}": ratios,
                "goal": "p50 at 100,000 patients within 1.2x of 1,000 for every read",
            },
            indent=2,
        )
    )
    print(f"\nwrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
