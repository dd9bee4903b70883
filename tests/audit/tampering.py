"""Changing the audit tables behind the app's back, as an attacker with database access
would: on PostgreSQL the append-only trigger is switched off for the one statement."""

from django.db import connection

TRIGGERS = {
    "audit_auditevent": "audit_event_append_only",
    "audit_disclosureset": "audit_disclosureset_append_only",
    "audit_block": "audit_block_append_only",
}


def behind_the_apps_back(sql: str, params=(), *, table: str = "audit_auditevent") -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {TRIGGERS[table]}")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {TRIGGERS[table]}")
