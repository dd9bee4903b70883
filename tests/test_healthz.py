"""/healthz names each part's state (web.views.HEALTH_PARTS) and answers 503 only when
the database does not answer: with the broker down, pages still read and actions are
still saved, so a load balancer must keep sending people to the web."""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from web.views import HEALTH_PARTS

REPO = Path(__file__).resolve().parent.parent
REDIS = ("127.0.0.1", 6379)
# The broker check gets one second; the answer must come well inside compose's timeout.
PROMPT = 3


def redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def silent_broker():
    """A broker address that accepts connections and then never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    listener.close()
    for conn in held:
        conn.close()


def health(client):
    started = time.monotonic()
    response = client.get("/healthz")
    return response, time.monotonic() - started


def test_without_a_broker_tasks_run_in_process(client, db, settings):
    settings.CELERY_BROKER_URL = ""
    response, _ = health(client)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["database"] == "ok"
    assert response.json()["broker"] == "in-process"


def test_a_broker_that_answers_is_ok(client, db, settings):
    if not redis_answers():
        pytest.skip("no Redis answering at 127.0.0.1:6379")
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    response, _ = health(client)
    assert response.status_code == 200
    assert response.json()["broker"] == "ok"


def test_a_broker_that_refuses_is_unavailable_and_the_web_stays_in_service(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response, took = health(client)
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert response.json()["broker"] == "unavailable"
    assert took < PROMPT


def test_a_broker_that_never_answers_is_unavailable_within_seconds(client, db, settings, silent_broker):
    settings.CELERY_BROKER_URL = silent_broker
    response, took = health(client)
    assert response.status_code == 200
    assert response.json()["broker"] == "unavailable"
    assert took < PROMPT


def test_it_names_its_parts_and_nothing_else(client, db, settings):
    settings.CELERY_BROKER_URL = ""
    response, _ = health(client)
    assert set(response.json()) == set(HEALTH_PARTS)
    assert "no-store" in response["Cache-Control"]


# A process whose database cannot be opened: a SQLite file in a folder that does not
# exist. A real failure to connect, in a process of its own so that this one's test
# database is left alone.
DATABASE_DOWN = """
from django.test.utils import setup_test_environment
import django
django.setup()
setup_test_environment()
from django.test import Client
response = Client().get("/healthz")
print(response.status_code, response.content.decode())
"""


def test_a_database_that_does_not_answer_is_a_503(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'no-such-folder' / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    run = subprocess.run(
        [sys.executable, "-c", DATABASE_DOWN], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    status, body = run.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "503"
    assert '"database": "unavailable"' in body
    assert '"broker": "in-process"' in body
