"""Reference data at /fhir/: the network's organisations and the portal's clinical staff.

Neither is patient data: they are built from phr.Organisation and the staff accounts,
never from a record, so they are read without opening one and are not audited as record
reads. Any signed-in caller whose token covers the type (in any context) may read them.

- ``Organization/<ODS code>``: a member organisation; search by ``identifier``
  (``<system>|<code>`` or ``<code>``), ``name`` (contains, any case) and ``_id``.
- ``Practitioner/staff-<n>``: a clinician of a member organisation, by name only (never an
  email address, an organisation's patients or anything else about them); search by
  ``name`` and ``_id``. Staff and systems see every clinician; a patient only those
  assigned to their own correction requests.
"""

from __future__ import annotations

from django.db.models import Q

from accounts.models import Role, User
from accuracy.fhir import ODS
from accuracy.models import CorrectionRequest
from consent.policy import Actor, ActorRole, NotFound
from phr.ingest import canonical_json
from phr.models import Organisation

from ..auth import has_scope
from .bundle import bundle_entry, response, subsetted
from .common import MissingScope, base_url, fhir_view, searchset, signed_in
from .search import SHAPE_PARAMS, check_known, parse_page, parse_shape

STAFF_SYSTEM = "https://portal.example/fhir/sid/staff"
STAFF_PREFIX = "staff-"
CONTEXTS = ("patient", "user", "system", "*")
ORGANIZATION_PARAMS = frozenset({"identifier", "name", "_id", "_count", "_offset", *SHAPE_PARAMS})
PRACTITIONER_PARAMS = frozenset({"name", "_id", "_count", "_offset", *SHAPE_PARAMS})


def reference_caller(request, resource_type: str) -> Actor:
    """Any signed-in caller holding a read scope that covers the type, in any context."""
    actor = signed_in(request)
    wanted = [f"{context}/{kind}.read" for context in CONTEXTS for kind in (resource_type, "*")]
    if not any(has_scope(request, scope) for scope in wanted):
        raise MissingScope(f"<context>/{resource_type}.read")
    return actor


def organization_resource(organisation: Organisation) -> dict:
    return {
        "resourceType": "Organization",
        "id": organisation.ods_code,
        "identifier": [{"system": ODS, "value": organisation.ods_code}],
        "active": True,
        "type": [{"text": organisation.get_kind_display()}],
        "name": organisation.name,
    }


def practitioner_resource(user: User) -> dict:
    resource = {
        "resourceType": "Practitioner",
        "id": f"{STAFF_PREFIX}{user.pk}",
        "identifier": [{"system": STAFF_SYSTEM, "value": str(user.pk)}],
        "active": True,
    }
    name = {}
    if user.last_name:
        name["family"] = user.last_name
    if user.first_name:
        name["given"] = user.first_name.split()
    if name:
        resource["name"] = [{"text": " ".join([user.first_name, user.last_name]).strip(), **name}]
    return resource


def staff(actor: Actor):
    """Active clinicians of member organisations: the people a Practitioner may be. Staff
    and organisations' systems see the whole directory; a patient sees only the people
    handling their own correction requests (a patient's app is no way to list the staff)."""
    found = User.objects.filter(role=Role.CLINICIAN, is_active=True, memberships__isnull=False)
    if actor.role != ActorRole.CLINICIAN and actor.role != ActorRole.SYSTEM:
        handling = CorrectionRequest.objects.filter(patient_id=actor.patient_id, assigned_to__isnull=False)
        found = found.filter(pk__in=handling.values("assigned_to")) if actor.patient_id else found.none()
    return found.distinct()


def _ods_codes(values: list[str]) -> Q:
    """ODS codes as tokens: ``<code>`` (any system) or ``<system>|<code>`` (ours only)."""
    match = Q(pk__in=[])
    for value in values:
        system, bar, code = value.partition("|")
        if not bar:
            system, code = ODS, value
        if system == ODS and code:
            match |= Q(ods_code__iexact=code)
    return match


def _ids(params) -> list[str]:
    return [part for value in params.getlist("_id") for part in value.split(",") if part]


def _reference_searchset(request, resource_type: str, found, to_resource, params):
    shape = parse_shape(params)
    page = parse_page(params)
    total = found.count()
    if shape.count_only:
        return searchset(request, [], page, total)
    base = base_url(request)
    parts = []
    for item in found[page.offset : page.offset + page.count]:
        resource = to_resource(item)
        text = canonical_json(resource).decode()
        if shape.elements:
            text = subsetted(text, shape.elements)
        parts.append(bundle_entry(f"{base}{resource_type}/{resource['id']}", text))
    return searchset(request, parts, page, total)


@fhir_view
def organization_search(request):
    """Member organisations: ?identifier=&name=&_id= (all of them with none)."""
    reference_caller(request, "Organization")
    params = request.GET
    check_known(params, ORGANIZATION_PARAMS)
    found = Organisation.objects.order_by("ods_code")
    for value in params.getlist("identifier"):
        found = found.filter(_ods_codes(value.split(",")))
    ids = _ids(params)
    if ids:
        found = found.filter(_ods_codes(ids))
    for value in params.getlist("name"):
        found = found.filter(name__icontains=value)
    return _reference_searchset(request, "Organization", found, organization_resource, params)


@fhir_view
def organization_read(request, resource_id: str):
    reference_caller(request, "Organization")
    found = Organisation.objects.filter(ods_code=resource_id).first()
    if found is None:
        raise NotFound
    return response(organization_resource(found))


def _staff_pk(value: str) -> int | None:
    number = value.removeprefix(STAFF_PREFIX)
    return int(number) if value.startswith(STAFF_PREFIX) and number.isdigit() and len(number) < 18 else None


@fhir_view
def practitioner_search(request):
    """Clinical staff by name: ?name= (given or family name contains it) and ?_id=."""
    actor = reference_caller(request, "Practitioner")
    params = request.GET
    check_known(params, PRACTITIONER_PARAMS)
    found = staff(actor).order_by("pk")
    ids = _ids(params)
    if ids:
        found = found.filter(pk__in=[pk for pk in map(_staff_pk, ids) if pk is not None])
    for value in params.getlist("name"):
        found = found.filter(Q(first_name__icontains=value) | Q(last_name__icontains=value))
    return _reference_searchset(request, "Practitioner", found, practitioner_resource, params)


@fhir_view
def practitioner_read(request, resource_id: str):
    actor = reference_caller(request, "Practitioner")
    pk = _staff_pk(resource_id)
    found = staff(actor).filter(pk=pk).first() if pk is not None else None
    if found is None:
        raise NotFound
    return response(practitioner_resource(found))
