"""What a caller asked for is never logged or audited when it looks like an NHS number:
the development server's request lines (django.server), Django's request errors
(django.request) and the audit trail's note of a refused attempt all mask it."""

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db.models import Max
from django.test import RequestFactory
from django.utils.log import log_response

from audit.models import AuditEvent
from tests.api.test_fhir_api import ADA_NHS, as_user
from tests.api.test_fhir_api import net as net  # the shared network, found by name

REPO = Path(__file__).resolve().parent.parent
# The ways a mistaken request may carry Ada's NHS number, and what each looks like in a log.
ASKED = [
    (f"/fhir/Patient?identifier={ADA_NHS}", ADA_NHS),
    ("/fhir/Patient?identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C943+476+5919", "943+476+5919"),
    ("/fhir/Patient/943%20476%205919", "943%20476%205919"),
    (f"/fhir/Condition/{ADA_NHS[:3]}-{ADA_NHS[3:6]}-{ADA_NHS[6:]}", "943-476-5919"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runserver_request_lines_carry_no_nhs_number(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "AUDIT_WITNESS_PATH": str(tmp_path / "audit-witness.log"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CELERY_BROKER_URL", None)
    log = (tmp_path / "stderr.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, Path(log.name).read_text()[-2000:]
                assert time.monotonic() < deadline, "runserver did not start"
                time.sleep(0.2)
        for path, _ in ASKED:
            with pytest.raises(urllib.error.HTTPError):  # refused: not signed in, or not in a URL
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30)
        # The server logs a request once its answer has gone: wait for the last line.
        while Path(log.name).read_text().count('"GET ') < len(ASKED) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    logged = Path(log.name).read_text()
    assert '"GET /fhir/Patient?identifier=********** HTTP/1.1" 40' in logged  # still logged, masked
    for _, as_sent in ASKED:
        assert as_sent not in logged
    assert ADA_NHS not in logged


def test_django_request_errors_carry_no_nhs_number(caplog):
    request = RequestFactory().get(f"/fhir/Patient/{ADA_NHS}", {"identifier": "943 476 5919"})
    response = type("Response", (), {"status_code": 500, "_has_been_logged": False})()
    with caplog.at_level(logging.ERROR, logger="django.request"):
        log_response("Internal Server Error: %s", request.get_full_path(), response=response, request=request)
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Internal Server Error: /fhir/Patient/**********?identifier=**********"
    assert "5919" not in caplog.text


def test_a_refused_read_by_an_nhs_number_is_audited_without_it(client, net):
    as_user(client, net, "trust")
    before = AuditEvent.objects.aggregate(last=Max("seq"))["last"] or 0  # numbers run on across tests
    for path in (
        f"/fhir/Patient/{ADA_NHS}",
        "/fhir/Condition/943-476-5919",
        f"/fhir/Observation/{ADA_NHS}/_history/1",
    ):
        assert client.get(path).status_code == 404
    refused = AuditEvent.objects.filter(seq__gt=before)
    assert refused.count() == 3
    assert {e.outcome for e in refused} == {"deny"}
    assert {e.patient_id for e in refused} == {None}
    for event in refused:
        stored = json.dumps(event.detail) + event.reason
        assert "5919" not in stored
        assert event.detail["requested"] == "**********"


def test_a_refused_emergency_access_by_an_nhs_number_is_audited_without_it(net):
    from consent.policy import NotFound, actor_for
    from consent.services import declare_break_glass

    actor = actor_for(net["people"]["trust"])
    with pytest.raises(NotFound):
        declare_break_glass(actor=actor, patient_id="943 476 5919", reason_code="x", reason_text="y")
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.action, event.outcome, event.detail) == (
        "breakglass.open",
        "deny",
        {"requested": "**********"},
    )
