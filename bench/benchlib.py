"""What every benchmark here shares: a fresh PostgreSQL database when one answers, and
the environment of a child process that measures against SQLite or PostgreSQL with
production settings (DEBUG on would make Django keep every query's SQL text)."""

import os

PG_ADMIN_URL = os.environ.get("DATABASE_URL_BENCH", "postgres://postgres@127.0.0.1:5432/postgres")


def fresh_postgres(name: str) -> bool:
    """Drop and create database ``name``; False when PostgreSQL does not answer."""
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        return True
    except psycopg.Error:
        return False


def child_env(backend: str, workdir: str, pg_name: str) -> dict:
    if backend == "sqlite":
        url = f"sqlite:///{workdir}/bench.sqlite3"
    else:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{pg_name}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "localhost",
        "SECRET_KEY": "bench-only-" + "k" * 60,
        # Production refuses to start without keys of their own (never SECRET_KEY).
        "AUDIT_HMAC_KEY": "bench-only-audit-" + "a" * 40,
        "MFA_ENCRYPTION_KEY": "bench-only-mfa-" + "m" * 40,
        "SECURE_SSL_REDIRECT": "false",
    }
    env.pop("CELERY_BROKER_URL", None)
    return env


def nhs_number(n: int) -> str:
    """A valid NHS number in the 999 range (never issued), the first from n up."""
    from phr.nhs_number import unissued_numbers

    return next(unissued_numbers(9_990_000_000 + n * 10))
