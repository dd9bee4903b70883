"""`make run` has no Celery beat: runserver's serving process seals from a thread, and no
other command starts one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps

from audit.ledger import InProcessSealer

REPO = Path(__file__).resolve().parents[2]

SEALS_ON_ITS_OWN = """
import json, os, time
from pathlib import Path
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
import audit
from audit.ledger import InProcessSealer
from audit.models import Block, Unsealed
audit.record("record.read", actor_label="make run")
InProcessSealer().start()
# The witness is written once the block commits, by the same thread: wait for both, or
# the process may end between the two.
witness = Path(os.environ["AUDIT_WITNESS_PATH"])
deadline = time.monotonic() + 20
def sealed_and_witnessed():
    return Block.objects.exists() and witness.is_file() and witness.read_text()
while time.monotonic() < deadline and not sealed_and_witnessed():
    time.sleep(0.2)
print(json.dumps({"blocks": Block.objects.count(), "pending": Unsealed.objects.count()}))
"""


def test_the_thread_seals_what_is_written_without_beat(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "AUDIT_WITNESS_PATH": str(tmp_path / "audit-witness.log"),
        "AUDIT_SEAL_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
    }
    env.pop("CELERY_BROKER_URL", None)
    command = [sys.executable, "-c", SEALS_ON_ITS_OWN]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"blocks": 1, "pending": 0}
    assert len((tmp_path / "audit-witness.log").read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "run_main", "in_process", "starts"),
    [
        (["manage.py", "runserver", "127.0.0.1:8000"], "true", True, True),  # the reloader's child
        (["manage.py", "runserver", "--noreload"], None, True, True),
        (["manage.py", "runserver"], None, True, False),  # the reloader's parent serves nothing
        (["manage.py", "migrate"], "true", True, False),
        (["manage.py", "runserver"], "true", False, False),  # production: beat seals
    ],
)
def test_only_runservers_serving_process_starts_it(monkeypatch, settings, argv, run_main, in_process, starts):
    started = []
    monkeypatch.setattr(InProcessSealer, "start", lambda self: started.append(self))
    monkeypatch.setattr(sys, "argv", argv)
    if run_main is None:
        monkeypatch.delenv("RUN_MAIN", raising=False)
    else:
        monkeypatch.setenv("RUN_MAIN", run_main)
    settings.AUDIT_SEAL_IN_PROCESS = in_process

    apps.get_app_config("audit").ready()

    assert len(started) == (1 if starts else 0)
