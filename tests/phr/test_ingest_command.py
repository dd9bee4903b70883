"""The ingest command as a user runs it: a real process, its exit code, what it prints.

These tests run manage.py in a subprocess against a migrated scratch SQLite database,
so that exit codes and "never a traceback" are checked as a shell would see them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{folder / 'cli.sqlite3'}",
        "INGEST_MAX_RESOURCE_BYTES": str(10 * 1024 * 1024),
        "INGEST_SPOOL_DIR": str(folder / "spool"),
    }
    env.pop("CELERY_BROKER_URL", None)  # background work runs in-process here

    def run(*args, check_migrated=True, **more_env):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=env | more_env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    migrated = run("migrate", "--no-input", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    run.spool = folder / "spool"
    return run


def one_line_error(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    return lines[0]


def write(path: Path, value) -> Path:
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000026"}],
}


def test_it_prints_one_json_object_and_exits_0_when_all_is_accepted(cli, tmp_path):
    path = write(tmp_path / "p.json", PATIENT)
    proc = cli("ingest", str(path), "--org", "Q1A2", "--org-name", "Quay Practice", "--json")
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout)
    assert {k: outcome[k] for k in ("accepted", "created", "updated", "unchanged", "rejected")} == {
        "accepted": 1,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }
    assert outcome["issues"] == []


def test_it_exits_1_and_names_the_element_when_something_is_rejected(cli, tmp_path):
    path = write(
        tmp_path / "b.json",
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"resource": PATIENT},
                {"resource": {"resourceType": "Observation", "id": "o1", "status": 7}},
            ],
        },
    )
    proc = cli("ingest", str(path), "--org", "Q1A2", "--org-name", "Quay Practice", "--json")
    assert proc.returncode == 1
    outcome = json.loads(proc.stdout)
    assert outcome["rejected"] == 1
    assert outcome["accepted"] == 1
    expressions = [i["expression"][0] for i in outcome["issues"]]
    assert "Bundle.entry[1].resource.status" in expressions
    assert "Bundle.entry[1].resource.code" in expressions  # required and missing


def test_the_readable_summary_counts_by_type(cli, tmp_path):
    path = write(tmp_path / "p.json", PATIENT)
    proc = cli("ingest", str(path), "--org", "Q1A2")
    assert proc.returncode == 0
    assert "Patient" in proc.stdout
    assert "accepted 1" in proc.stdout


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        (
            "truncated.json",
            '{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {',
            "not valid JSON",
        ),
        ("binary.json", "\x00\x01\x02 not json at all", "not valid JSON"),
        ("list.json", "[1, 2, 3]", "expected a FHIR resource or Bundle"),
        ("lines.ndjson", json.dumps(PATIENT) + "\n42\n", "line 2"),
        (
            "deep.json",
            '{"resourceType": "Basic", "id": "d", "extension": '
            + '[{"url": "x", "extension": ' * 150
            + "[]"
            + "}]" * 150
            + "}",
            "nested more than",
        ),
    ],
)
def test_unusable_input_gets_one_line_and_exit_2(cli, tmp_path, name, content, says):
    path = write(tmp_path / name, content)
    proc = cli("ingest", str(path), "--org", "Q1A2", "--org-name", "Quay Practice")
    assert proc.returncode == 2
    assert says in one_line_error(proc)


def test_a_30_mb_resource_is_refused_in_one_line(cli, tmp_path):
    huge = {**PATIENT, "text": {"status": "generated", "div": "<div>" + "x" * (30 * 1024 * 1024) + "</div>"}}
    path = write(tmp_path / "huge.json", huge)
    proc = cli("ingest", str(path), "--org", "Q1A2", "--org-name", "Quay Practice")
    assert proc.returncode == 2
    assert "larger than" in one_line_error(proc)


def test_a_missing_path_and_an_unknown_organisation_get_one_line(cli, tmp_path):
    proc = cli("ingest", str(tmp_path / "nowhere.json"), "--org", "Q1A2")
    assert proc.returncode == 2
    assert "no such file" in one_line_error(proc)
    path = write(tmp_path / "p.json", PATIENT)
    proc = cli("ingest", str(path), "--org", "NEW99")
    assert proc.returncode == 2
    assert "--org-name" in one_line_error(proc)


def test_unusable_input_with_json_still_prints_one_object(cli, tmp_path):
    path = write(tmp_path / "t.json", "{")
    proc = cli("ingest", str(path), "--org", "Q1A2", "--org-name", "Quay Practice", "--json")
    assert proc.returncode == 2
    outcome = json.loads(proc.stdout)
    assert outcome["issues"][0]["severity"] == "fatal"


def test_background_runs_as_a_celery_task_with_the_same_outcome(cli, tmp_path):
    path = write(tmp_path / "p.json", {**PATIENT, "id": "bg1"})
    proc = cli("ingest", str(path), "--org", "Q1A2", "--org-name", "Quay Practice", "--json", "--background")
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout)
    assert (outcome["accepted"], outcome["created"]) == (1, 1)
    assert not [p for p in cli.spool.rglob("*") if p.is_file()]  # the worker cleared its copy


def test_no_wait_prints_the_batch_and_follow_reports_its_outcome(cli, tmp_path):
    path = write(tmp_path / "p.json", {**PATIENT, "id": "bg2"})
    proc = cli("ingest", str(path), "--org", "Q1A2", "--org-name", "Quay Practice", "--no-wait")
    assert proc.returncode == 0, proc.stderr
    batch = proc.stdout.split()[2].rstrip(":")
    assert f"Follow it with: python manage.py ingest --follow {batch}" in proc.stdout

    followed = cli("ingest", "--follow", batch, "--json")
    assert followed.returncode == 0, followed.stderr
    outcome = json.loads(followed.stdout)
    assert (outcome["batch"], outcome["accepted"]) == (batch, 1)


def test_a_task_queue_that_cannot_be_reached_gets_one_line_and_exit_4(cli, tmp_path):
    path = write(tmp_path / "p.json", {**PATIENT, "id": "bg3"})
    proc = cli(
        "ingest",
        str(path),
        "--org",
        "Q1A2",
        "--org-name",
        "Quay Practice",
        "--background",
        CELERY_BROKER_URL="redis://127.0.0.1:1/0",  # nothing listens on port 1
    )
    assert proc.returncode == 4
    assert "the task queue (CELERY_BROKER_URL) could not be reached" in one_line_error(proc)
    assert not [p for p in cli.spool.rglob("*") if p.is_file()]


def test_ingest_without_paths_or_organisation_is_refused_with_usage(cli):
    proc = cli("ingest", "--org", "Q1A2")
    assert proc.returncode == 2
    assert "the following arguments are required: PATH" in proc.stderr
    assert "usage:" in proc.stderr


@pytest.mark.parametrize("wait", ["-1", "nan", "inf"])
def test_a_wait_that_is_not_a_number_of_seconds_is_refused_with_usage(cli, wait):
    proc = cli("ingest", "x.json", "--org", "Q1A2", "--wait", wait)
    assert proc.returncode == 2
    assert "--wait must be a number of seconds, 0 or more" in proc.stderr
