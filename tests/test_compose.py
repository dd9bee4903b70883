"""docker-compose.yml and the settings agree: every variable the app services pass is
one the settings read, the required ones reach every app process, and the URLs point at
the compose services rather than at some other host."""

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SETTINGS_SOURCE = (BASE_DIR / "config" / "settings.py").read_text()
READ_VARIABLE = re.compile(
    r"""(?:os\.environ\.get|os\.getenv|env_bool|env_int|env_list|env_choice)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
)
SETTINGS_VARIABLES = set(READ_VARIABLE.findall(SETTINGS_SOURCE))
APP_SERVICES = ("web", "worker", "beat")
REQUIRED = ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG")
INTERPOLATION = re.compile(r"\$\{[^}]*\}")


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):  # the "- NAME=value" form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: str(value) for name, value in env.items()}


def host_of(url: str) -> str:
    # "${POSTGRES_PASSWORD:?...}" inside the URL is compose's business, not the URL's.
    return urlparse(INTERPOLATION.sub("x", url)).hostname


def command_of(service: str) -> str:
    command = SERVICES[service].get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def test_the_compose_file_has_every_service():
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(SERVICES)
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["redis"]["image"].startswith("redis:7")


def test_each_app_service_runs_its_own_process():
    assert "gunicorn config.wsgi" in command_of("web")
    assert "celery -A config worker" in command_of("worker")
    assert "celery -A config beat" in command_of("beat")


def test_the_settings_parser_sees_what_settings_read():
    assert set(REQUIRED) <= SETTINGS_VARIABLES
    assert "EMAIL_HOST" in SETTINGS_VARIABLES


@pytest.mark.parametrize("service", [name for name in SERVICES if "build" in SERVICES[name]])
def test_an_app_service_passes_only_variables_the_settings_read(service):
    unknown = set(environment(service)) - SETTINGS_VARIABLES
    assert not unknown, f"{service} passes {sorted(unknown)}, which config/settings.py never reads"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_app_process_gets_the_required_variables(service):
    missing = set(REQUIRED) - set(environment(service))
    assert not missing, f"{service} lacks {sorted(missing)}"
    assert environment(service)["DEBUG"].lower() == "false"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_the_urls_point_at_the_compose_database_and_broker(service):
    env = environment(service)
    assert env["DATABASE_URL"].startswith("postgres://")
    assert host_of(env["DATABASE_URL"]) == "postgres"
    assert env["CELERY_BROKER_URL"].startswith("redis://")
    assert host_of(env["CELERY_BROKER_URL"]) == "redis"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_secrets_are_demanded_from_the_environment_not_written_down(service):
    env = environment(service)
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert env["ALLOWED_HOSTS"].startswith("${ALLOWED_HOSTS:?")
    assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_the_image_collects_static_files_with_the_production_storage():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "npm ci" in dockerfile
    assert "pip install -r requirements.txt" in dockerfile
    assert re.search(r"DEBUG=false.*collectstatic", dockerfile, re.DOTALL)
