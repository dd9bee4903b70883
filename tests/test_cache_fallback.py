"""With the Redis cache down, sign-in still works and its limits still hold: the counters
move to the database's cache table (config.cache), and /healthz says so. The Redis here
is a real URL where nothing listens (refused at once, as when Redis is down)."""

import json

import pytest
from django.core.cache import caches
from django.test import override_settings

from tests.personas import PASSWORD, PatientUserFactory

DOWN = {
    "default": {
        "BACKEND": "config.cache.RedisWithFallback",
        "LOCATION": "redis://127.0.0.1:1/1",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    },
    "fallback": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "portal_cache"},
}


def sign_in(client, email: str, password: str):
    return client.post("/accounts/login/", {"login": email, "password": password})


@pytest.mark.django_db
@override_settings(CACHES=DOWN)
def test_with_redis_down_sign_in_works_and_its_limits_still_hold(client):
    caches["fallback"].clear()
    person = PatientUserFactory(email="steady@example.com", verified_email=True)
    for _ in range(5):  # five wrong passwords for the account: allauth's per-account limit
        assert sign_in(client, person.email, "not-the-password").status_code == 200
    locked = sign_in(client, person.email, PASSWORD)
    assert locked.status_code in (200, 429)
    assert "_auth_user_id" not in client.session  # the limit held, counted in the database
    other = PatientUserFactory(email="other@example.com", verified_email=True)
    signed_in = sign_in(client, other.email, PASSWORD)
    assert signed_in.status_code == 302, signed_in.content[:300]
    assert client.session["_auth_user_id"] == str(other.pk)


@pytest.mark.django_db
@override_settings(CACHES=DOWN)
def test_healthz_says_the_database_is_counting(client):
    body = json.loads(client.get("/healthz").content)
    assert body["cache"] == "database"
    assert client.get("/healthz").status_code == 200
