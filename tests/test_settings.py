"""The settings refuse to start half-configured: a wrong value stops the process and
the message names the variable to fix."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
SETTINGS_SOURCE = (BASE_DIR / "config" / "settings.py").read_text()
READ_VARIABLE = re.compile(
    r"""(?:os\.environ\.get|os\.getenv|env_bool|env_int|env_list|env_choice)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
)
SETTINGS_VARIABLES = set(READ_VARIABLE.findall(SETTINGS_SOURCE))

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(60)[:60],
    "AUDIT_HMAC_KEY": secrets.token_urlsafe(40)[:40],
    "MFA_ENCRYPTION_KEY": secrets.token_urlsafe(40)[:40],
    "ALLOWED_HOSTS": "portal.example.nhs.uk",
}


def without(env: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in env.items() if key != name}


def run_with(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run Python in a fresh process whose environment holds only `env` of the
    variables the settings read (pytest's own defaults are removed)."""
    # DJANGO_ALLOW_ASYNC_UNSAFE comes from the e2e conftest and is itself a deploy-check error.
    dropped = SETTINGS_VARIABLES | {"DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings", PYTHONDONTWRITEBYTECODE="1")
    if not args:
        args = ("-c", "import django; django.setup()")
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=120
    )


def test_the_settings_parser_finds_the_variables_settings_reads():
    assert {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL"} <= SETTINGS_VARIABLES


def test_it_starts_with_a_sound_development_environment():
    result = run_with({"DEBUG": "true"})
    assert result.returncode == 0, result.stderr


def test_it_starts_with_a_sound_production_environment():
    result = run_with(PRODUCTION)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        pytest.param({"DEBUG": "maybe"}, "DEBUG", id="debug-not-a-boolean"),
        pytest.param(
            {"DEBUG": "false", "ALLOWED_HOSTS": "portal.example.nhs.uk"},
            "SECRET_KEY",
            id="production-without-secret-key",
        ),
        pytest.param({**PRODUCTION, "SECRET_KEY": "too-short"}, "SECRET_KEY", id="short-secret-key"),
        pytest.param({**PRODUCTION, "ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS", id="production-without-hosts"),
        pytest.param(
            without(PRODUCTION, "AUDIT_HMAC_KEY"), "AUDIT_HMAC_KEY", id="production-without-audit-key"
        ),
        pytest.param({**PRODUCTION, "AUDIT_HMAC_KEY": "short"}, "AUDIT_HMAC_KEY", id="short-audit-key"),
        pytest.param(
            {**PRODUCTION, "AUDIT_HMAC_KEY": PRODUCTION["SECRET_KEY"]},
            "AUDIT_HMAC_KEY",
            id="audit-key-is-the-secret-key",
        ),
        pytest.param(
            without(PRODUCTION, "MFA_ENCRYPTION_KEY"), "MFA_ENCRYPTION_KEY", id="production-without-mfa-key"
        ),
        pytest.param(
            {**PRODUCTION, "MFA_ENCRYPTION_KEY": f"{PRODUCTION['MFA_ENCRYPTION_KEY']},old"},
            "MFA_ENCRYPTION_KEY",
            id="short-old-mfa-key",
        ),
        pytest.param(
            {**PRODUCTION, "MFA_ENCRYPTION_KEY": PRODUCTION["SECRET_KEY"]},
            "MFA_ENCRYPTION_KEY",
            id="mfa-key-is-the-secret-key",
        ),
        pytest.param({"DEBUG": "true", "ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS", id="wildcard-hosts"),
        pytest.param(
            {"DEBUG": "true", "DATABASE_URL": "mysql://portal:pw@db/portal"},
            "DATABASE_URL",
            id="unsupported-database",
        ),
        pytest.param(
            {"DEBUG": "true", "CELERY_BROKER_URL": "ftp://x"}, "CELERY_BROKER_URL", id="unsupported-broker"
        ),
        pytest.param({"DEBUG": "true", "EMAIL_BACKEND": "smtp"}, "EMAIL_HOST", id="smtp-without-host"),
        pytest.param(
            {"DEBUG": "true", "EMAIL_BACKEND": "pigeon"}, "EMAIL_BACKEND", id="unknown-email-backend"
        ),
        pytest.param({"DEBUG": "true", "EMAIL_PORT": "abc"}, "EMAIL_PORT", id="email-port-not-a-number"),
        pytest.param(
            {"DEBUG": "true", "DATABASE_REPLICA_URL": "postgres://portal@replica/portal"},
            "DATABASE_REPLICA_URL",
            id="replica-of-sqlite",
        ),
        pytest.param(
            {
                "DEBUG": "true",
                "DATABASE_URL": "postgres://portal@primary/portal",
                "DATABASE_REPLICA_URL": "sqlite:///replica.sqlite3",
            },
            "DATABASE_REPLICA_URL",
            id="replica-not-postgresql",
        ),
    ],
)
def test_it_refuses_to_start_and_names_the_variable(env, named):
    result = run_with(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


def test_the_deploy_checks_pass_with_production_settings():
    result = run_with(PRODUCTION, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
