"""The audit trail by month, on PostgreSQL: one partition per calendar month (UTC).

The trail only grows, and is read by patient, actor or organisation over a span of
time: with a partition per month a search over a month reads that month's indexes, not
ten years of them, and an old month can be moved to cheaper storage (or detached into
an archive) as one table. A DEFAULT partition takes any event whose month has no
partition yet, so an event is never refused for want of one; ``ensure_months`` adds the
months ahead (from the migration, and then daily from Celery beat). A month whose
events already sit in the DEFAULT partition cannot be added later; it is logged and
skipped, and its events stay readable where they are.

SQLite has no partitions: every function here does nothing there.
"""

import datetime as dt
import logging

from django.db import connection, transaction
from django.utils import timezone

log = logging.getLogger(__name__)

TABLE = "audit_auditevent"
DEFAULT = f"{TABLE}_default"
MONTHS_AHEAD = 3


def partition_name(month: dt.date) -> str:
    return f"{TABLE}_{month.year:04d}_{month.month:02d}"


def month_start(when: dt.datetime | dt.date) -> dt.date:
    return dt.date(when.year, when.month, 1)


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    months, month = [], month_start(first)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def months_to_cover(since: dt.date, today: dt.date, ahead: int = MONTHS_AHEAD) -> list[dt.date]:
    """The months that need a partition: from ``since``'s month to ``ahead`` months after
    ``today``'s."""
    last = month_start(today)
    for _ in range(ahead):
        last = next_month(last)
    return months_between(since, last)


def existing(cursor) -> set[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass",
        [TABLE],
    )
    return {name for (name,) in cursor.fetchall()}


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass", [TABLE])
        return cursor.fetchone() is not None


# Adds one month's partition. SECURITY DEFINER, made by the migration as the schema's
# owner: the application's role cannot create tables (deploy/postgres/app-role.psql), yet
# beat, running as that role, must add the months ahead; this function lets it do that
# and nothing else. The name and bounds are built here from a date, never from text.
ADD_MONTH_FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_add_month(month date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    name text := '{TABLE}_' || to_char(first, 'YYYY_MM');
BEGIN
    -- A month of the Common Era the portal can have events in: a date BC (its name
    -- would carry no era) or far off could take a real month's name.
    IF month IS NULL OR month < DATE '1970-01-01' OR month >= DATE '10000-01-01' THEN
        RAISE EXCEPTION 'audit_add_month: % is not a month the trail can hold', month;
    END IF;
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF {TABLE} FOR VALUES FROM (%L) TO (%L)',
        name, first::timestamp AT TIME ZONE 'UTC', (first + interval '1 month')::timestamp AT TIME ZONE 'UTC'
    );
    RETURN true;
END;
$$;
"""  # noqa: S608 - the table's name is the constant above


def create_month(cursor, month: dt.date) -> bool:
    """One month's partition, from its first instant to the next month's (UTC); False
    when it is there already."""
    cursor.execute("SELECT audit_add_month(%s)", [month])
    return cursor.fetchone()[0]


def ensure_months(*, since: dt.date | None = None, ahead: int = MONTHS_AHEAD) -> list[str]:
    """Add the partitions missing from ``since`` (this month by default) to ``ahead``
    months from now; returns the names added. Idempotent; a no-op off PostgreSQL or
    before the trail is partitioned."""
    if not is_partitioned():
        return []
    today = timezone.now().date()
    added = []
    with connection.cursor() as cursor:
        have = existing(cursor)
        for month in months_to_cover(since or today, today, ahead):
            if partition_name(month) in have:
                continue
            try:
                with transaction.atomic():
                    made = create_month(cursor, month)
            except Exception as error:
                # Most often: that month's events already sit in the DEFAULT partition.
                log.warning(
                    "audit partition for %s not added: %s", month.strftime("%Y-%m"), type(error).__name__
                )
                continue
            if made:
                added.append(partition_name(month))
    if added:
        log.info("audit partitions added: %s", ", ".join(added))
    return added


def months_ready() -> int | None:
    """How many whole months ahead of this one have a partition (None off PostgreSQL
    or before partitioning): shown on the health endpoint, so a beat that stopped
    adding months is seen before events start falling into the DEFAULT partition."""
    if not is_partitioned():
        return None
    with connection.cursor() as cursor:
        have = existing(cursor)
    count, month = 0, next_month(month_start(timezone.now().date()))
    while partition_name(month) in have:
        count += 1
        month = next_month(month)
    return count
