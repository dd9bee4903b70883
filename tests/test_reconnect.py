"""What config.reconnect decides without a dropped connection (that is proved on
PostgreSQL in tests/integration/test_dropped_connections.py): how it knows a request has
disclosed something, which errors it does not take for a lost connection, what a lost
connection answers, and where it sits among the middlewares."""

import json
import threading

import pytest
from django.conf import settings
from django.db import DatabaseError, connection
from django.test import RequestFactory

import audit
from audit.ledger import events_recorded
from config.reconnect import CHECK_FIRST, TRY_AGAIN, connection_lost, unavailable


@pytest.mark.django_db
def test_each_audit_event_written_counts_once_in_the_thread_that_wrote_it():
    before = events_recorded()
    audit.record("test.event", actor_label="one")
    audit.record("test.event", actor_label="two")
    elsewhere = []
    reader = threading.Thread(target=lambda: elsewhere.append(events_recorded()))
    reader.start()
    reader.join()

    assert events_recorded() == before + 2
    assert elsewhere == [0]  # another worker thread's requests are not this one's


@pytest.mark.django_db
def test_an_error_on_a_connection_that_still_works_is_not_a_lost_connection():
    # An OperationalError on SQLite (a ProgrammingError on PostgreSQL, whose timeouts are
    # tested in tests/integration/test_dropped_connections.py).
    with pytest.raises(DatabaseError) as raised, connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    assert not connection_lost(raised.value)
    assert not connection_lost(ValueError("not a database error"))


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/corrections/", "application/json"),
        ("/fhir/Patient/1", "application/fhir+json"),
    ],
)
def test_a_lost_connection_answers_503_try_again_in_the_channels_language(path, content_type):
    response = unavailable(RequestFactory().get(path))

    assert response.status_code == 503
    assert response["Content-Type"].startswith(content_type)
    assert response["Retry-After"] == "1"
    assert TRY_AGAIN in response.content.decode()
    assert CHECK_FIRST not in response.content.decode()


def test_a_page_whose_connection_was_lost_is_the_styled_page_saying_try_again():
    read = unavailable(RequestFactory().get("/record/"))
    write = unavailable(RequestFactory().post("/inbox/"))
    assert (read.status_code, write.status_code) == (503, 503)
    assert read["Content-Type"].startswith("text/html")
    assert 'class="nhsuk-header' in read.content.decode()
    assert "Try again in a moment" in read.content.decode()
    assert "may not have been saved" not in read.content.decode()
    assert "may not have been saved" in write.content.decode()


def test_a_write_is_told_to_check_before_sending_again():
    response = unavailable(RequestFactory().post("/api/v1/corrections/"))
    assert json.loads(response.content) == {"detail": f"{TRY_AGAIN} {CHECK_FIRST}"}


def test_the_retry_wraps_the_sessions_load_and_every_view():
    order = settings.MIDDLEWARE
    reconnect = order.index("config.reconnect.ReconnectMiddleware")
    # After the user is attached (lazily), before anything that loads it or runs the view.
    assert order.index("django.contrib.auth.middleware.AuthenticationMiddleware") < reconnect
    assert reconnect < order.index("accounts.middleware.SessionTimeoutMiddleware")
    assert reconnect < order.index("allauth.account.middleware.AccountMiddleware")
    assert not settings.DATABASES["default"].get("ATOMIC_REQUESTS")


def test_kept_connections_are_health_checked_before_each_request_uses_them():
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
