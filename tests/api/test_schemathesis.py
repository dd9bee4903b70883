"""schemathesis over /api/schema/, against a live server, signed in as a linked patient:
no generated request may get a server error, and every response must match the schema.

Bounded (25 examples per operation, derandomized, no shrinking) to stay well under a
minute in the normal suite.
"""

import secrets
from collections import Counter

import pytest
import requests
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from accounts.models import Notification
from accuracy import services
from consent.models import ConsentChoice, Decision, Scope
from consent.policy import actor_for, open_record
from phr.models import Organisation, OrganisationKind
from tests.feeds import one_problem
from tests.personas import ClinicianFactory, PatientUserFactory

EXAMPLES = 25

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signed_in(live_server, gp, ig_officer):
    """A patient with a record, a notification, a choice, a correction and a look by
    staff, and an IG officer: a requests session for each, signed in to the portal."""
    Organisation.objects.create(ods_code="RX100", name="City Hospital", kind=OrganisationKind.ACUTE_TRUST)
    patient = one_problem(gp)
    user = PatientUserFactory(email="ada@example.com", patient=patient)
    Notification.objects.create(user=user, title="Welcome", body="Your record is linked")
    ConsentChoice.objects.create(patient=patient, scope=Scope.NETWORK, decision=Decision.PERMIT)
    services.submit_correction(
        actor=actor_for(user),
        entry_id=patient.entries.get(resource_type="Condition").pk,
        element="",
        proposed="Hay fever",
        reason="I have never had asthma",
        contact_preference="portal",
    )
    doctor = ClinicianFactory(email="dr@example.com", organisation=gp)
    open_record(actor_for(doctor), patient.pk).read()

    sessions = {"patient": _session(user), "ig": _session(ig_officer)}
    yield sessions["patient"], sessions["ig"]
    for session in sessions.values():
        session.close()  # before the live server stops: no connection left open to it


def _session(user) -> requests.Session:
    """A requests session carrying the user's portal session and a CSRF token."""
    client = Client()
    client.force_login(user)
    session = requests.Session()
    csrf = secrets.token_hex(16)  # 32 characters: Django accepts the unmasked secret
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    session.cookies.set("csrftoken", csrf)
    session.headers["X-CSRFToken"] = csrf
    return session


def _fuzz(base_url: str, operations, session) -> tuple[list[str], Counter]:
    """Run every operation's bounded examples; the failures in words, and the answers."""
    answered: Counter = Counter()
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            response = case.call_and_validate(
                base_url=base_url,
                session=session,
                checks=[not_a_server_error, response_schema_conformance],
            )
            answered[(case.operation.label, response.status_code // 100)] += 1

        try:
            run()
        except (Exception, BaseExceptionGroup) as failure:  # collect every failure, then report
            failures.append(f"{operation.label}: {failure}")
    return failures, answered


def test_schemathesis_finds_no_server_error_and_no_response_outside_the_schema(live_server, signed_in):
    patient, _ = signed_in
    schema = schemathesis.openapi.from_url(live_server.url + "/api/schema/?format=json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    failures, answered = _fuzz(live_server.url, operations, patient)
    assert failures == []
    # Signed in for real: each of the patient's lists answered, and a choice was saved.
    lists = {label for label, _ in answered if label.startswith("GET") and "{" not in label}
    assert len(lists) >= 6
    assert {label for label in lists if answered[(label, 2)]} == lists
    assert answered[("POST /api/v1/consent/choices/", 2)] > 0


def test_schemathesis_searches_the_audit_trail_as_an_ig_officer(live_server, signed_in):
    _, ig = signed_in
    schema = schemathesis.openapi.from_url(live_server.url + "/api/schema/?format=json")
    search = [schema["/api/v1/audit/events/"]["GET"]]
    failures, answered = _fuzz(live_server.url, search, ig)
    assert failures == []
    assert answered[("GET /api/v1/audit/events/", 2)] > 0
