"""docker-compose.yml, the Dockerfile and the settings agree: every variable the settings
read can be set from the .env file and is documented, the secrets are demanded, the
application connects as a role that owns nothing, every long-running service has a
health check, and nothing local or secret is copied into the image.

Docker itself is not needed: the compose file is read as YAML and its ${...} expressions
are resolved here as compose resolves them."""

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.test_settings import run_with

BASE_DIR = Path(__file__).resolve().parent.parent
COMPOSE_SOURCE = (BASE_DIR / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_SOURCE)
SERVICES = COMPOSE["services"]
SETTINGS_SOURCE = (BASE_DIR / "config" / "settings.py").read_text()
README = (BASE_DIR / "README.md").read_text()
DOCKERFILE = (BASE_DIR / "Dockerfile").read_text()
READ_VARIABLE = re.compile(
    r"""(?:os\.environ\.get|os\.getenv|env_bool|env_int|env_list|env_choice)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
)
SETTINGS_VARIABLES = set(READ_VARIABLE.findall(SETTINGS_SOURCE))
APP_SERVICES = ("web", "worker", "beat")
BUILT_SERVICES = tuple(name for name in SERVICES if "build" in SERVICES[name])
REQUIRED = ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG")
# Variables the settings read that compose deliberately does not pass, and why.
NOT_PASSED = {
    "DEMO_PASSWORD": "seed_demo's demo accounts; it runs with DEBUG on only, and compose runs with it off",
    "CELERY_TASK_DEFAULT_QUEUE": "the tests give each run a queue of its own; compose uses Celery's default",
    "AUDIT_SEAL_IN_PROCESS": "make run's sealer thread; compose runs beat, which seals",
    "STATIC_ROOT": "the image collects its static files into its own staticfiles/ when it is built;"
    " the benchmarks point it at their scratch folders",
}
INTERPOLATION = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")
COMPOSE_VARIABLES = {name for name, _, _ in INTERPOLATION.findall(COMPOSE_SOURCE) if name}
DEMANDED = {name for name, operator, _ in INTERPOLATION.findall(COMPOSE_SOURCE) if operator in (":?", "?")}

# What an operator's .env holds at the least (README, "Production").
DOT_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
    "MFA_ENCRYPTION_KEY": secrets.token_urlsafe(32),
    "ALLOWED_HOSTS": "portal.example.nhs.uk",
    "POSTGRES_PASSWORD": "owner-password",
    "POSTGRES_APP_PASSWORD": "app-password",
    "EMAIL_HOST": "smtp.example.nhs.uk",
}


class Unset(Exception):
    """A ${NAME:?message} expression met an unset or empty variable."""


def resolve(text: str, dot_env: dict[str, str]) -> str:
    """Compose's interpolation: $$, ${NAME}, ${NAME:-default}, ${NAME-default},
    ${NAME:?message} and ${NAME?message}."""

    def one(match: re.Match) -> str:
        name, operator, argument = match.groups()
        if name is None:
            return "$"
        value = dot_env.get(name)
        missing = value is None or (value == "" and operator and operator.startswith(":"))
        if operator in (":-", "-") and missing:
            return argument
        if operator in (":?", "?") and missing:
            raise Unset(argument)
        return value or ""

    return INTERPOLATION.sub(one, text)


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):  # the "- NAME=value" form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: str(value) for name, value in env.items()}


def resolved_environment(service: str, dot_env: dict[str, str] = DOT_ENV) -> dict[str, str]:
    return {name: resolve(value, dot_env) for name, value in environment(service).items()}


def host_of(url: str) -> str:
    # "${POSTGRES_PASSWORD:?...}" inside the URL is compose's business, not the URL's.
    return urlparse(INTERPOLATION.sub("x", url)).hostname


def command_of(service: str) -> str:
    command = SERVICES[service].get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def mounts(service: str) -> dict[str, str]:
    """Where each volume of the service is mounted: {target: source}."""
    return {volume.split(":")[1]: volume.split(":")[0] for volume in SERVICES[service].get("volumes", [])}


def test_the_compose_file_has_every_service():
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "ingest"} <= set(SERVICES)
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["redis"]["image"].startswith("redis:7")


def test_each_app_service_runs_its_own_process():
    assert "gunicorn config.wsgi" in command_of("web")
    assert "celery -A config worker" in command_of("worker")
    assert "celery -A config beat" in command_of("beat")
    assert "manage.py migrate" in command_of("migrate")
    assert SERVICES["ingest"]["entrypoint"] == ["python", "manage.py", "ingest"]


def test_the_settings_parser_sees_what_settings_read():
    assert set(REQUIRED) <= SETTINGS_VARIABLES
    assert "EMAIL_HOST" in SETTINGS_VARIABLES


# --- Every setting from the .env file -------------------------------------------------


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_an_app_service_passes_only_variables_the_settings_read(service):
    unknown = set(environment(service)) - SETTINGS_VARIABLES
    assert not unknown, f"{service} passes {sorted(unknown)}, which config/settings.py never reads"


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_an_app_service_passes_every_variable_the_settings_read(service):
    missing = SETTINGS_VARIABLES - set(NOT_PASSED) - set(environment(service))
    assert not missing, f"{service} does not pass {sorted(missing)}: add them, or to NOT_PASSED with a reason"


def test_every_variable_left_out_of_compose_is_still_read_by_the_settings():
    assert set(NOT_PASSED) <= SETTINGS_VARIABLES


def test_the_readme_documents_every_variable_compose_passes_or_reads():
    documented = (SETTINGS_VARIABLES - set(NOT_PASSED)) | COMPOSE_VARIABLES
    missing = sorted(name for name in documented if f"`{name}`" not in README)
    assert not missing, f"README.md does not document {missing}"


def test_the_readme_shows_every_variable_compose_demands_in_the_env_file():
    assert {
        "SECRET_KEY",
        "AUDIT_HMAC_KEY",
        "MFA_ENCRYPTION_KEY",
        "ALLOWED_HOSTS",
        "POSTGRES_PASSWORD",
        "POSTGRES_APP_PASSWORD",
    } == DEMANDED
    for name in DEMANDED:
        assert re.search(rf"^{name}=", README, re.MULTILINE), f"README's .env example lacks {name}"


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_compose_refuses_to_start_without_each_demanded_variable(service):
    for name in ("SECRET_KEY", "AUDIT_HMAC_KEY", "MFA_ENCRYPTION_KEY", "ALLOWED_HOSTS"):
        with pytest.raises(Unset, match=name):
            resolved_environment(service, {k: v for k, v in DOT_ENV.items() if k != name})


@pytest.mark.parametrize("service", ["web", "migrate"])
def test_the_environment_compose_builds_from_the_env_file_passes_the_deploy_checks(service):
    result = run_with(
        resolved_environment(service), "manage.py", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_counts_the_one_tls_proxy_in_front_of_web():
    assert resolved_environment("web")["TRUSTED_PROXIES"] == "1"
    assert resolved_environment("web", {**DOT_ENV, "TRUSTED_PROXIES": "2"})["TRUSTED_PROXIES"] == "2"


# --- Secrets and the database roles ----------------------------------------------------


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_app_process_gets_the_required_variables(service):
    missing = set(REQUIRED) - set(environment(service))
    assert not missing, f"{service} lacks {sorted(missing)}"
    assert environment(service)["DEBUG"].lower() == "false"


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_the_urls_point_at_the_compose_database_and_broker(service):
    env = environment(service)
    assert env["DATABASE_URL"].startswith("postgres://")
    assert host_of(env["DATABASE_URL"]) == "postgres"
    assert env["CELERY_BROKER_URL"].startswith("redis://")
    assert host_of(env["CELERY_BROKER_URL"]) == "redis"


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_secrets_are_demanded_from_the_environment_not_written_down(service):
    env = environment(service)
    for name in ("SECRET_KEY", "AUDIT_HMAC_KEY", "MFA_ENCRYPTION_KEY", "ALLOWED_HOSTS"):
        assert env[name].startswith(f"${{{name}:?"), name
    postgres = SERVICES["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert postgres["POSTGRES_APP_PASSWORD"].startswith("${POSTGRES_APP_PASSWORD:?")


@pytest.mark.parametrize("service", [*APP_SERVICES, "ingest"])
def test_the_application_connects_as_the_role_that_owns_nothing(service):
    postgres = SERVICES["postgres"]["environment"]
    url = urlparse(resolved_environment(service)["DATABASE_URL"])
    assert url.username == postgres["POSTGRES_APP_USER"] != postgres["POSTGRES_USER"]
    assert url.password == DOT_ENV["POSTGRES_APP_PASSWORD"]
    assert url.path == f"/{postgres['POSTGRES_DB']}"


def test_migrations_run_as_the_owner():
    postgres = SERVICES["postgres"]["environment"]
    url = urlparse(resolved_environment("migrate")["DATABASE_URL"])
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == DOT_ENV["POSTGRES_PASSWORD"]
    assert url.path == f"/{postgres['POSTGRES_DB']}"


def test_the_postgres_image_makes_the_application_role_when_it_creates_the_database():
    init = mounts("postgres")["/docker-entrypoint-initdb.d"]
    folder = (BASE_DIR / init).resolve()
    assert folder == BASE_DIR / "deploy" / "postgres"
    script = folder / "10-app-role.sh"
    assert os.access(script, os.X_OK)
    assert "app-role.psql" in script.read_text()
    assert (folder / "app-role.psql").is_file()
    # The image runs every *.sh and *.sql* file it finds there; the SQL needs the
    # script's variables, so it must not be run on its own.
    assert sorted(path.name for path in folder.iterdir() if re.search(r"\.(sh|sql)", path.name)) == [
        "10-app-role.sh"
    ]


# --- Health checks, beat and the shared folders ------------------------------------------


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_long_running_app_service_has_a_health_check(service):
    assert SERVICES[service]["healthcheck"]["test"]


def test_the_worker_is_healthy_when_it_answers_a_ping_by_its_own_name():
    check = SERVICES["worker"]["healthcheck"]["test"]
    assert check[0] == "CMD-SHELL"
    assert "celery -A config inspect ping -d celery@$$HOSTNAME" in check[1]


def beat_health(heartbeat: Path) -> int:
    kind, program, *arguments = SERVICES["beat"]["healthcheck"]["test"]
    assert (kind, program) == ("CMD", "python")
    env = {**os.environ, "BEAT_HEARTBEAT_PATH": str(heartbeat)}
    return subprocess.run([sys.executable, *arguments], env=env, capture_output=True, timeout=30).returncode


def test_beat_is_healthy_only_while_its_heartbeat_is_fresh(tmp_path):
    heartbeat = tmp_path / "beat-heartbeat"
    assert beat_health(heartbeat) != 0
    heartbeat.touch()
    assert beat_health(heartbeat) == 0
    three_minutes_ago = time.time() - 180
    os.utime(heartbeat, (three_minutes_ago, three_minutes_ago))
    assert beat_health(heartbeat) != 0


def test_beat_keeps_no_schedule_in_the_container():
    from django.conf import settings

    assert "/tmp" not in command_of("beat")  # noqa: S108 - what is refused
    assert "--schedule" not in command_of("beat")
    assert "--scheduler" not in command_of("beat")
    assert settings.CELERY_BEAT_SCHEDULER == "config.beat:PortalScheduler"


def folder_of_volume(service: str, path: str) -> str | None:
    """The named volume that holds `path` in `service` (the deepest mount above it)."""
    holding = [target for target in mounts(service) if path == target or path.startswith(target + "/")]
    return mounts(service)[max(holding, key=len)] if holding else None


@pytest.mark.parametrize("service", ["web", "worker", "ingest"])
def test_web_worker_and_the_ingest_command_share_the_ingest_spool(service):
    spool = environment(service)["INGEST_SPOOL_DIR"]
    assert folder_of_volume(service, spool) == "ingest-spool"
    assert "ingest-spool" in COMPOSE["volumes"]


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_the_witness_and_the_heartbeat_live_on_a_kept_volume(service):
    env = environment(service)
    assert folder_of_volume(service, env["AUDIT_WITNESS_PATH"]) == "audit-witness"
    assert folder_of_volume(service, env["BEAT_HEARTBEAT_PATH"]) == "audit-witness"


def test_the_ingest_command_is_run_by_hand_only():
    assert SERVICES["ingest"]["profiles"] == ["tools"]
    assert SERVICES["ingest"]["restart"] == "no"
    assert "docker compose run --rm -v" in README


# --- gunicorn ------------------------------------------------------------------------------

GUNICORN_COMMANDS = {
    "compose": command_of("web"),
    "Dockerfile": " ".join(
        re.search(r"^CMD \[(.*?)\]$", DOCKERFILE, re.MULTILINE | re.DOTALL)[1].split('", "')
    ),
}


@pytest.mark.parametrize("where", GUNICORN_COMMANDS)
def test_gunicorn_believes_the_proxys_forwarded_proto(where):
    assert "--forwarded-allow-ips" in GUNICORN_COMMANDS[where]


@pytest.mark.parametrize("where", GUNICORN_COMMANDS)
def test_gunicorns_access_log_leaves_out_query_strings(where):
    command = GUNICORN_COMMANDS[where]
    assert "--access-logformat" in command
    assert "%(U)s" in command
    for carries_the_query in ("%(r)s", "%(q)s", "%({raw_uri}e)s", "%({query_string}e)s"):
        assert carries_the_query not in command


# --- The image ---------------------------------------------------------------------------


def test_the_image_collects_static_files_with_the_production_storage():
    assert "FROM python:3.11-slim" in DOCKERFILE
    assert "npm ci" in DOCKERFILE
    assert "pip install -r requirements.txt" in DOCKERFILE
    assert re.search(r"DEBUG=false.*collectstatic", DOCKERFILE, re.DOTALL)


def test_the_build_step_brings_every_key_production_settings_demand():
    step = re.search(
        r"^RUN (DEBUG=false.*?)python manage\.py collectstatic", DOCKERFILE, re.MULTILINE | re.DOTALL
    )
    build_env = dict(re.findall(r"([A-Z_]+)=(\S+)", step[1]))
    assert {"SECRET_KEY", "AUDIT_HMAC_KEY", "MFA_ENCRYPTION_KEY", "ALLOWED_HOSTS"} <= set(build_env)
    result = run_with(build_env)
    assert result.returncode == 0, result.stderr
    # Build values only: nothing keeps them in the image.
    assert not re.search(r"^ENV .*(SECRET_KEY|AUDIT_HMAC_KEY|MFA_ENCRYPTION_KEY)", DOCKERFILE, re.MULTILINE)


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context: a pattern matches the
    path or a folder above it; the last matching pattern wins ("!" lets a path back in)."""
    ignored = False
    for line in (BASE_DIR / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = "".join(
            ".*" if part == "**" else "[^/]*" if part == "*" else "[^/]" if part == "?" else re.escape(part)
            for part in re.split(r"(\*\*|\*|\?)", pattern)
        )
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:depth])) for depth in range(1, len(parts) + 1)):
            ignored = not negated
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.production",
        "db.sqlite3",
        "db.sqlite3-wal",
        "var/audit-witness.log",
        "var/ingest/1/0/bundle.json",
        "test-artifacts/trace.zip",
        "bench/results/api.json",
        "node_modules/nhsuk-frontend/package.json",
        ".git/HEAD",
        ".venv/bin/python",
        "phr/__pycache__/models.cpython-311.pyc",
    ],
)
def test_the_image_leaves_out_secrets_databases_and_artefacts(path):
    assert dockerignored(path)


@pytest.mark.parametrize(
    "path",
    ["manage.py", "config/settings.py", "requirements.txt", "package-lock.json", "static/portal/portal.css"],
)
def test_the_image_keeps_what_it_runs(path):
    assert not dockerignored(path)
