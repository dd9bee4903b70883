"""Walks every URL pattern as every role and fails on a view that reads clinical content
(an entry's JSON or display text, or a version's JSON) anywhere but through the policy,
on any server error, and on a patient URL that answers a forbidden patient differently
from a missing one."""

import re
import uuid

import pytest
from allauth.mfa.totp.internal.auth import TOTP
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver

from accounts.models import Membership, PatientLink, Role, User
from consent.models import BreakGlass, ConsentChoice, Decision, Scope
from consent.policy import inside_policy
from phr.ingest import ingest_documents
from phr.models import Organisation, OrganisationKind, Patient

CLINICAL_COLUMNS = re.compile(r'"phr_recordentry"\."(json|display)"|"phr_entryversion"\."json"')
SECRET = "NBSWY3DPORVXA4TPMFZWI3LPNRXXEYLM"
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def all_patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for item in resolver.url_patterns:
        if isinstance(item, URLResolver):
            namespace = item.namespace
            yield from (
                (f"{namespace}:{name}" if namespace and name and ":" not in name else name, pattern)
                for name, pattern in all_patterns(item, prefix)
            )
        elif isinstance(item, URLPattern):
            yield item.name, item


@pytest.fixture
def world(db):
    gp = Organisation.objects.create(
        ods_code="A10001", name="Riverside Surgery", kind=OrganisationKind.GP_PRACTICE
    )
    denied = Organisation.objects.create(
        ods_code="RD300", name="Denied Trust", kind=OrganisationKind.ACUTE_TRUST
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "pa",
                    "identifier": [{"system": NHS, "value": "9434765919"}],
                }
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "c1",
                    "subject": {"reference": "Patient/pa"},
                    "code": {
                        "coding": [{"system": "http://snomed.info/sct", "code": "38341003"}],
                        "text": "Hypertensive disorder",
                    },
                    "category": [{"coding": [{"code": "problem-list-item"}]}],
                }
            },
        ],
    }
    assert ingest_documents([("w", bundle)], organisation=gp).rejected == 0
    third = Organisation.objects.create(ods_code="RT400", name="Third Trust", kind=OrganisationKind.OTHER)
    other = {"resourceType": "Patient", "id": "pb", "identifier": [{"system": NHS, "value": "9990000018"}]}
    assert ingest_documents([("b", other)], organisation=third).rejected == 0
    pa = Patient.objects.get(nhs_number="9434765919")
    pb = Patient.objects.get(nhs_number="9990000018")
    ConsentChoice.objects.create(patient=pa, scope=Scope.NETWORK, decision=Decision.DENY)
    ConsentChoice.objects.create(patient=pb, scope=Scope.NETWORK, decision=Decision.DENY)

    def user(email, role, org=None, patient=None):
        u = User.objects.create_user(email, "pw-for-tests-only", role=role)
        if org:
            Membership.objects.create(user=u, organisation=org)
        if patient:
            PatientLink.objects.create(user=u, patient=patient, method="demo")
        if role != Role.PATIENT:
            TOTP.activate(u, SECRET)
        return u

    users = {
        "anonymous": AnonymousUser(),
        "patient_a": user("a@example.com", Role.PATIENT, patient=pa),
        "patient_b": user("b@example.com", Role.PATIENT, patient=pb),
        "clin_owner": user("o@example.com", Role.CLINICIAN, org=gp),
        "clin_denied": user("d@example.com", Role.CLINICIAN, org=denied),
        "ig": user("ig@example.com", Role.IG_OFFICER),
    }
    glass = BreakGlass.objects.create(
        clinician=users["clin_owner"],
        organisation=gp,
        patient=pa,
        reason_code="emergency",
        reason_text="walk test opening",
        opened_at=pa.created_at,
        expires_at=pa.created_at,
    )
    entry = pa.entries.get(resource_type="Condition")
    return {"pa": pa, "pb": pb, "entry": entry, "users": users, "glass": glass}


def fill(pattern: URLPattern, world, patient) -> dict:
    kwargs = {}
    for name, converter in pattern.pattern.converters.items():
        kind = type(converter).__name__
        if "entry" in name:
            kwargs[name] = world["entry"].pk
        elif kind == "UUIDConverter":
            kwargs[name] = patient
        elif kind == "IntConverter":
            kwargs[name] = world["glass"].pk
        else:
            kwargs[name] = "x"
    return kwargs


def walkable():
    for name, pattern in all_patterns():
        if name is None or name.startswith("admin:"):
            continue
        yield name, pattern


@pytest.fixture
def clinical_reads():
    seen = []

    def watch(execute, sql, params, many, context):
        if CLINICAL_COLUMNS.search(sql) and not inside_policy():
            seen.append(sql[:300])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        yield seen


ROLES = ["anonymous", "patient_a", "patient_b", "clin_owner", "clin_denied", "ig"]


@pytest.mark.parametrize("role", ROLES)
def test_no_view_reads_clinical_content_outside_the_policy(world, client, role, clinical_reads):
    from django.urls import reverse

    if role != "anonymous":
        client.force_login(world["users"][role])
    walked = 0
    for name, pattern in walkable():
        for patient in (world["pa"].pk, uuid.uuid4()):
            try:
                url = reverse(name, kwargs=fill(pattern, world, patient))
            except NoReverseMatch:
                continue
            response = client.get(url)
            walked += 1
            assert response.status_code < 500, f"{url} answered {response.status_code} for {role}"
    assert walked > 20
    assert clinical_reads == [], f"clinical content read outside the policy as {role}"


@pytest.mark.parametrize("role", ROLES)
def test_patient_urls_answer_a_forbidden_patient_as_a_missing_one(world, client, role):
    from django.urls import reverse

    if role != "anonymous":
        client.force_login(world["users"][role])
    # Patient B's record: refused to everyone here but patient B; compare with nobody.
    forbidden = world["pa"].pk if role == "patient_b" else world["pb"].pk
    for name, pattern in walkable():
        if not any(type(c).__name__ == "UUIDConverter" for c in pattern.pattern.converters.values()):
            continue
        if role == "ig" and name.startswith("ig:"):
            continue  # IG may read any patient's consent and audit metadata: nothing is refused
        try:
            urls = [reverse(name, kwargs=fill(pattern, world, p)) for p in (forbidden, uuid.uuid4())]
        except NoReverseMatch:
            continue
        codes = [client.get(u).status_code for u in urls]
        assert codes[0] == codes[1], (
            f"{name} tells a forbidden patient from a missing one for {role}: {codes}"
        )


# Searches whose filters match the stored text (code=, category=): a count or a page of
# them reads clinical content, so the policy must run it, whoever asks.
FHIR_QUERIES = [
    "/fhir/Condition?_summary=count&code=38341003",
    "/fhir/Condition?_summary=count&category=problem-list-item&code=38341003",
    "/fhir/Condition?code=38341003&_elements=code",
    "/fhir/Condition?_summary=count&code=38341003&patient={pa}",
    "/fhir/Condition?category=problem-list-item&patient={pa}",
]


@pytest.mark.parametrize("role", ROLES)
def test_fhir_searches_by_code_and_category_read_only_through_the_policy(world, client, role, clinical_reads):
    if role != "anonymous":
        client.force_login(world["users"][role])
    answered = {}
    for query in FHIR_QUERIES:
        url = query.format(pa=world["pa"].pk)
        response = client.get(url)
        assert response.status_code < 500, f"{url} answered {response.status_code} for {role}"
        answered[url] = response
    assert clinical_reads == [], f"clinical content read outside the policy as {role}"
    if role in ("patient_a", "clin_owner"):  # they see the Condition: the walk reached the count
        counted = answered[f"/fhir/Condition?_summary=count&code=38341003&patient={world['pa'].pk}"]
        assert counted.status_code == 200
        assert counted.json()["total"] == 1
