"""`make run`'s SQLite file under concurrent readers-then-writers and its in-process sealer:
every read writes its audit event, so a transaction that read and then appends must not
be refused because another writer (or the sealer) committed in between (SQLite refuses
to upgrade a stale snapshot at once, whatever the busy timeout). The settings begin
SQLite transactions IMMEDIATE."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

WRITERS = """
import json, sys, threading
import django
django.setup()
from django.core.management import call_command
from django.db import connection, transaction
call_command("migrate", verbosity=0)
import audit
from audit.ledger import seal_all, verify
from audit.models import Block
errors = []
writing = threading.Event()
writing.set()
def sealer():
    try:
        while writing.is_set():
            seal_all()
    except Exception as error:
        errors.append("sealer " + type(error).__name__ + ": " + str(error))
    finally:
        connection.close()
def work(n):
    try:
        for i in range(25):
            with transaction.atomic():
                with connection.cursor() as cursor:  # a read first, as RecordAccess.read_one does
                    cursor.execute("SELECT count(*) FROM audit_block")
                    cursor.fetchone()
                audit.record("record.read", entries=[f"{n:016x}{i:016x}:1"])
    except Exception as error:
        errors.append(type(error).__name__ + ": " + str(error))
    finally:
        connection.close()
threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
sealing = threading.Thread(target=sealer)
sealing.start()
for t in threads:
    t.start()
for t in threads:
    t.join()
writing.clear()
sealing.join()
seal_all()
report = verify()
print(json.dumps({
    "errors": errors, "checked": report.events, "pending": report.pending,
    "problem": str(report.problem) if report.problem else None, "blocks": Block.objects.count(),
}))
"""


def test_concurrent_read_then_audit_transactions_all_commit_on_a_sqlite_file(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "AUDIT_WITNESS_PATH": str(tmp_path / "audit-witness.log"),  # verify compares every block
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
    }
    env.pop("CELERY_BROKER_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", WRITERS], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    blocks = result.pop("blocks")
    assert result == {"errors": [], "checked": 100, "pending": 0, "problem": None}
    assert len((tmp_path / "audit-witness.log").read_text().splitlines()) == blocks >= 1
