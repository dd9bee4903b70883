"""A real streaming replica: a primary and a hot standby made for this test from the
machine's PostgreSQL binaries (initdb, pg_basebackup), on ports of their own. With the
standby's replay paused, what the portal wrote a moment ago is on the primary only, so
the test can see where each read went: the IG search and figures read the replica (and
do not see it yet), while the consent policy reads the primary (a withdrawn consent is
in force on the very next request)."""

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _binaries() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_basebackup").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """Two servers in a temporary folder, run as the postgres user when this is root."""

    def __init__(self, binaries: Path) -> None:
        self.bin = binaries
        self.root = Path(tempfile.mkdtemp(prefix="portal-replica-"))
        self.primary, self.standby = self.root / "primary", self.root / "standby"
        self.primary_port, self.standby_port = _free_port(), _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True, timeout=180
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")

    def settings_for(self, data: Path, port: int) -> None:
        lines = [
            f"port = {port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.root}'",
            "wal_level = replica",
            "max_wal_senders = 4",
            "hot_standby = on",
            "fsync = off",
            "full_page_writes = off",
        ]
        self.append_as_owner(data / "postgresql.conf", "\n".join(lines) + "\n")

    def append_as_owner(self, path: Path, text: str) -> None:
        with path.open("a") as handle:
            handle.write(text)

    def start(self) -> None:
        self.run("initdb", "-D", str(self.primary), "-U", "postgres", "-A", "trust", "--no-sync")
        self.settings_for(self.primary, self.primary_port)
        self.append_as_owner(self.primary / "pg_hba.conf", "host replication all 127.0.0.1/32 trust\n")
        self.run("pg_ctl", "-D", str(self.primary), "-l", str(self.root / "primary.log"), "-w", "start")
        self.run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres"),
            *("-D", str(self.standby), "-R", "-X", "stream"),
        )
        self.append_as_owner(self.standby / "postgresql.conf", f"port = {self.standby_port}\n")
        self.run("pg_ctl", "-D", str(self.standby), "-l", str(self.root / "standby.log"), "-w", "start")
        import psycopg

        with psycopg.connect(self.url(self.primary_port, "postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE portal")

    def url(self, port: int, database: str = "portal") -> str:
        return f"postgres://postgres@127.0.0.1:{port}/{database}"

    def stop(self) -> None:
        for data in (self.standby, self.primary):
            if (data / "postmaster.pid").exists():
                subprocess.run(
                    [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                    capture_output=True,
                    timeout=60,
                )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(integration_services):
    binaries = _binaries()
    if binaries is None:
        pytest.fail("the replica test needs the PostgreSQL server binaries (initdb, pg_basebackup)")
    made = Cluster(binaries)
    try:
        made.start()
        yield made
    finally:
        made.stop()


SCENARIO = r"""
import json, time
import django
django.setup()
from django.core.management import call_command
from django.db import connections
call_command("migrate", verbosity=0)
call_command("seed_demo", verbosity=0)

from accounts.models import User
from audit import record
from audit.models import AuditEvent
from consent.ig_queries import AuditFilters, denied_reads, search_events
from consent.policy import actor_for, open_record
from consent.models import ConsentChoice
from consent.services import change_consent
from phr.replica import lag_tolerant_reads

def caught_up():
    with connections["default"].cursor() as c:
        c.execute("SELECT pg_current_wal_insert_lsn()")
        lsn = c.fetchone()[0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with connections["replica"].cursor() as c:
            c.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])
            if c.fetchone()[0]:
                return True
        time.sleep(0.1)
    return False

def replay(paused):
    with connections["replica"].cursor() as c:
        c.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")

out = {}
patient_user = User.objects.get(email="patient@example.com")
patient = patient_user.patient_link.patient
clinician = User.objects.get(email="hospital@example.com")
out["caught_up_before"] = caught_up()
seen_before = open_record(actor_for(clinician), patient.pk).count()
out["clinician_sees_others_items_before"] = seen_before > 0

replay(paused=True)
marker = record("test.replica", actor_label="written while the standby is paused")
change_consent(actor=actor_for(patient_user), patient_id=patient.pk, scope="network", decision="deny")

# The policy reads the primary, even when asked from inside a lag-tolerant block.
with lag_tolerant_reads():
    out["clinician_sees_fewer_at_once"] = open_record(actor_for(clinician), patient.pk).count() < seen_before
    out["choice_read_from_the_primary"] = ConsentChoice.objects.filter(patient=patient).latest("pk").decision
    out["replica_search_sees_it"] = search_events(AuditFilters()).filter(pk=marker.pk).exists()
    out["search_read_from"] = search_events(AuditFilters()).db
out["primary_sees_it"] = AuditEvent.objects.filter(pk=marker.pk).exists()
out["signals_ran_on_replica"] = isinstance(denied_reads(), list)

replay(paused=False)
out["caught_up_after"] = caught_up()
out["replica_search_sees_it_later"] = search_events(AuditFilters()).filter(pk=marker.pk).exists()
print(json.dumps(out))
"""


def test_lag_tolerant_reads_go_to_the_replica_and_the_policy_to_the_primary(cluster, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": cluster.url(cluster.primary_port),
        "DATABASE_REPLICA_URL": cluster.url(cluster.standby_port),
        "AUDIT_WITNESS_PATH": str(tmp_path / "audit-witness.log"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "DEMO_PASSWORD": "demo-portal-2026",
    }
    env.pop("CELERY_BROKER_URL", None)  # tasks in-process: this test is about the database
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {
        "caught_up_before": True,
        "clinician_sees_others_items_before": True,
        "clinician_sees_fewer_at_once": True,  # the withdrawal is in force at once
        "choice_read_from_the_primary": "deny",
        "replica_search_sees_it": False,  # the IG search read the paused standby
        "search_read_from": "replica",
        "primary_sees_it": True,
        "signals_ran_on_replica": True,
        "caught_up_after": True,
        "replica_search_sees_it_later": True,
    }
