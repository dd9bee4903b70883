"""Shared fixtures: the shared FHIR samples, the organisations that send data, and the
personas several test modules act as (made by the factories in tests/personas.py)."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO.parent / "shared" / "fhir-samples"


@pytest.fixture
def samples() -> Path:
    """../shared/fhir-samples, or a skip when this checkout has no ../shared beside it."""
    if not SAMPLES.is_dir():
        pytest.skip("../shared/fhir-samples is not beside this checkout")
    return SAMPLES


@pytest.fixture
def gp(db):
    from phr.models import Organisation, OrganisationKind

    return Organisation.objects.create(
        ods_code="A10001", name="Riverside Surgery", kind=OrganisationKind.GP_PRACTICE
    )


@pytest.fixture
def hospital(db):
    from phr.models import Organisation, OrganisationKind

    return Organisation.objects.create(
        ods_code="RX100", name="City Teaching Hospitals", kind=OrganisationKind.ACUTE_TRUST
    )


@pytest.fixture
def mental_health_trust(db):
    from phr.models import Organisation, OrganisationKind

    return Organisation.objects.create(
        ods_code="RX200", name="City Mind Partnership", kind=OrganisationKind.MENTAL_HEALTH_TRUST
    )


@pytest.fixture
def dr_gp(gp):
    """A clinician at the GP practice, with a second factor (tests/personas.py)."""
    from tests.personas import ClinicianFactory

    return ClinicianFactory(email="dr.gp@example.com", organisation=gp)


@pytest.fixture
def ig_officer(db):
    """The network's information governance officer, with a second factor."""
    from tests.personas import IGOfficerFactory

    return IGOfficerFactory(email="ig@example.com")


@pytest.fixture(autouse=True)
def tasks_run_in_process(request):
    """Unit tests run Celery tasks in-process even when a broker is configured; only the
    integration suite sends them to a live worker."""
    if request.node.get_closest_marker("integration"):
        yield
        return
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2 is slow by design; tests that create many users do not need it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def subprocess_audit_witness(tmp_path_factory):
    """Processes the tests start (runserver, manage.py commands) witness their audit
    chains in this session's temporary folder, not in the running portal's under var/."""
    before = os.environ.get("AUDIT_WITNESS_PATH")
    os.environ["AUDIT_WITNESS_PATH"] = str(tmp_path_factory.mktemp("witness") / "audit-witness.log")
    yield
    if before is None:
        del os.environ["AUDIT_WITNESS_PATH"]
    else:
        os.environ["AUDIT_WITNESS_PATH"] = before


@pytest.fixture(autouse=True)
def audit_witness(settings, tmp_path):
    """Each test's audit chain has a witness file of its own: the default, under var/, is
    the running portal's, and its heads are not this test database's."""
    settings.AUDIT_WITNESS_PATH = str(tmp_path / "audit-witness.log")
    return settings.AUDIT_WITNESS_PATH


@pytest.fixture(autouse=True)
def empty_cache():
    """allauth's rate limits and used authenticator codes, and the share links' passcode
    attempts, live in the cache, which outlives a test (and is shared with a live
    server's thread): each test starts as if it were the first."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
