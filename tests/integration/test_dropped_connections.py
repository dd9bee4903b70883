"""A database connection lost under the portal, on PostgreSQL, with no mocks.

The request's backend is really terminated (pg_terminate_backend, from a second
connection) just before a chosen statement, as a database restart or a failover would
end it. Requests go through Django's WSGI handler as a server's worker calls it, so that
the connection handling between requests (CONN_MAX_AGE, the health checks) is the one
production has; the test client switches that off.
"""

import io
import logging

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import OperationalError, connection, connections, transaction
from django.test import Client

from accounts.models import Notification
from audit.models import AuditEvent
from config.reconnect import connection_lost
from phr.models import RecordEntry
from tests.feeds import one_problem
from tests.personas import PatientUserFactory

pytestmark = [
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="a dropped connection needs PostgreSQL: set DATABASE_URL to a postgres:// URL",
    ),
    pytest.mark.django_db(transaction=True),
]

EVENT_WRITTEN = 'INSERT INTO "audit_auditevent"'


def terminate(pid: int) -> None:
    """Ends a backend from another connection, and waits until it has gone."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
            assert cursor.fetchone()[0], "the backend did not end"
    finally:
        other.close()


class Drop:
    """Records each statement of the connection and, just before the first one `when`
    picks, terminates the connection's backend (once)."""

    def __init__(self, when):
        self.when = when
        self.statements: list[str] = []
        self.at: int | None = None

    def __call__(self, execute, sql, params, many, context):
        self.statements.append(sql)
        if self.at is None and self.when(sql, self.statements):
            self.at = len(self.statements)
            terminate(context["connection"].connection.info.backend_pid)
        return execute(sql, params, many, context)

    def after_drop(self) -> list[str]:
        return self.statements[self.at :]


def first_statement(sql, seen):
    return True


def first_read_of_the_record(sql, seen):
    return '"phr_recordentry"' in sql


def first_after_the_audit_event(sql, seen):
    return any(EVENT_WRITTEN in earlier for earlier in seen[:-1])


def first_write_of_the_inbox(sql, seen):
    return sql.startswith('UPDATE "accounts_notification"')


def request(method: str, path: str, cookies: dict, body: bytes = b"") -> tuple[int, str]:
    """One request through the WSGI handler, closed as a WSGI server closes it."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "HTTP_COOKIE": "; ".join(f"{name}={value}" for name, value in cookies.items()),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }
    status = []
    result = WSGIHandler()(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        content = b"".join(result).decode()
    finally:
        result.close()  # request_finished: Django closes or keeps the connection here
    return int(status[0].split()[0]), content


@pytest.fixture
def ada(gp):
    patient = one_problem(gp)
    return PatientUserFactory(email="ada@example.com", patient=patient)


@pytest.fixture
def cookies(ada):
    """Ada signed in; a CSRF secret sent as cookie and form field alike."""
    client = Client()
    client.force_login(ada)
    return {"sessionid": client.cookies["sessionid"].value, "csrftoken": "a" * 32}


@pytest.fixture
def item_page(ada):
    entry = RecordEntry.objects.get(resource_type="Condition")
    return f"/record/items/{entry.pk}/"


def reads_by(user) -> int:
    return AuditEvent.objects.filter(actor_id=user.pk, action__startswith="record.").count()


def dropped(when, method: str, path: str, cookies: dict, body: bytes = b"") -> tuple[int, str, Drop]:
    drop = Drop(when)
    with connection.execute_wrapper(drop):
        status, content = request(method, path, cookies, body)
    assert drop.at is not None, "the connection was never dropped"
    return status, content, drop


# --- A read that has disclosed nothing runs again ---------------------------------------


@pytest.mark.parametrize("when", [first_statement, first_read_of_the_record])
def test_a_read_whose_connection_drops_before_it_discloses_is_answered_once(when, ada, cookies, item_page):
    status, content, drop = dropped(when, "GET", item_page, cookies)

    assert status == 200
    assert "Asthma" in content
    # As many events as the same page read undisturbed makes (the item and the patient's
    # own details): one per disclosure, none twice.
    after_drop = reads_by(ada)
    assert request("GET", item_page, cookies)[0] == 200
    assert after_drop == reads_by(ada) - after_drop >= 1
    # It ran again: the statement that met the dead connection was sent again, on a new one.
    assert drop.statements[drop.at - 1] in drop.after_drop()


def test_a_fhir_read_whose_connection_drops_is_answered_once(ada, cookies):
    """FHIR leaves a lost connection to the same retry as pages (its own error handling
    used to answer it with a 500 OperationOutcome)."""
    patient = RecordEntry.objects.get(resource_type="Condition").patient
    status, content, _ = dropped(
        first_read_of_the_record, "GET", f"/fhir/Patient/{patient.pk}/$everything", cookies
    )

    assert status == 200, content[:300]
    assert "Asthma" in content
    assert reads_by(ada) == 1


def test_a_read_that_drops_after_its_audit_event_answers_503_and_is_not_run_again(ada, cookies, item_page):
    status, content, drop = dropped(first_after_the_audit_event, "GET", item_page, cookies)

    assert status == 503
    assert "Try again in a moment" in content
    assert "may not have been saved" not in content
    assert reads_by(ada) == 1  # recorded once, and not again by a second run
    assert not any(EVENT_WRITTEN in sql for sql in drop.after_drop())


# --- A write never runs again ----------------------------------------------------------


@pytest.mark.parametrize("when", [first_statement, first_write_of_the_inbox])
def test_a_write_whose_connection_drops_answers_503_and_is_not_run_again(when, ada, cookies):
    Notification.objects.create(user=ada, title="Your correction request", body="It was accepted.")

    status, content, drop = dropped(when, "POST", "/inbox/", cookies, b"csrfmiddlewaretoken=" + b"a" * 32)

    assert status == 503
    assert "may not have been saved" in content
    assert drop.after_drop() == []  # nothing was sent again
    assert Notification.objects.get(user=ada).read_at is None  # rolled back with the connection


def test_the_same_write_marks_the_inbox_read_when_nothing_drops(ada, cookies):
    Notification.objects.create(user=ada, title="Your correction request", body="It was accepted.")

    status, _ = request("POST", "/inbox/", cookies, b"csrfmiddlewaretoken=" + b"a" * 32)

    assert status == 302
    assert Notification.objects.get(user=ada).read_at is not None


# --- Between requests: the health check ---------------------------------------------------


@pytest.fixture
def kept_connection():
    """The connection is kept between requests as in production (the tests' default is
    CONN_MAX_AGE=0); yields the connection's settings to change, restored afterwards."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = 60
    yield connection.settings_dict
    connection.close()
    connection.settings_dict.update(saved)


@pytest.mark.parametrize("health_checks", [True, False])
def test_a_kept_connection_dropped_between_requests_is_replaced(
    health_checks, kept_connection, ada, cookies, item_page, caplog
):
    kept_connection["CONN_HEALTH_CHECKS"] = health_checks
    connection.close()  # read when the connection opens
    assert request("GET", item_page, cookies)[0] == 200
    kept = connection.connection.info.backend_pid
    terminate(kept)

    with caplog.at_level(logging.WARNING, logger="config.reconnect"):
        status, _ = request("GET", item_page, cookies)

    assert status == 200
    assert connection.connection.info.backend_pid != kept
    retried = [r for r in caplog.records if r.name == "config.reconnect"]
    # With health checks the dead connection is replaced before the request uses it; without
    # them (the finding: a 500 per worker per drop) only the middleware's second run saves it.
    assert len(retried) == (0 if health_checks else 1)


# --- Which errors are a lost connection -----------------------------------------------------


def error_of(sql: str, params=()) -> OperationalError:
    with pytest.raises(OperationalError) as raised, connection.cursor() as cursor:
        cursor.execute(sql, params)
    return raised.value


def test_a_statement_timeout_is_not_a_lost_connection():
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 50")
        error = error_of("SELECT pg_sleep(2)")
        assert not connection_lost(error)
        transaction.set_rollback(True)


def test_a_lock_timeout_is_not_a_lost_connection(ada):
    holder = connections.create_connection("default")
    try:
        holder.set_autocommit(False)
        with holder.cursor() as cursor:
            cursor.execute("SELECT 1 FROM accounts_user WHERE id = %s FOR UPDATE", [ada.pk])
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = 50")
            error = error_of("SELECT 1 FROM accounts_user WHERE id = %s FOR UPDATE", [ada.pk])
            assert not connection_lost(error)
            transaction.set_rollback(True)
    finally:
        holder.rollback()
        holder.close()


def test_a_terminated_backend_is_a_lost_connection():
    connection.ensure_connection()
    terminate(connection.connection.info.backend_pid)
    error = error_of("SELECT 1")
    assert connection_lost(error)
    connection.close()
