"""The database roles compose sets up (deploy/postgres/): the application's role reads
and writes rows, audit events included, but cannot switch off the audit trail's
append-only trigger, empty a table or change the schema; migrations run as the owner.

Runs deploy/postgres/app-role.psql itself, as the postgres image would, against a
throwaway database on the PostgreSQL named by DATABASE_URL (skipped on SQLite)."""

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlparse

import psycopg
import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
INIT_SCRIPT = BASE_DIR / "deploy" / "postgres" / "10-app-role.sh"
APP_ROLE_SQL = INIT_SCRIPT.parent / "app-role.psql"
DATABASE = "portal_roles_check"
OWNER = "portal_roles_check_owner"
APP = "portal_roles_check_app"
SERVER = urlparse(os.environ.get("DATABASE_URL", ""))

pytestmark = [
    pytest.mark.skipif(
        SERVER.scheme not in ("postgres", "postgresql"), reason="needs DATABASE_URL on PostgreSQL"
    ),
    pytest.mark.skipif(shutil.which("psql") is None, reason="needs psql, as the postgres image runs it"),
]

# Run as the application role, through the portal's own code.
AS_THE_APP = """
import django; django.setup()
from django.core.management import call_command
from django.db import transaction
import audit
from audit.models import AuditEvent
from phr.models import Organisation

with transaction.atomic():
    practice = Organisation.objects.create(ods_code="RC001", name="Roles check practice")
    audit.record("organisation.registered", organisation=practice)
Organisation.objects.filter(pk=practice.pk).update(name="Roles check surgery")
Organisation.objects.create(ods_code="RC002", name="Gone").delete()
print(Organisation.objects.get(pk=practice.pk).name, AuditEvent.objects.count())
from audit.ledger import seal_all
print("blocks sealed:", seal_all())
call_command("verify_audit")
from audit.partitions import ensure_months
print("months added:", len(ensure_months(ahead=6)))
"""


def url(user: str, password: str = "", database: str = DATABASE) -> str:
    secret = f":{quote(password, safe='')}" if password else ""
    server = f"{SERVER.hostname or '127.0.0.1'}:{SERVER.port or 5432}"
    return f"postgresql://{quote(user, safe='')}{secret}@{server}/{database}"


def superuser_url(database: str) -> str:
    return url(SERVER.username or "postgres", SERVER.password or "", database)


def drop_everything(cluster) -> None:
    cluster.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    cluster.execute(f"DROP ROLE IF EXISTS {APP}")
    cluster.execute(f"DROP ROLE IF EXISTS {OWNER}")


def apply_app_role_sql(app_password: str) -> None:
    """What deploy/postgres/10-app-role.sh does, as the superuser, for a separate owner."""
    subprocess.run(
        [
            "psql", "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1",
            "--set", f"app_role={APP}", "--set", f"app_password={app_password}",
            "--set", f"owner_role={OWNER}", "--set", f"db={DATABASE}",
            "--file", str(APP_ROLE_SQL), superuser_url(DATABASE),
        ],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def run_the_init_script(app_password: str, owner_password: str) -> subprocess.CompletedProcess:
    """deploy/postgres/10-app-role.sh as `docker compose exec postgres` runs it, with the
    postgres image's variables (this cluster's superuser standing in for the owner)."""
    env = {
        **os.environ,
        "PGHOST": SERVER.hostname or "127.0.0.1",
        "PGPORT": str(SERVER.port or 5432),
        "PGPASSWORD": SERVER.password or "",
        "POSTGRES_USER": SERVER.username or "postgres",
        "POSTGRES_PASSWORD": owner_password,
        "POSTGRES_DB": DATABASE,
        "POSTGRES_APP_USER": APP,
        "POSTGRES_APP_PASSWORD": app_password,
    }
    return subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def manage(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    dropped = ("CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        DATABASE_URL=database_url.replace("postgresql://", "postgres://"),
        DEBUG="true",
        CACHE_URL="db://",
        DB_CONN_MAX_AGE="0",
        AUDIT_HMAC_KEY="roles-check-audit-key-" + "a" * 20,
        AUDIT_WITNESS_PATH=str(tmp_path / "audit-witness.log"),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def roles(tmp_path_factory):
    """A database owned by OWNER, migrated by OWNER, with APP set up by the deploy SQL."""
    tmp_path = tmp_path_factory.mktemp("roles")
    with psycopg.connect(superuser_url("postgres"), autocommit=True) as cluster:
        superuser = cluster.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if not (superuser and superuser[0]):
            pytest.skip("needs a superuser in DATABASE_URL to make roles and a database")
        drop_everything(cluster)
        owner_password, app_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        cluster.execute(f"CREATE ROLE {OWNER} LOGIN PASSWORD '{owner_password}'")
        cluster.execute(f"CREATE DATABASE {DATABASE} OWNER {OWNER}")
        try:
            # As in compose: the role first, on the empty database; then the migrations.
            apply_app_role_sql(app_password)
            migrated = manage(url(OWNER, owner_password), tmp_path, "manage.py", "migrate", "--noinput")
            assert migrated.returncode == 0, migrated.stdout + migrated.stderr
            yield {"app_url": url(APP, app_password), "tmp_path": tmp_path}
        finally:
            drop_everything(cluster)


def as_app(roles) -> psycopg.Connection:
    return psycopg.connect(roles["app_url"], autocommit=True)


def test_the_app_role_reads_and_writes_rows_and_audit_events(roles):
    result = manage(roles["app_url"], roles["tmp_path"], "-c", AS_THE_APP)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Roles check surgery 1" in result.stdout
    assert "blocks sealed: 1" in result.stdout  # the sealer's lock, its DELETE and the sequence
    assert "audit trail intact: 1 event and 1 block checked" in result.stdout
    # Beat, as this role, adds the trail's months ahead (the migration made three).
    assert "months added: 3" in result.stdout


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only",
        "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_event_append_only ON audit_auditevent",
        "TRUNCATE audit_auditevent",
        "DROP TABLE audit_auditevent",
        "CREATE TABLE portal_roles_check_extra (id int)",
    ],
)
def test_the_app_role_cannot_touch_the_schema_or_the_trigger(roles, statement):
    with as_app(roles) as app, pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(statement)


def test_the_trigger_still_refuses_the_app_roles_update(roles):
    with as_app(roles) as app, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        app.execute("UPDATE audit_auditevent SET action = 'changed'")


def test_the_app_role_owns_nothing_and_has_no_special_powers(roles):
    with as_app(roles) as app:
        owned = app.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)",
            [APP],
        ).fetchone()[0]
        powers = app.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = %s",
            [APP],
        ).fetchone()
    assert owned == 0
    assert powers == (False, False, False, False)


def test_the_init_script_refuses_the_owners_password_for_the_app(roles):
    same = secrets.token_urlsafe(24)
    result = run_the_init_script(same, same)
    assert result.returncode != 0
    assert "POSTGRES_APP_PASSWORD must differ from POSTGRES_PASSWORD" in result.stderr


def test_the_init_script_run_again_keeps_the_grants_and_sets_the_password(roles):
    """For a database made before the role existed, the script is run by hand."""

    def stored_password() -> str | None:
        with psycopg.connect(superuser_url(DATABASE)) as admin:
            return admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [APP]).fetchone()[0]

    before = stored_password()
    new_password = secrets.token_urlsafe(24)
    result = run_the_init_script(new_password, secrets.token_urlsafe(24))
    assert result.returncode == 0, result.stderr
    roles["app_url"] = url(APP, new_password)
    assert before is not None
    assert stored_password() not in (None, before)
    with as_app(roles) as app:
        app.execute("INSERT INTO django_content_type (app_label, model) VALUES ('roles', 'check')")
        added = app.execute("SELECT count(*) FROM django_content_type WHERE app_label = 'roles'")
        assert added.fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER ALL")
