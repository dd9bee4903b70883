"""The small network the URL walk (tests/test_url_walk.py) runs in, and the people and
clients it walks as.

Patient A's record at Riverside Surgery holds two problems; one of them has an open
correction request waiting for A's answer, the other was corrected (so a Provenance and
a second version exist). Patient B's record is held by a third trust. Both refused sharing
across the network, so only the owners (and the patients themselves) may read their
items. Each record's problem text is a sentinel: a body that contains it shows clinical
content, and the walk knows exactly who may be shown which. Someone A chose may act for
A (a proxy grant, read as a RelatedPerson), but walks as nobody.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client

from accounts.models import Notification, ProxyAccess, User
from accuracy import services as corrections
from api.fhir.reference import STAFF_PREFIX
from api.oauth_server import cli_application, issue_access_token, system_application
from audit.models import AuditEvent
from consent.ig_queries import fhir_id as audit_fhir_id
from consent.models import BreakGlass, ConsentChoice, Decision, Scope
from consent.policy import actor_for
from consent.share_links import create_share_link
from phr.models import Organisation, OrganisationKind, Patient, RecordEntry
from tests.feeds import patient_resource, send
from tests.personas import ClinicianFactory, IGOfficerFactory, PatientUserFactory

SNOMED = "http://snomed.info/sct"

# Patient A's problem held by Riverside Surgery, and Patient B's held by the Third Trust.
A_TEXT = "Hypertensive disorder"
B_TEXT = "Type 2 diabetes mellitus"

NARROW_SCOPE = "patient/Patient.read"
SYSTEM_SCOPE = "system/*.read system/Bundle.write system/Task.write system/Communication.write"

# Who walks, and which sentinel each must never be shown. Patient A, the GP's clinician
# with a second factor and the GP's own system may see A's problem; only patient B may
# see B's. Staff without a second factor see no clinical content at all, IG officers
# never do, and a token limited to Patient.read carries no Condition.
PERSONAS = {
    "anonymous": (A_TEXT, B_TEXT),
    "patient_a": (B_TEXT,),
    "patient_b": (A_TEXT,),
    "patient_unlinked": (A_TEXT, B_TEXT),
    "clin_owner": (B_TEXT,),
    "clin_owner_no_2fa": (A_TEXT, B_TEXT),
    "clin_denied": (A_TEXT, B_TEXT),
    "ig": (A_TEXT, B_TEXT),
    "ig_no_2fa": (A_TEXT, B_TEXT),
    "token_patient_narrow": (A_TEXT, B_TEXT),
    "token_gp_system": (B_TEXT,),
}
# What some personas are shown somewhere on the walk: proof that it reaches the content.
SHOWN = {"patient_a": A_TEXT, "clin_owner": A_TEXT, "token_gp_system": A_TEXT, "patient_b": B_TEXT}
STAFF_WITHOUT_2FA = ("clin_owner_no_2fa", "ig_no_2fa")


def _problem(fhir_id: str, patient: str, text: str, code: str) -> dict:
    return {
        "resourceType": "Condition",
        "id": fhir_id,
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [{"system": SNOMED, "code": code}], "text": text},
        "category": [{"coding": [{"code": "problem-list-item"}]}],
    }


@dataclass
class Subject:
    """The ids that name one patient's record in URLs: the patient, an item (by entry id
    and by FHIR id) and a correction request on it."""

    patient: str
    entry: str
    fhir_id: str
    request: str

    @classmethod
    def missing(cls) -> Subject:
        return cls(str(uuid.uuid4()), str(uuid.uuid4()), "missing-1", str(uuid.uuid4()))


@dataclass
class World:
    gp: Organisation
    pa: Patient
    pb: Patient
    users: dict[str, User]
    tokens: dict[str, str]
    a: Subject
    b: Subject
    values: dict[str, str] = field(default_factory=dict)


def build_world() -> World:
    gp = Organisation.objects.create(
        ods_code="A10001", name="Riverside Surgery", kind=OrganisationKind.GP_PRACTICE
    )
    denied = Organisation.objects.create(
        ods_code="RD300", name="Denied Trust", kind=OrganisationKind.ACUTE_TRUST
    )
    third = Organisation.objects.create(ods_code="RT400", name="Third Trust", kind=OrganisationKind.OTHER)
    asthma = _problem("c2", "pa", "Asthma", "195967001")
    send(gp, patient_resource("pa", "9434765919"), _problem("c1", "pa", A_TEXT, "38341003"), asthma)
    send(third, patient_resource("pb", "9990000018"), _problem("cb", "pb", B_TEXT, "44054006"))
    pa = Patient.objects.get(nhs_number="9434765919")
    pb = Patient.objects.get(nhs_number="9990000018")
    for patient in (pa, pb):
        ConsentChoice.objects.create(patient=patient, scope=Scope.NETWORK, decision=Decision.DENY)

    users = {
        "patient_a": PatientUserFactory(email="a@example.com", patient=pa),
        "patient_b": PatientUserFactory(email="b@example.com", patient=pb),
        "patient_unlinked": PatientUserFactory(email="new@example.com", patient=None),
        "clin_owner": ClinicianFactory(email="o@example.com", organisation=gp),
        "clin_owner_no_2fa": ClinicianFactory(email="o2@example.com", organisation=gp, second_factor=False),
        "clin_denied": ClinicianFactory(email="d@example.com", organisation=denied),
        "ig": IGOfficerFactory(email="ig@example.com"),
        "ig_no_2fa": IGOfficerFactory(email="ig2@example.com", second_factor=False),
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

    entries = {
        e.fhir_id: e for e in RecordEntry.objects.filter(fhir_id__in=["c1", "c2", "cb"]).only("pk", "fhir_id")
    }
    patient_a, patient_b = actor_for(users["patient_a"]), actor_for(users["patient_b"])
    owner = actor_for(users["clin_owner"])
    asking = dict(
        proposed="Essential hypertension", reason="My GP told me otherwise.", contact_preference="portal"
    )
    # A's request on the first problem waits for A's answer (so a message exists) ...
    waiting = corrections.submit_correction(
        actor=patient_a, entry_id=entries["c1"].pk, element="code", **asking
    )
    corrections.start_review(actor=owner, request_id=waiting.pk, revision=waiting.revision)
    waiting.refresh_from_db()
    corrections.ask_information(
        actor=owner, request_id=waiting.pk, revision=waiting.revision, question="When was this diagnosed?"
    )
    # ... the one on the second was accepted: an amended version and a Provenance.
    done = corrections.submit_correction(actor=patient_a, entry_id=entries["c2"].pk, element="code", **asking)
    corrections.start_review(actor=owner, request_id=done.pk, revision=done.revision)
    done.refresh_from_db()
    amended = {**asthma, "code": {"coding": [{"system": SNOMED, "code": "195967001"}], "text": "Mild asthma"}}
    corrections.accept(
        actor=owner,
        request_id=done.pk,
        revision=done.revision,
        resource_json=json.dumps(amended),
        based_on_version=1,
    )
    b_request = corrections.submit_correction(
        actor=patient_b, entry_id=entries["cb"].pk, element="code", **asking
    )
    link = create_share_link(actor=patient_a, label="Walk", scope="full", days=7, passcode="walk-passcode")
    # Someone Patient A chose to act for them, who walks as nobody: A's RelatedPerson.
    carer = PatientUserFactory(email="carer@example.com", patient=None)
    grant = ProxyAccess.objects.create(
        patient=pa,
        proxy=carer,
        relationship=ProxyAccess.Relationship.CHOSEN,
        reason="Walk test carer",
        ends_at=pa.created_at + timedelta(days=365),
        granted_by=users["patient_a"],
    )

    narrow, _ = issue_access_token(
        application=cli_application(),
        user=users["patient_a"],
        scope=NARROW_SCOPE,
        minutes=60,
        issued_by="walk",
    )
    system, _ = issue_access_token(
        application=system_application(gp), user=None, scope=SYSTEM_SCOPE, minutes=60, issued_by="walk"
    )
    message = waiting.messages.order_by("pk").first()
    event = AuditEvent.objects.filter(patient=pa).order_by("pk").first()
    notification = Notification.objects.filter(user=users["patient_a"]).order_by("pk").first()
    world = World(
        gp=gp,
        pa=pa,
        pb=pb,
        users=users,
        tokens={"token_patient_narrow": narrow, "token_gp_system": system},
        a=Subject(str(pa.pk), str(entries["c1"].pk), "c1", str(waiting.pk)),
        b=Subject(str(pb.pk), str(entries["cb"].pk), "cb", str(b_request.pk)),
    )
    world.values = {
        "break_glass_id": str(glass.pk),
        "organisation_id": str(gp.pk),
        "pk": str(notification.pk),
        "link_id": str(link.link.pk),
        "token": link.token,
        "audit_event": audit_fhir_id(event),
        "provenance": f"correction-{done.pk.hex}",
        "practitioner": f"{STAFF_PREFIX}{users['clin_owner'].pk}",
        "communication": f"{waiting.pk.hex[:24]}-m{message.pk}",
        "proxy_grant": str(grant.pk),
    }
    return world


def client_for(world: World, persona: str) -> Client:
    """A client as production sees this persona: CSRF checks on; a session (and its CSRF
    cookie, as a browser holds it after any page) for people, a bearer token for apps."""
    if persona in world.tokens:
        return Client(enforce_csrf_checks=True, headers={"authorization": f"Bearer {world.tokens[persona]}"})
    client = Client(enforce_csrf_checks=True)
    if persona != "anonymous":
        client.force_login(world.users[persona])
    client.cookies[settings.CSRF_COOKIE_NAME] = _get_new_csrf_string()
    return client


def csrf_header(client: Client) -> dict:
    """The header a page's script (or form field) sends back: the CSRF cookie's value."""
    cookie = client.cookies.get(settings.CSRF_COOKIE_NAME)
    return {"HTTP_X_CSRFTOKEN": cookie.value} if cookie is not None and cookie.value else {}
