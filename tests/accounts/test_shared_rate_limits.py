"""Sign-in attempts are counted in a cache every web process shares (the database cache
by default), so wrong passwords spread over two server processes lock the account after
the configured limit overall, not after the limit in each process.

Two `manage.py runserver` processes serve one SQLite file database, which this test makes
itself with `migrate` in a temporary folder; nothing else is shared between them."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.test_settings import PRODUCTION, run_with

BASE_DIR = Path(__file__).resolve().parent.parent.parent
EMAIL = "shared-limits@example.com"
PASSWORD = "a-long-and-unguessable-phrase"
WRONG = "not-the-password-at-all"
LOCKED = "Too many failed login attempts"
WRONG_PASSWORD = "not correct"
# ACCOUNT_RATE_LIMITS["login_failed"] allows this many wrong passwords per account.
LIMIT = 5


def environment(database: Path) -> dict[str, str]:
    """This process's environment, minus any cache, broker or database it names: the
    servers use the embedded defaults, on the temporary database file."""
    dropped = {"CACHE_URL", "CELERY_BROKER_URL", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {name: value for name, value in os.environ.items() if name not in dropped}
    env.update(
        DEBUG="true",
        DATABASE_URL=f"sqlite:///{database}",
        DJANGO_SETTINGS_MODULE="config.settings",
        EMAIL_BACKEND="locmem",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


# The database, with the cache's table (made by migrate) and one patient, whose password
# is hashed with few PBKDF2 rounds so that each try is quick (the hash names its rounds).
MAKE_DATABASE = f"""
import django
django.setup()
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.management import call_command
from accounts.models import User

assert settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache"), settings.CACHES
call_command("migrate", verbosity=0, skip_checks=True)
hasher = PBKDF2PasswordHasher()
user = User.objects.create_user({EMAIL!r}, role="patient")
user.password = hasher.encode({PASSWORD!r}, hasher.salt(), iterations=1000)
user.save()
EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
"""


SERVE = (sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Browser:
    """One browser talking to one server: its own cookies, no redirects followed."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        text = response.read().decode()
        connection.close()
        return response.status, text

    def sign_in(self, password: str) -> tuple[int, str]:
        _, page = self.request("GET", "/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        return self.request(
            "POST", "/accounts/login/", {"login": EMAIL, "password": password, "csrfmiddlewaretoken": token}
        )


def wait_until_serving(server: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server on port {port} stopped:\n{log.read_text()[-3000:]}")
        try:
            if Browser(port).request("GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the server on port {port} did not start:\n{log.read_text()[-3000:]}")


@pytest.fixture
def two_servers(tmp_path):
    env = environment(tmp_path / "portal.sqlite3")
    servers = []
    try:
        # The servers start while the database is made: they touch it only when asked.
        for _ in range(2):
            port, log = free_port(), tmp_path / f"server-{len(servers)}.log"
            with log.open("w") as out:
                process = subprocess.Popen(
                    [*SERVE, f"127.0.0.1:{port}"],
                    cwd=BASE_DIR,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            servers.append((process, port, log))
        made = subprocess.run(
            [sys.executable, "-c", MAKE_DATABASE],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert made.returncode == 0, made.stderr[-3000:]
        for process, port, log in servers:
            wait_until_serving(process, port, log)
        yield [Browser(port) for _, port, _ in servers]
    finally:
        for process, _, _ in servers:
            process.terminate()
        for process, _, _ in servers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_wrong_passwords_spread_over_two_processes_lock_the_account_after_the_limit_overall(two_servers):
    first, second = two_servers
    # Five wrong passwords, three to one process and two to the other.
    for attempt in range(LIMIT):
        status, page = (first, second)[attempt % 2].sign_in(WRONG)
        assert status == 200
        assert WRONG_PASSWORD in page, f"attempt {attempt + 1}"
        assert LOCKED not in page, f"attempt {attempt + 1}"
    # Each process has seen fewer than five, but the account is locked on both: even the
    # right password is refused.
    for browser in (second, first):
        status, page = browser.sign_in(PASSWORD)
        assert status == 200, "signed in although the limit of wrong passwords was reached"
        assert LOCKED in page


@pytest.mark.django_db
def test_wrong_passwords_count_per_account_whatever_host_and_port_they_are_sent_to(client):
    """allauth counts per site and account, the site being the Host header with its port
    (there is no sites framework here): a port per attempt would start a new count."""
    from allauth.account.models import EmailAddress

    from accounts.models import User

    user = User.objects.create_user(EMAIL, PASSWORD, role="patient")
    EmailAddress.objects.create(user=user, email=EMAIL, verified=True, primary=True)
    for port in range(1, LIMIT + 1):
        wrong = {"login": EMAIL, "password": WRONG}
        reply = client.post("/accounts/login/", wrong, HTTP_HOST=f"testserver:{port}")
        assert WRONG_PASSWORD in reply.content.decode()
    reply = client.post("/accounts/login/", {"login": EMAIL, "password": PASSWORD}, HTTP_HOST="testserver:99")
    assert reply.status_code == 200
    assert LOCKED in reply.content.decode()


SHOW_CACHE = (
    "-c",
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.CACHES['default']['BACKEND'], settings.CACHES['default'].get('LOCATION'))",
)


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        pytest.param(
            {"DEBUG": "true"},
            "django.core.cache.backends.db.DatabaseCache portal_cache",
            id="embedded-default",
        ),
        pytest.param(
            {"DEBUG": "true", "CELERY_BROKER_URL": "redis://broker:6379/0"},
            "config.cache.RedisWithFallback redis://broker:6379/0",
            id="the-brokers-redis",
        ),
        pytest.param(
            {
                "DEBUG": "true",
                "CELERY_BROKER_URL": "redis://broker:6379/0",
                "CACHE_URL": "redis://cache:6379/1",
            },
            "config.cache.RedisWithFallback redis://cache:6379/1",
            id="its-own-redis",
        ),
        pytest.param(
            {**PRODUCTION, "CACHE_URL": "db://"},
            "django.core.cache.backends.db.DatabaseCache portal_cache",
            id="database",
        ),
    ],
)
def test_the_cache_every_process_shares_is_chosen_from_the_environment(env, shown):
    result = run_with(env, *SHOW_CACHE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == shown


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({**PRODUCTION, "CACHE_URL": "locmem://"}, id="one-process-cache-in-production"),
        pytest.param({"DEBUG": "true", "CACHE_URL": "memcached://cache:11211"}, id="unknown-cache"),
    ],
)
def test_a_cache_that_is_not_shared_or_not_known_stops_the_settings_naming_it(env):
    result = run_with(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "CACHE_URL" in result.stderr
