"""The integration suite: PostgreSQL, Redis and a live Celery worker in its own process.

It runs when DATABASE_URL names PostgreSQL and CELERY_BROKER_URL names a broker (as in
the second run of .ci/run); otherwise every test here is skipped with the reason.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def integration_services():
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql" or not settings.CELERY_BROKER_URL:
        pytest.skip("integration tests need DATABASE_URL on PostgreSQL and CELERY_BROKER_URL on Redis")
    return db


def test_database_url() -> str:
    """The test database's URL, for processes started by the tests."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


def app_environment(mail_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker or beat process started by a test: the test database,
    the broker, emails written as files into mail_dir."""
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "EMAIL_BACKEND": "file",
        "EMAIL_FILE_PATH": str(mail_dir),
        **extra,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def start_worker(queue: str, log: Path, env: dict[str, str], *, wait: float = 60) -> subprocess.Popen:
    """A `celery worker` process (solo pool: the process that works is the one a test
    may kill) consuming one queue; returns once it is ready."""
    with log.open("a") as out:
        mark = log.stat().st_size
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + wait
    while b"ready" not in log.read_bytes()[mark:]:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the Celery worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    proc.queue = queue
    proc.node_name = f"{queue}@{socket.gethostname()}"
    return proc


def wait_until_idle(worker: subprocess.Popen, *, timeout: float = 120) -> None:
    """Return once the worker has run every task sent to its queue.

    A solo-pool worker answers a control message only between tasks, so an answer naming
    no reserved task, with the queue empty, means nothing is running or waiting. Tests call
    this before their data is flushed: a task still writing while the tables are truncated
    deadlocks with the flush (every ingest asks the worker for the accuracy checks)."""
    from config.celery import app

    deadline = time.monotonic() + timeout
    with app.connection_for_read() as conn:
        broker = conn.default_channel.client
        while time.monotonic() < deadline:
            if broker.llen(worker.queue) == 0:
                reply = app.control.inspect(destination=[worker.node_name], timeout=2).reserved()
                if reply is not None and not reply.get(worker.node_name):
                    return
            time.sleep(0.1)
    raise AssertionError(f"the worker on {worker.queue} was still busy after {timeout:.0f}s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def live_worker(integration_services, django_db_setup, django_db_blocker, tmp_path_factory):
    """A real `celery worker` process on the broker, using the test database."""
    queue = f"integration-{os.getpid()}"
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    log.touch()
    mail = tmp_path_factory.mktemp("mail")
    proc = start_worker(queue, log, app_environment(mail))
    from config.celery import app

    app.conf.task_default_queue = queue
    proc.log_path = log
    proc.mail_dir = mail
    yield proc
    stop(proc)


@pytest.fixture(autouse=True)
def _worker_done_before_flush(request):
    """A test with the live worker and the database waits, after it ends and before its
    data is flushed, for the worker to finish what the test sent it."""
    if "live_worker" not in request.fixturenames or not request.node.get_closest_marker("django_db"):
        yield
        return
    request.getfixturevalue("_django_db_helper")  # set up first, so torn down (flushed) after
    worker = request.getfixturevalue("live_worker")
    yield
    wait_until_idle(worker)


@pytest.fixture
def wait_for():
    """Poll a condition until it holds (the worker runs in another process)."""
    return _wait_for


def _wait_for(condition, *, timeout: float = 60, what: str = "the worker"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
