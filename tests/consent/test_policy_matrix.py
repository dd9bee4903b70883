"""The access matrix: every role x every consent state x every function that reads
clinical data, asserting exactly what each one sees, and that "missing" and "not
allowed" are indistinguishable.

The record of patient A holds four entries:
  o-gen  owned by O (the GP practice), general
  o-mh   owned by O, mental health
  x-gen  owned by X (the hospital), general
  x-sex  owned by X, sexual health: a category kept to its holder by default
Organisation P always has an explicit "share with P" choice; D is the organisation a
state may deny; the clinician at D is the one who may break the glass.
"""

import uuid
from datetime import timedelta

import pytest
from django.db.models import Max
from django.utils import timezone

from accounts.models import ProxyAccess, User
from audit.models import AuditEvent
from consent.models import BreakGlass, ConsentChoice, Decision, Scope
from consent.policy import Action, NotFound, actor_for, decide, open_record, system_actor
from phr.models import Organisation, OrganisationKind, Patient
from tests.feeds import patient_resource, send
from tests.personas import ClinicianFactory, PatientUserFactory

SNOMED = "http://snomed.info/sct"
ALL = {"o-gen", "o-mh", "x-gen", "x-sex"}
NOT_FOUND = "not found"


def condition(cid, code, display, security=None):
    resource = {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": "Patient/pa"},
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
    }
    if security:
        resource["meta"] = {
            "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": security}]
        }
    return resource


@pytest.fixture
def world(ig_officer):
    orgs = {
        key: Organisation.objects.create(ods_code=code, name=name, kind=kind)
        for key, code, name, kind in [
            ("O", "A10001", "Owner Surgery", OrganisationKind.GP_PRACTICE),
            ("X", "RX100", "City Hospital", OrganisationKind.ACUTE_TRUST),
            ("P", "RP200", "Permitted Community Services", OrganisationKind.COMMUNITY_SERVICES),
            ("D", "RD300", "Denied Ambulance Service", OrganisationKind.AMBULANCE),
        ]
    }
    send(
        orgs["O"],
        patient_resource("pa", "9990000018"),
        condition("o-gen", "38341003", "Hypertensive disorder"),
        condition("o-mh", "35489007", "Depressive disorder"),
    )
    send(
        orgs["X"],
        patient_resource("pa", "9990000018"),
        condition("x-gen", "195967001", "Asthma"),
        condition("x-sex", "105629000", "Chlamydial infection", security="SEX"),
    )
    send(orgs["X"], patient_resource("pb", "9990000026"))
    pa = Patient.objects.get(nhs_number="9990000018")
    pb = Patient.objects.get(nhs_number="9990000026")
    users = {
        "patient_a": PatientUserFactory(email="a@example.com", patient=pa),
        "patient_b": PatientUserFactory(email="b@example.com", patient=pb),
        "clin_owner": ClinicianFactory(email="o@example.com", organisation=orgs["O"]),
        "clin_perm": ClinicianFactory(email="p@example.com", organisation=orgs["P"]),
        "clin_denied": ClinicianFactory(email="d@example.com", organisation=orgs["D"]),
        "ig": ig_officer,
    }
    ConsentChoice.objects.create(
        patient=pa, scope=Scope.ORGANISATION, organisation=orgs["P"], decision=Decision.PERMIT
    )
    # Someone patient A chose to act for them, who may see the record only.
    users["proxy_a"] = PatientUserFactory(email="proxy@example.com")
    grant = ProxyAccess.objects.create(
        patient=pa,
        proxy=users["proxy_a"],
        relationship=ProxyAccess.Relationship.CHOSEN,
        reason="Helps with appointments",
        ends_at=timezone.now() + timedelta(days=30),
        granted_by=users["patient_a"],
    )
    return {"orgs": orgs, "pa": pa, "pb": pb, "users": users, "grant": grant}


def actor(world, role):
    if role == "anonymous":
        from django.contrib.auth.models import AnonymousUser

        return actor_for(AnonymousUser())
    if role == "system_p":
        return system_actor(world["orgs"]["P"], "p-system")
    if role == "proxy_a":
        return actor_for(User.objects.get(pk=world["users"][role].pk), proxy_grant=world["grant"].pk)
    return actor_for(User.objects.get(pk=world["users"][role].pk))


def apply_state(world, state):
    pa, orgs, now = world["pa"], world["orgs"], timezone.now()
    deny = Decision.DENY
    if state == "org_denied":
        ConsentChoice.objects.create(
            patient=pa, scope=Scope.ORGANISATION, organisation=orgs["D"], decision=deny
        )
    elif state == "category_denied":
        ConsentChoice.objects.create(
            patient=pa, scope=Scope.CATEGORY, category="mental_health", decision=deny
        )
    elif state == "expired":
        choice = ConsentChoice(
            patient=pa,
            scope=Scope.ORGANISATION,
            organisation=orgs["D"],
            decision=deny,
            until=now - timedelta(minutes=1),
        )
        choice.save()
    elif state == "sexual_health_shared_with_p":
        ConsentChoice.objects.create(
            patient=pa,
            scope=Scope.ORGANISATION_CATEGORY,
            organisation=orgs["P"],
            category="sexual_health",
            decision=Decision.PERMIT,
        )
    elif state == "sexual_health_shared":
        ConsentChoice.objects.create(
            patient=pa, scope=Scope.CATEGORY, category="sexual_health", decision=Decision.PERMIT
        )
        ConsentChoice.objects.create(
            patient=pa, scope=Scope.ORGANISATION, organisation=orgs["D"], decision=deny
        )
    elif state == "network_shared":
        ConsentChoice.objects.create(patient=pa, scope=Scope.NETWORK, decision=Decision.PERMIT)
    elif state in ("withdrawn", "bg_open", "bg_lapsed"):
        ConsentChoice.objects.create(patient=pa, scope=Scope.NETWORK, decision=deny)
    if state in ("bg_open", "bg_lapsed"):
        opened = now - timedelta(minutes=5 if state == "bg_open" else 120)
        BreakGlass.objects.create(
            clinician=world["users"]["clin_denied"],
            organisation=orgs["D"],
            patient=pa,
            reason_code="emergency",
            reason_text="unconscious in the ambulance",
            opened_at=opened,
            expires_at=opened + timedelta(minutes=60),
        )


# x-sex is sexual health, a category kept to its holder (X) by default: only a choice
# naming the category shares it; "share with P" or sharing everything does not.
NO_SEX = ALL - {"x-sex"}
WITHDRAWN = {
    "clin_owner": {"o-gen", "o-mh"},
    "clin_perm": NO_SEX,
    "system_p": NO_SEX,
    "clin_denied": NOT_FOUND,
}
EXPECTED = {
    "default": {"clin_owner": NO_SEX, "clin_perm": NO_SEX, "clin_denied": NO_SEX, "system_p": NO_SEX},
    "org_denied": {"clin_owner": NO_SEX, "clin_perm": NO_SEX, "clin_denied": NOT_FOUND, "system_p": NO_SEX},
    "category_denied": {
        "clin_owner": NO_SEX,  # O owns o-mh
        "clin_perm": {"o-gen", "x-gen"},  # "share with P" and "not mental health" tie: deny wins
        "clin_denied": {"o-gen", "x-gen"},
        "system_p": {"o-gen", "x-gen"},
    },
    "expired": {"clin_owner": NO_SEX, "clin_perm": NO_SEX, "clin_denied": NO_SEX, "system_p": NO_SEX},
    "withdrawn": WITHDRAWN,
    "bg_open": {**WITHDRAWN, "clin_denied": ALL},  # emergency access sees every category
    "bg_lapsed": WITHDRAWN,
    # The patient shares sexual health with P by name: P alone sees it.
    "sexual_health_shared_with_p": {
        "clin_owner": NO_SEX,
        "clin_perm": ALL,
        "clin_denied": NO_SEX,
        "system_p": ALL,
    },
    # The patient shares sexual health with every organisation, but not with D at all.
    "sexual_health_shared": {"clin_owner": ALL, "clin_perm": ALL, "clin_denied": NOT_FOUND, "system_p": ALL},
    # Sharing everything with the network does not reach a category kept to its holder.
    "network_shared": {"clin_owner": NO_SEX, "clin_perm": NO_SEX, "clin_denied": NO_SEX, "system_p": NO_SEX},
}
# A proxy sees what the patient sees, but never the sensitive records (x-sex) nor, by
# default, mental health (o-mh).
ALWAYS = {
    "patient_a": ALL,
    "proxy_a": NO_SEX - {"o-mh"},
    "patient_b": NOT_FOUND,
    "ig": NOT_FOUND,
    "anonymous": NOT_FOUND,
}
ROLES = [*ALWAYS, "clin_owner", "clin_perm", "clin_denied", "system_p"]


def visible(world, role, action=Action.READ_RECORD):
    try:
        access = open_record(actor(world, role), world["pa"].pk, action=action)
    except NotFound:
        return NOT_FOUND
    return {e.fhir_id for e in access.read() if e.resource_type == "Condition"}


@pytest.mark.parametrize("state", list(EXPECTED))
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", [Action.READ_RECORD, Action.SEARCH_RECORD, Action.EXPORT_RECORD])
def test_each_role_sees_exactly_what_the_state_permits(world, role, state, action):
    apply_state(world, state)
    expected = ALWAYS.get(role) or EXPECTED[state][role]

    assert visible(world, role, action) == expected


@pytest.mark.parametrize("state", list(EXPECTED))
@pytest.mark.parametrize("role", ROLES)
def test_reading_one_entry_agrees_with_the_list_and_hides_the_rest_alike(world, role, state):
    apply_state(world, state)
    expected = ALWAYS.get(role) or EXPECTED[state][role]
    entries = {e.fhir_id: e.pk for e in world["pa"].entries.filter(resource_type="Condition")}
    try:
        access = open_record(actor(world, role), world["pa"].pk)
    except NotFound:
        assert expected == NOT_FOUND
        return
    for name, pk in entries.items():
        if name in expected:
            assert access.read_one(pk).fhir_id == name
        else:
            with pytest.raises(NotFound):
                access.read_one(pk)
    with pytest.raises(NotFound):
        access.read_one(uuid.uuid4())
    with pytest.raises(NotFound):
        access.read_one("not-a-uuid")


@pytest.mark.parametrize("role", ROLES)
def test_a_missing_patient_and_a_forbidden_one_raise_the_same(world, role):
    # Patient B withdraws sharing: nobody but B may read B's record, and for everyone
    # else it looks exactly like a patient that does not exist.
    ConsentChoice.objects.create(patient=world["pb"], scope=Scope.NETWORK, decision=Decision.DENY)
    forbidden = world["pa"].pk if role == "patient_b" else world["pb"].pk
    outcomes = []
    for patient_id in (uuid.uuid4(), "nonsense", forbidden):
        with pytest.raises(NotFound) as refused:
            open_record(actor(world, role), patient_id)
        outcomes.append((type(refused.value), refused.value.args))
    assert len(set(outcomes)) == 1


def test_opt_in_shares_nothing_until_the_patient_grants_it(world, settings):
    settings.CONSENT_MODEL = "opt-in"
    assert visible(world, "clin_denied") == NOT_FOUND
    assert visible(world, "clin_owner") == {"o-gen", "o-mh"}
    assert visible(world, "clin_perm") == NO_SEX  # "share with P" (sexual health stays with X)
    ConsentChoice.objects.create(
        patient=world["pa"], scope=Scope.CATEGORY, category="general", decision=Decision.PERMIT
    )
    assert visible(world, "clin_denied") == {"o-gen", "x-gen"}


def test_the_most_specific_choice_wins(world):
    pa, orgs = world["pa"], world["orgs"]
    ConsentChoice.objects.create(patient=pa, scope=Scope.NETWORK, decision=Decision.DENY)
    ConsentChoice.objects.create(
        patient=pa, scope=Scope.ORGANISATION, organisation=orgs["D"], decision=Decision.PERMIT
    )
    ConsentChoice.objects.create(
        patient=pa,
        scope=Scope.ORGANISATION_CATEGORY,
        organisation=orgs["D"],
        category="sexual_health",
        decision=Decision.DENY,
    )
    assert visible(world, "clin_denied") == {"o-gen", "o-mh", "x-gen"}


def test_a_later_choice_replaces_an_earlier_one_and_default_withdraws_it(world):
    pa, orgs = world["pa"], world["orgs"]
    ConsentChoice.objects.create(
        patient=pa, scope=Scope.ORGANISATION, organisation=orgs["D"], decision=Decision.DENY
    )
    assert visible(world, "clin_denied") == NOT_FOUND
    ConsentChoice.objects.create(
        patient=pa, scope=Scope.ORGANISATION, organisation=orgs["D"], decision=Decision.DEFAULT
    )
    assert visible(world, "clin_denied") == NO_SEX
    assert ConsentChoice.objects.filter(patient=pa).count() == 3  # history kept


def test_an_owner_can_withhold_an_item_from_the_patient_with_a_reason(world):
    from consent.services import release_withholding, withhold_from_patient

    o_mh = world["pa"].entries.get(fhir_id="o-mh")
    held = withhold_from_patient(
        actor=actor(world, "clin_owner"),
        entry=o_mh,
        reason="Would cause serious harm if read before the appointment",
    )
    assert visible(world, "patient_a") == ALL - {"o-mh"}
    assert visible(world, "clin_owner") == NO_SEX  # clinicians still see it
    release_withholding(actor=actor(world, "clin_owner"), withholding=held)
    assert visible(world, "patient_a") == ALL


def test_only_the_owner_may_withhold(world):
    from consent.policy import Denied
    from consent.services import withhold_from_patient

    x_gen = world["pa"].entries.get(fhir_id="x-gen")
    with pytest.raises(Denied):
        withhold_from_patient(
            actor=actor(world, "clin_owner"), entry=x_gen, reason="not mine to withhold at all"
        )


@pytest.mark.parametrize(
    ("role", "action", "permitted"),
    [
        ("ig", Action.READ_CONSENT, True),
        ("ig", Action.READ_AUDIT, True),
        ("ig", Action.READ_RECORD, False),
        ("patient_a", Action.CHANGE_CONSENT, True),
        ("patient_a", Action.READ_AUDIT, True),
        ("patient_b", Action.READ_CONSENT, False),
        ("clin_owner", Action.CHANGE_CONSENT, False),
        ("clin_owner", Action.READ_AUDIT, False),
        ("system_p", Action.CHANGE_CONSENT, False),
        ("anonymous", Action.READ_CONSENT, False),
    ],
)
def test_metadata_actions_follow_the_role(world, role, action, permitted):
    assert bool(decide(actor(world, role), action, world["pa"])) is permitted


def test_an_organisation_system_writes_only_its_own_data(world):
    from consent.policy import may_write

    p_system = actor(world, "system_p")
    assert may_write(p_system, world["orgs"]["P"])
    assert not may_write(p_system, world["orgs"]["O"])
    assert not may_write(actor(world, "clin_perm"), world["orgs"]["P"])


def test_every_read_and_every_refusal_is_audited_with_what_was_shown(world):
    apply_state(world, "org_denied")
    before = AuditEvent.objects.aggregate(last=Max("seq"))["last"] or 0  # numbers run on across tests
    visible(world, "clin_perm")
    visible(world, "clin_denied")

    permit, deny = AuditEvent.objects.filter(seq__gt=before).order_by("seq")
    assert (permit.action, permit.outcome, permit.organisation.ods_code) == ("record.read", "permit", "RP200")
    assert permit.patient == world["pa"]
    shown = (
        world["pa"].entries.filter(owner__ods_code__in=["A10001", "RX100"]).exclude(category="sexual_health")
    )
    assert len(permit.entries) == shown.count()
    assert permit.purpose == "direct-care"
    assert (deny.outcome, deny.organisation.ods_code) == ("deny", "RD300")
    assert deny.entries == []


def test_break_glass_reads_are_audited_as_emergency(world):
    apply_state(world, "bg_open")
    visible(world, "clin_denied")
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.purpose == "emergency"
    assert event.detail["break_glass"] == BreakGlass.objects.get().pk


def test_if_the_audit_write_fails_nothing_is_disclosed(world, monkeypatch):
    from django.db import DatabaseError

    import audit.ledger

    access = open_record(actor(world, "clin_perm"), world["pa"].pk)

    def broken(**fields):
        raise DatabaseError("audit store unavailable")

    monkeypatch.setattr(audit.ledger, "append", broken)
    with pytest.raises(DatabaseError):
        access.read()
    with pytest.raises(DatabaseError):
        open_record(actor(world, "clin_denied"), uuid.uuid4())


def test_history_gives_every_version_only_to_those_who_may_see_the_entry(world):
    o_gen = world["pa"].entries.get(fhir_id="o-gen")
    send(
        world["orgs"]["O"],
        {**condition("o-gen", "38341003", "Hypertensive disorder"), "note": [{"text": "reviewed"}]},
    )
    entry, versions = open_record(actor(world, "patient_a"), world["pa"].pk).history(o_gen.pk)
    assert [v.number for v in versions] == [1, 2]
    assert entry.version == 2
    apply_state(world, "withdrawn")
    access = open_record(actor(world, "clin_perm"), world["pa"].pk)
    assert len(access.history(o_gen.pk)[1]) == 2
    with pytest.raises(NotFound):
        open_record(actor(world, "clin_owner"), world["pa"].pk).history(
            world["pa"].entries.get(fhir_id="x-gen").pk
        )


def test_permitted_entries_cannot_be_read_outside_the_policy(db, gp):
    """RecordAccess.entries is sealed: shaping is free, but fetching rows, a count or an
    existence check from it outside read/count/counts/locate raises, so no page can
    disclose or count a record without an audit event."""
    from audit.models import AuditEvent
    from consent.policy import Actor, ActorRole, Unaudited, open_record
    from phr.models import Patient

    patient = Patient.objects.create(nhs_number="9434765919")
    access = open_record(Actor(ActorRole.CLINICIAN, organisation=gp), patient.pk)
    shaped = access.entries.filter(resource_type="Condition")
    for evaluate in (list, lambda qs: qs.count(), lambda qs: qs.exists(), lambda qs: qs.first()):
        with pytest.raises(Unaudited):
            evaluate(shaped)
    before = AuditEvent.objects.count()
    assert access.counts(lambda entries: entries.count(), detail={"page": "test"}) == 0
    assert AuditEvent.objects.count() == before + 1
