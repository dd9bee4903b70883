"""Walks every URL pattern in config.urls' tree, with GET, POST, PUT and DELETE, as every
kind of caller (tests/walk_personas.py), and fails on:

- a view that reads clinical content (an entry's JSON or display text, or a version's
  JSON) anywhere but through the policy (consent.policy.inside_policy());
- any server error;
- a body that shows a caller clinical content they may not see: staff without a second
  factor see none, IG officers none, a token limited to Patient.read no Condition;
- a patient URL that answers a forbidden patient differently from a missing one.

Every pattern is walked, ``re_path`` regexes included: ``fill`` gives each named group a
value, and each URL must resolve back to the pattern it was made from. The number of
patterns is asserted exactly, so that a new route is added to the walk on purpose.
Requests go out as production sees them: CSRF checks on, with the CSRF cookie and header
a browser's page would send (otherwise the check alone would answer every POST), and a
bearer token, no cookie, for apps. The Celery tasks that read records run here too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.db import connection, transaction
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from django.utils.regex_helper import normalize
from walk_personas import (
    A_TEXT,
    B_TEXT,
    PERSONAS,
    SHOWN,
    STAFF_WITHOUT_2FA,
    Subject,
    World,
    build_world,
    client_for,
    csrf_header,
)

from accounts.models import Notification
from accuracy.models import CorrectionRequest
from consent.policy import inside_policy
from phr.models import IngestBatch

# An entry's JSON or display text, or a version's JSON, under its table's name or a
# subquery's alias (U0, T3, ...): no other table has a column of these names.
CLINICAL_COLUMNS = re.compile(r'(?:"\w+"|\b[A-Z]\d+)\."(json|display)"')

# Every pattern in config.urls' tree: the portal's own, and the admin's when it is on (it
# is in the tests: ADMIN_ENABLED follows DEBUG). A new route changes these numbers on
# purpose: add it to this walk (a value in BY_GROUP or SPECIFIC if it takes one) and to
# the model-based access test.
PORTAL_PATTERN_COUNT = 146  # +1: clinician:finding_correct
ADMIN_PATTERN_COUNT = 82

METHODS = ("GET", "POST", "PUT", "DELETE")
# Walked last: after them the session is gone.
SIGN_OUT = {"account_logout", "admin:logout"}


# --- The patterns and the URLs made from them --------------------------------------------


def url_patterns(resolver: URLResolver | None = None, chain: tuple = ()):
    """(chain, key) for every pattern: the resolvers down to it and the pattern itself,
    and its namespaced name (or its route, for a pattern without a name)."""
    resolver = resolver or get_resolver()
    for item in resolver.url_patterns:
        if isinstance(item, URLResolver):
            yield from url_patterns(item, (*chain, item))
        elif isinstance(item, URLPattern):
            levels = (*chain, item)
            namespaces = [r.namespace for r in chain if r.namespace]
            yield levels, ":".join([*namespaces, item.name or f"<{route_of(levels)}>"])


def route_of(levels) -> str:
    """The route as Django's ResolverMatch.route spells it."""
    route = ""
    for level in levels:
        part = str(level.pattern)
        route = part if not route else route + part.removeprefix("^")
    return route


Value = Callable[[World, Subject], str]

# A value for each named group, by its name; the subject is the patient whose record the
# URL names (or a missing one).
BY_GROUP: dict[str, Value] = {
    "patient_id": lambda w, s: s.patient,
    "patient_uuid": lambda w, s: s.patient,
    "entry_id": lambda w, s: s.entry,
    "request_id": lambda w, s: s.request,
    "task_id": lambda w, s: s.request,
    "resource_type": lambda w, s: "Condition",
    "resource_id": lambda w, s: s.fhir_id,
    "version": lambda w, s: "1",
    "break_glass_id": lambda w, s: w.values["break_glass_id"],
    "organisation_id": lambda w, s: w.values["organisation_id"],
    "pk": lambda w, s: w.values["pk"],  # patient A's notification
    "link_id": lambda w, s: w.values["link_id"],
    "token": lambda w, s: w.values["token"],
    "kind": lambda w, s: "problems",
    "step": lambda w, s: "start_review",
    "decision": lambda w, s: "release",
    "rest": lambda w, s: "nope",  # lower case: no resource type, so only the catch-all
    "object_id": lambda w, s: "1",
    "content_type_id": lambda w, s: "1",
    "app_label": lambda w, s: "accounts",
    "url": lambda w, s: "nope/",
    "name": lambda w, s: "icon-search.svg",
    "key": lambda w, s: "walk-key",
    "uidb36": lambda w, s: "1",
    # A proxy grant that no grant has (pks start at 1): every caller is refused.
    "grant_id": lambda w, s: "0",
    # A finding that no check made: every caller is refused.
    "finding_id": lambda w, s: "00000000-0000-4000-8000-000000000000",
}

# Patterns whose groups need a value of their own.
SPECIFIC: dict[str, dict[str, Value]] = {
    "fhir:consent-read": {"resource_id": lambda w, s: s.patient},
    "fhir:audit-read": {"resource_id": lambda w, s: w.values["audit_event"]},
    "fhir:provenance-read": {"resource_id": lambda w, s: w.values["provenance"]},
    "fhir:organization-read": {"resource_id": lambda w, s: "A10001"},
    "fhir:practitioner-read": {"resource_id": lambda w, s: w.values["practitioner"]},
    "fhir:communication-read": {"resource_id": lambda w, s: w.values["communication"]},
    "fhir:relatedperson-read": {"resource_id": lambda w, s: w.values["proxy_grant"]},
    "mfa_remove_webauthn": {"pk": lambda w, s: "1"},
    "mfa_edit_webauthn": {"pk": lambda w, s: "1"},
}


def fill(levels, key: str, world: World, subject: Subject) -> dict[str, str]:
    """A value for every named group of the pattern, path converters and re_path groups
    alike."""
    values = {}
    for level in levels:
        regex = level.pattern.regex
        assert regex.groups == len(regex.groupindex), f"{key}: unnamed groups cannot be filled by name"
        for group in regex.groupindex:
            value = SPECIFIC.get(key, {}).get(group) or BY_GROUP.get(group)
            assert value is not None, f"{key}: no value for <{group}>: add one to BY_GROUP or SPECIFIC"
            values[group] = value(world, subject)
    return values


def url_of(levels, values: dict[str, str]) -> str:
    """The path the pattern (and the resolvers above it) matches with these values."""
    parts = []
    for level in levels:
        shapes = normalize(level.pattern.regex.pattern)
        fmt, params = next((f, p) for f, p in shapes if set(p) <= set(values))
        parts.append(fmt % {p: values[p] for p in params})
    return "/" + "".join(parts)


def walk(world: World, subject: Subject) -> list[tuple[str, str]]:
    """(key, url) for every pattern, the routes that end a session last."""
    found = [(key, url_of(levels, fill(levels, key, world, subject))) for levels, key in url_patterns()]
    return sorted(found, key=lambda item: item[0] in SIGN_OUT)


def subject_dependent(world: World) -> list[tuple[str, str, str]]:
    """(key, url for patient A's record, url for patient B's) for the patterns whose URL
    names a patient's record: its patient, an item, a correction request."""
    b = dict(walk(world, world.b))
    return [(key, url, b[key]) for key, url in walk(world, world.a) if url != b[key]]


@pytest.fixture(scope="module")
def shared_world(django_db_setup, django_db_blocker):
    """One world for the module, built once in a transaction that each test's own (the
    db fixture's) nests in and rolls back to; rolled back itself at the end."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


@pytest.fixture
def world(shared_world, db) -> World:
    return shared_world


# --- Watching the database and the answers -----------------------------------------------


class Reads:
    """Every SQL statement that reads a clinical column outside the policy, with the
    request that made it."""

    def __init__(self):
        self.seen: list[str] = []
        self.during = "setup"

    def __call__(self, execute, sql, params, many, context):
        if CLINICAL_COLUMNS.search(sql) and not inside_policy():
            self.seen.append(f"{self.during}: {sql[:200]}")
        return execute(sql, params, many, context)

    @contextmanager
    def request(self, label: str):
        self.during = label
        try:
            yield
        finally:
            self.during = "between requests"


@pytest.fixture
def clinical_reads():
    reads = Reads()
    with connection.execute_wrapper(reads):
        yield reads


def send(client, method: str, url: str):
    """One request with an empty body (and, for a session, the CSRF header)."""
    if method == "GET":
        return client.get(url)
    return client.generic(method, url, b"", "application/x-www-form-urlencoded", **csrf_header(client))


def signed_in_as(client) -> str | None:
    """The user id the client's session holds now."""
    return client.session.get(SESSION_KEY)


def text_of(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("utf-8", "replace")


def listed(title: str, items: list[str], why: str) -> str:
    shown = "\n  ".join(items[:25]) + (f"\n  ... and {len(items) - 25} more" if len(items) > 25 else "")
    return f"{title} ({len(items)}): {why}\n  {shown}"


# --- The tests ----------------------------------------------------------------------------


def test_every_pattern_is_walked_and_its_url_resolves_back_to_it(world):
    patterns = list(url_patterns())
    urls = walk(world, world.a)
    admin = [key for key, _url in urls if key.startswith("admin:")]
    expected = PORTAL_PATTERN_COUNT + (ADMIN_PATTERN_COUNT if settings.ADMIN_ENABLED else 0)
    assert len(urls) == len(patterns) == expected, (
        f"config.urls has {len(patterns)} patterns ({len(admin)} of them the admin's) and the walk expects"
        f" {expected}: add the new route to this walk (BY_GROUP or SPECIFIC) and to the model-based access"
        " test, then update PORTAL_PATTERN_COUNT (or ADMIN_PATTERN_COUNT)"
    )
    assert len(admin) == (ADMIN_PATTERN_COUNT if settings.ADMIN_ENABLED else 0)
    routes = {key: route_of(levels) for levels, key in patterns}
    wrong = []
    for key, url in urls:
        match = resolve(url)
        if match.route != routes[key]:
            wrong.append(f"{key}: {url} resolves to {match.route!r}, not {routes[key]!r}")
    assert wrong == [], "URLs that walk another pattern than intended: fix fill()\n" + "\n".join(wrong)
    # The ten FHIR re_path routes and the catch-all are among them.
    fhir = [url for key, url in urls if key.startswith("fhir:")]
    assert "/fhir/Condition/c1/_history/1" in fhir
    assert "/fhir/nope" in fhir


@pytest.mark.parametrize("persona", list(PERSONAS))
def test_every_route_and_method_as(world, persona, clinical_reads):
    client = client_for(world, persona)
    user = world.users.get(persona)
    errors, shown, reached, signed_out, walked = [], [], [], [], set()
    urls = walk(world, world.a)
    for method in METHODS:
        for key, url in urls:
            if key in SIGN_OUT:
                continue
            walked.add(key)
            label = f"{method} {url}"
            with clinical_reads.request(label):
                try:
                    response = send(client, method, url)
                except Exception as exc:
                    errors.append(f"{label}: {exc!r}")
                    continue
                body = text_of(response)
            if response.status_code >= 500:
                errors.append(f"{label}: {response.status_code}")
            shown += [f"{label}: {response.status_code} shows {t!r}" for t in PERSONAS[persona] if t in body]
            if persona in SHOWN and SHOWN[persona] in body:
                reached.append(label)
            # A session that changed (a new key, or flushed) may no longer be the persona's.
            changed = settings.SESSION_COOKIE_NAME in response.cookies
            if user is not None and changed and signed_in_as(client) != str(user.pk):
                signed_out.append(label)
    if user is not None and signed_in_as(client) != str(user.pk):
        signed_out.append("at the end of the walk")
    for method in METHODS:  # signing out last, or the walk would go on as nobody
        for key, url in urls:
            if key in SIGN_OUT:
                walked.add(key)
                with clinical_reads.request(f"{method} {url}"):
                    response = send(client, method, url)
                if response.status_code >= 500:
                    errors.append(f"{method} {url}: {response.status_code}")

    assert len(walked) == len(urls) == len(list(url_patterns())), "every pattern is walked"
    failures = []
    if errors:
        failures.append(listed("Server errors", errors, "no route may answer 5xx"))
    if clinical_reads.seen:
        failures.append(
            listed("Clinical reads outside the policy", clinical_reads.seen, "read through consent.policy")
        )
    if shown and persona in STAFF_WITHOUT_2FA:
        failures.append(
            listed(
                "Staff WITHOUT a second factor were shown clinical content",
                shown,
                "every channel (pages, JSON API, FHIR) must refuse staff until they set up two-factor"
                " authentication, as accounts.access.staff_required does for the pages",
            )
        )
    elif shown:
        failures.append(listed(f"Clinical content shown to {persona}", shown, "the policy refuses it"))
    if signed_out:
        failures.append(
            listed(f"Requests that no longer ran as {persona}", signed_out, "the walk lost its session")
        )
    if persona in SHOWN and not reached:
        failures.append(f"{persona} was shown {SHOWN[persona]!r} nowhere: the walk did not reach the record")
    assert not failures, f"Walking every route as {persona}:\n" + "\n".join(failures)


# Searches that name a patient in their query rather than their path.
PATIENT_QUERIES = [
    "/fhir/Condition?patient={patient}",
    "/fhir/Condition?_summary=count&patient={patient}",
    "/fhir/Patient?_id={patient}",
    "/fhir/Task?patient={patient}",
    "/fhir/Consent?patient={patient}",
    "/fhir/AuditEvent?patient={patient}",
    "/fhir/RelatedPerson?patient={patient}",
]
# What an IG officer may read of any patient: consent and audit metadata, never content.
IG_READS_ANY = ("ig:", "fhir:consent-read", "/fhir/Consent?", "/fhir/AuditEvent?")
# The patterns whose path names a patient's record (a patient, an item, a request).
SUBJECT_PATTERN_COUNT = 26  # +1: clinician:finding_correct (a finding and the entry it is about)


def shape_of(response, subject: Subject) -> tuple:
    """What a caller can tell from an answer, the record's own ids taken out."""
    location = response.get("Location", "")
    for value in (subject.patient, subject.entry, subject.request, subject.fhir_id):
        location = location.replace(value, "<id>")
    shape = (response.status_code, response.get("Content-Type"), location)
    if "json" in (response.get("Content-Type") or ""):
        body = response.json()
        if isinstance(body, dict):
            shape += (body.get("resourceType"), body.get("total"), len(body.get("entry") or []))
    return shape


def patient_urls(world: World, subject: Subject, keys: set[str]) -> dict[str, str]:
    """Every URL that names this patient's record, by pattern key (or query)."""
    urls = {key: url for key, url in walk(world, subject) if key in keys}
    urls.update({query: query.format(patient=subject.patient) for query in PATIENT_QUERIES})
    return urls


@pytest.mark.parametrize("persona", list(PERSONAS))
def test_patient_urls_answer_a_forbidden_patient_as_a_missing_one(world, persona):
    keys = {key for key, _a, _b in subject_dependent(world)}
    assert len(keys) == SUBJECT_PATTERN_COUNT, (
        f"{len(keys)} patterns name a patient's record, not {SUBJECT_PATTERN_COUNT}: check that"
        " fill() gives the new one the record's ids, then update SUBJECT_PATTERN_COUNT"
    )
    client = client_for(world, persona)
    # Patient B's record is refused to everyone here but patient B; A's is refused to B.
    forbidden, missing = (world.a if persona == "patient_b" else world.b), Subject.missing()
    refused, absent = patient_urls(world, forbidden, keys), patient_urls(world, missing, keys)
    differ = []
    for key, url in refused.items():
        if persona == "ig" and key.startswith(IG_READS_ANY):
            continue
        for method in METHODS:
            shapes = (
                shape_of(send(client, method, url), forbidden),
                shape_of(send(client, method, absent[key]), missing),
            )
            if shapes[0] != shapes[1]:
                differ.append(f"{method} {key}: forbidden {shapes[0]} but missing {shapes[1]}")
    assert differ == [], (
        f"As {persona}, a forbidden patient's URL answers unlike a missing one's:\n" + "\n".join(differ)
    )


# Searches whose filters match the stored text (code=, category=): a count or a page of
# them reads clinical content, so the policy must run it, whoever asks.
FHIR_QUERIES = [
    "/fhir/Condition?_summary=count&code=38341003",
    "/fhir/Condition?_summary=count&category=problem-list-item&code=38341003",
    "/fhir/Condition?code=38341003&_elements=code",
    "/fhir/Condition?_summary=count&code=38341003&patient={pa}",
    "/fhir/Condition?category=problem-list-item&patient={pa}",
]


@pytest.mark.parametrize("persona", list(PERSONAS))
def test_fhir_searches_by_code_and_category_read_only_through_the_policy(world, persona, clinical_reads):
    client = client_for(world, persona)
    answered = {}
    for query in FHIR_QUERIES:
        url = query.format(pa=world.pa.pk)
        with clinical_reads.request(url):
            response = client.get(url)
        assert response.status_code < 500, f"{url} answered {response.status_code} for {persona}"
        answered[url] = response
    assert clinical_reads.seen == [], f"clinical content read outside the policy as {persona}"
    if persona in ("patient_a", "clin_owner"):  # they see the Condition: the walk reached the count
        counted = answered[f"/fhir/Condition?_summary=count&code=38341003&patient={world.pa.pk}"]
        assert counted.status_code == 200
        assert counted.json()["total"] == 1


# --- Background tasks -------------------------------------------------------------------------


def project_tasks() -> set[str]:
    """The Celery tasks the project defines (every @shared_task in an app's tasks.py)."""
    from config.celery import app

    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def run_deadline_sweep(world: World, tmp_path: Path) -> None:
    from accuracy.tasks import deadline_sweep

    due = min(CorrectionRequest.objects.open().values_list("due_on", flat=True))
    for day in (due - timedelta(days=1), due + timedelta(days=1)):  # a reminder, an escalation
        deadline_sweep.delay(day.isoformat()).get()


def run_ingest_batch(world: World, tmp_path: Path) -> None:
    from phr import spool
    from phr.tasks import ingest_batch

    path = tmp_path / "update.json"
    changed = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/pa"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}], "text": A_TEXT},
        "onsetDateTime": "2019-04-01",
    }
    path.write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": changed}]})
    )
    batch = IngestBatch.objects.create(organisation=world.gp)
    with override_settings(INGEST_SPOOL_DIR=tmp_path / "spool"):
        queued = [str(p) for p in spool.receive(batch.pk, [path])]  # as the ingest command does
        outcome = ingest_batch.delay(str(batch.pk), queued).get()
        assert outcome["rejected"] == 0, outcome
        assert outcome["updated"] == 1, outcome
        # Delivered again, it does nothing.
        ingest_batch.delay(str(batch.pk), queued).get()


def run_email_notification(world: World, tmp_path: Path) -> None:
    from accounts.tasks import email_notification

    for pk in Notification.objects.filter(emailed_at__isnull=True).values_list("pk", flat=True):
        assert email_notification.delay(pk).get() is True
    assert mail.outbox


def run_outbox_sweep(world: World, tmp_path: Path) -> None:
    from accounts.tasks import outbox_sweep

    owed = Notification.objects.filter(email_state=Notification.Email.PENDING)
    owed.update(created_at=timezone.now() - timedelta(hours=1))  # their tasks were lost
    count = owed.count()
    assert count
    assert outbox_sweep.delay().get() == {"sent": count, "not_sent": 0}
    assert len(mail.outbox) == count


def run_daily_deadline_sweep(world: World, tmp_path: Path) -> None:
    from accuracy.tasks import daily_deadline_sweep

    with override_settings(DEADLINE_SWEEP_HOUR=0):
        assert daily_deadline_sweep.delay().get() is not None
        assert daily_deadline_sweep.delay().get() is None  # once a day


def run_access_alert_scan(world: World, tmp_path: Path) -> None:
    from accounts.models import AccessAlertPreference
    from consent.policy import actor_for, open_record
    from consent.tasks import access_alert_scan

    AccessAlertPreference.objects.update_or_create(
        patient=world.pa,
        defaults={"mode": "each_time", "changed_at": timezone.now() - timedelta(days=1)},
    )
    open_record(actor_for(world.users["clin_owner"]), world.pa.pk).read()
    assert access_alert_scan.delay().get()["alerts"] >= 1
    assert access_alert_scan.delay().get()["alerts"] == 0  # each look once
    for note in Notification.objects.filter(kind=Notification.Kind.ACCESS):
        assert A_TEXT not in note.body


def run_audit_seal(world: World, tmp_path: Path) -> None:
    from audit.models import Block, Unsealed
    from audit.tasks import seal
    from consent.policy import actor_for, open_record

    open_record(actor_for(world.users["clin_owner"]), world.pa.pk).read()
    assert seal.delay().get() >= 1
    assert seal.delay().get() == 0  # nothing left to seal
    assert not Unsealed.objects.exists()
    assert Block.objects.exists()


def run_daily_access_digest(world: World, tmp_path: Path) -> None:
    from accounts.models import AccessAlertPreference, AccessDigestSent
    from consent.policy import actor_for, open_record
    from consent.tasks import daily_access_digest

    AccessAlertPreference.objects.update_or_create(patient=world.pa, defaults={"mode": "daily"})
    open_record(actor_for(world.users["clin_owner"]), world.pa.pk).read()
    with override_settings(ACCESS_DIGEST_HOUR=0), time_machine.travel(timezone.now() + timedelta(days=1)):
        assert daily_access_digest.delay().get() == {"digests": 1}
        assert daily_access_digest.delay().get() is None  # once a day
    assert AccessDigestSent.objects.filter(patient=world.pa).count() == 1
    for note in Notification.objects.filter(kind=Notification.Kind.ACCESS):
        assert A_TEXT not in note.body


def run_check_pending(world: World, tmp_path: Path) -> None:
    from accuracy.models import PendingCheck
    from accuracy.tasks import check_pending

    PendingCheck.objects.get_or_create(patient=world.pa, defaults={"since": timezone.now()})
    assert check_pending()["patients"] >= 1


def run_proxy_age_review(world: World, tmp_path: Path) -> None:
    from accounts.models import ProxyAccess
    from consent.tasks import proxy_age_review

    world.pa.birth_date = timezone.localdate() - timedelta(days=11 * 366)  # 11 years old, or just over
    world.pa.save(update_fields=["birth_date"])
    ProxyAccess.objects.create(
        patient=world.pa,
        proxy=world.users["patient_b"],
        relationship=ProxyAccess.Relationship.CHILD,
        reason="Parent of a child under 11",
        ends_at=timezone.now() + timedelta(days=30),
        granted_by=world.users["clin_owner"],
        granted_by_organisation=world.gp,
    )
    assert proxy_age_review.delay().get() == 1
    assert proxy_age_review.delay().get() == 0  # ended once


def run_add_partitions(world: World, tmp_path: Path) -> None:
    from django.db import connection

    from audit import partitions
    from audit.tasks import add_partitions

    added = add_partitions.delay().get()
    assert add_partitions.delay().get() == []  # the months ahead are there now
    if connection.vendor == "postgresql":
        assert partitions.months_ready() == partitions.MONTHS_AHEAD
    else:
        assert added == []  # SQLite keeps one plain table


TASK_RUNS = {
    "audit.tasks.add_partitions": run_add_partitions,
    "accuracy.tasks.check_pending": run_check_pending,
    "consent.tasks.proxy_age_review": run_proxy_age_review,
    "consent.tasks.access_alert_scan": run_access_alert_scan,
    "audit.tasks.seal": run_audit_seal,
    "consent.tasks.daily_access_digest": run_daily_access_digest,
    "accuracy.tasks.deadline_sweep": run_deadline_sweep,
    "accuracy.tasks.daily_deadline_sweep": run_daily_deadline_sweep,
    "accounts.tasks.outbox_sweep": run_outbox_sweep,
    "phr.tasks.ingest_batch": run_ingest_batch,
    "accounts.tasks.email_notification": run_email_notification,
}


def test_every_task_is_run_by_the_walk():
    assert project_tasks() == set(TASK_RUNS), "a new Celery task: add a run of it to TASK_RUNS"


@pytest.mark.parametrize("task", sorted(TASK_RUNS))
def test_tasks_read_records_only_through_the_policy(world, task, clinical_reads, tmp_path):
    with clinical_reads.request(task):
        TASK_RUNS[task](world, tmp_path)
    assert clinical_reads.seen == [], f"{task} read clinical content outside the policy"
    for message in mail.outbox:
        sent = f"{message.subject}\n{message.body}"
        assert A_TEXT not in sent, f"{task} emailed clinical content"
        assert B_TEXT not in sent, f"{task} emailed clinical content"
