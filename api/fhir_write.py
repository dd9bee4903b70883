"""FHIR R4 writes at /fhir/: an organisation system's Bundles, correction steps and
messages, and a patient's correction requests, replies and withdrawals. Thin views over
phr.ingest and accuracy.services; every error is an OperationOutcome and nothing answers
an HTML page or a bare 500.

Who may write (a session must also pass Django's CSRF check; a bearer token need not):
- ``POST /fhir/`` and ``PUT /fhir/Task/<id>``: an organisation's system (client
  credentials) with ``system/Bundle.write`` / ``system/Task.write``; it writes only its own
  organisation's data (consent.policy.may_write) and only its organisation's tasks.
- ``POST /fhir/Communication/$correction-request``: a patient (their app with
  ``patient/Communication.write``, or the portal session), about their own record only.
- ``PUT /fhir/Task/<id>`` to withdraw: the patient (``patient/Task.write``), their own only.
- ``POST /fhir/Communication`` (a message on a request): the owner's system
  (``system/Communication.write``) or the patient (``patient/Communication.write``).
Anyone else is refused with 403 (401 without credentials or with an invalid token). A
request of another organisation or patient is 404, exactly as one that does not exist.
Every step is taken by accuracy.services, which holds the rules; these views only say
which element of the body a refusal is about.

The contracts, exactly:

1. ``POST /fhir/`` (application/fhir+json) with a Bundle of type ``transaction`` or
   ``batch`` (any other type: 400 naming ``Bundle.type``; a body larger than
   settings.INGEST_MAX_FILE_BYTES: 413). The resources are ingested as phr.ingest does for
   files: the owner is the client's organisation whatever the data says, ids come from
   the resource, else its fullUrl or request.url, else its content. The answer is a
   ``transaction-response`` / ``batch-response`` Bundle with one entry per received entry,
   in order: ``201 Created`` (a new item), ``200 OK`` (a new version, or unchanged), each
   with ``location`` ``<Type>/<id>/_history/<n>`` and ``etag`` ``W/"<n>"``; or, in a batch,
   ``400 Bad Request`` with an ``outcome`` OperationOutcome naming the element
   (``Bundle.entry[i].resource.<path>``). A transaction with any rejected entry stores
   nothing and answers 400 with an OperationOutcome of every issue. A DELETE entry, or an
   entry without a resource (a GET in a batch), is rejected: the record keeps everything.

2. ``POST /fhir/Communication/$correction-request`` with a Communication, as in the HL7
   Patient Request for Corrections guide:
   - ``about[0].reference``: the item, ``<Type>/<id>`` as the read API serves it for this
     patient (``/_history/<n>`` allowed), ``<Type>/<entry uuid>``, or the bare entry UUID;
     not the patient's (or no such item): 404; two of their items share the id: 409
     ``multiple-matches`` (use the entry UUID);
   - ``payload[0].contentString``: what is wrong (required);
   - ``payload[1].contentString``: what it should say (optional; else payload[0]);
   - ``reasonCode[0].text``, else ``note[0].text``: why (optional; else payload[0]);
   - the extension ``ELEMENT_EXTENSION`` (valueString): which part of the item, one of
     accuracy.elements.choices_for(<type>) paths (e.g. ``dosage[0].text``); absent or
     "" means the whole item;
   - the patient is contacted through the portal (contact preference "portal").
   Answers 201 with the Task (accuracy.fhir.task_resource; a patient's copy never carries
   the assignee extension, the owner's routing), ``Location: <base>Task/<id>`` and
   ``ETag: W/"<revision>"``. An open request on the same item: 409 ``duplicate``
   naming ``Task/<id>``. Unusable input: 400 naming the element (e.g.
   ``Communication.payload[1].contentString``).

3. ``PUT /fhir/Task/<id>`` by the owner's system, with the Task as read, changed, and
   ``If-Match: W/"<n>"`` (the ETag of ``GET /fhir/Task/<id>``, also its ``meta.versionId``;
   missing: 428, stale: 412). The server reads only what asks for a step, and takes the
   steps in this order, all or none (a refusal of one keeps none); an element that is
   absent, or as it is now, asks for nothing, and everything else in the body is the
   server's own and is ignored (the same Task again answers 200 and changes nothing):
   - the extension ``accuracy.fhir.ASSIGNEE_EXTENSION`` with ``valueReference``
     ``Practitioner/staff-<user id>``: hand the request to that colleague
     (services.assign); not a clinician of the organisation (or no such user): 422 naming
     ``Task.extension('<url>').valueReference``;
   - ``restriction.period.end``, a later day (a dateTime counts as its day): extend the
     deadline (services.extend_deadline: once, before it passes, within the profile's
     limit, the patient told) with the reason in ``statusReason.text``; refused: 422
     naming ``Task.restriction.period.end`` (or ``Task.statusReason.text``), not a full
     date: 400;
   - ``businessStatus.coding[].code``, the step to take:
     - ``in-review``: start (or resume) the review (accuracy.services.start_review);
     - ``waiting-for-information``: ask the patient the question in ``Task.note[0].text``
       (or ``statusReason.text``) (services.ask_information);
     - ``denied``: refuse, with ``statusReason.coding[0].code`` one of
       accuracy.models.DenialReason (e.g. ``accurate``, ``clinical_opinion``) and
       ``statusReason.text`` the explanation for the patient (services.deny);
     - ``amendment-completed``: amend the item as asked (services.accept) with the amended
       item as a contained resource referenced by ``output[].valueReference``
       ``#<local id>``; it is stored as the next version of the item (its type must be the
       item's, its id is set to the item's), based on the version named by ``focus``
       (``<Type>/<id>/_history/<n>``; the Task as read names the version the patient
       flagged: if the item changed since, name the current version or get 409);
     - ``partial-amendment-completed``: the same, in part, with ``statusReason.text``
       saying what was not changed (services.accept in_part=True);
     - any other code: 422 naming ``Task.businessStatus``; unusable input for a step: 400
       naming the element.
   ``status`` ``cancelled``: 422 naming ``Task.status`` (only the patient withdraws).
   Answers 200 with the updated Task and its new ETag. A step the request's state does
   not allow (e.g. denying a queued request, extending a decided one): 409 naming the
   element that asked for it. Another organisation's task, or none: 404.

4. ``PUT /fhir/Task/<id>`` by the patient's app, with If-Match as above: ``status``
   ``cancelled`` withdraws the request (services.withdraw), ``statusReason.text`` the
   optional note; ``businessStatus`` may be absent, as read, or ``requester-cancelled``.
   Nothing else: another status is 422 naming ``Task.status``, another businessStatus 422
   naming ``Task.businessStatus``. A decided request: 409; withdrawn already: 200.

5. ``POST /fhir/Communication`` with ``partOf[0].reference`` ``Task/<id>`` (or
   ``Task/<id>/_history/<n>``) and the words in ``payload[0].contentString``; the rest of
   the body is the server's own (sender, recipient, subject, sent). From the owner's
   system: a message to the patient (services.post_message). From the patient's app: an
   answer when the request waits for information (the review resumes), else a message
   on the open request (services.patient_reply); a closed one: 409. Answers 201 with the
   Communication as accuracy.fhir.communication_resource renders it and ``Location:
   <base>Communication/<id>``. With the guide's disagreement category
   (``category[].coding`` ``medRecCxDenialDisagree``), the patient's app logs a statement
   of disagreement with a refusal (services.log_disagreement; answered as
   accuracy.fhir.statement_resource renders it), and the owner's system responds to it
   (services.add_rebuttal). The Location, message or statement, reads it back with
   ``GET /fhir/Communication/<id>``. Nothing to disagree with or respond to, or done already: 409
   naming ``Communication.category[0]``. No usable partOf: 400 naming
   ``Communication.partOf[0]``; no words: 400 naming
   ``Communication.payload[0].contentString``.

6. ``GET /fhir/Communication?recipient=<ODS code>`` (also ``Organization/<ODS>`` or
   ``<system>|<ODS>``; or with no parameter, for a system): the downstream correction
   notices sent to the caller's organisation (a system's, or a clinician's), as the stored
   Communication texts in a searchset Bundle, oldest first, paged by _count/_offset.
   Another organisation's code finds nothing. ``?part-of=Task/<id>`` is the correction
   conversation (api.fhir_views.communication_search): the messages and the statements of
   disagreement (and the owner's response) in the order they were written.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import wraps

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

import audit
from accounts.models import User
from accuracy import fhir as correction_fhir
from accuracy import services as corrections
from accuracy.models import BusinessStatus, DownstreamNotice, Message, Statement, Status
from consent.policy import Actor, ActorRole, NotFound, may_write
from phr import fhir as fhir_models
from phr.ingest import UnusableInput, canonical_json, ingest_documents, parse_json
from phr.models import EntryVersion, RecordEntry

from . import fhir_views as views
from .auth import InvalidToken, api_actor, bearer_token, has_scope
from .fhir_bundle import bundle, bundle_entry, instant, not_found, outcome, response
from .fhir_search import SearchError, parse_answer, sort_rows

logger = logging.getLogger(__name__)

ELEMENT_EXTENSION = "https://patient-record-portal.example/StructureDefinition/correction-element"
JSON_TYPES = ("application/fhir+json", "application/json")
ENTRY_WHERE = re.compile(r"^Bundle\.entry\[(\d+)\]")
ETAG = re.compile(r'^(?:W/)?"(\d{1,9})"$')
RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")


class Problem(Exception):
    """A request this server will not carry out: answered as an OperationOutcome."""

    def __init__(self, status: int, message: str, *, code: str = "invalid", expression: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.expression = status, message, code, expression


class Issues(Exception):
    """Several issues at once (a resource that is not valid FHIR R4)."""

    def __init__(self, status: int, issues: list[dict]):
        super().__init__(f"{len(issues)} issue(s)")
        self.status, self.issues = status, issues


def operation_outcome(status: int, issues: list[dict]) -> HttpResponse:
    return response({"resourceType": "OperationOutcome", "issue": issues}, status)


def write_view(methods: tuple[str, ...]):
    """The methods named, errors as OperationOutcomes, never an HTML page or a bare 500."""

    def decorate(view):
        @csrf_exempt  # checked in writer() for a session; a bearer token needs no CSRF check
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                reply = outcome(405, f"{request.method} is not supported here", code="not-supported")
                reply["Allow"] = ", ".join(methods)
                return reply
            try:
                return view(request, *args, **kwargs)
            except views.Unauthenticated as refused:
                reply = outcome(401, "Sign in or send a valid bearer token", code="login")
                reply["WWW-Authenticate"] = refused.challenge
                return reply
            except views.MissingScope as missing:
                return outcome(
                    403, f"The access token does not carry the scope {missing.scope}", code="forbidden"
                )
            except Problem as problem:
                return outcome(
                    problem.status, problem.message, code=problem.code, expression=problem.expression
                )
            except Issues as invalid:
                return operation_outcome(invalid.status, invalid.issues)
            except SearchError as error:
                return outcome(400, error.message, expression=error.parameter)
            except NotFound:
                return not_found()
            except views.Ambiguous:
                return outcome(
                    409,
                    "More than one of your items of this type has this id: name it by its entry id",
                    code="multiple-matches",
                )
            except Exception:
                logger.exception("FHIR write failed: %s", request.path)
                return outcome(500, "The server could not carry out this request", code="exception")

        return wrapper

    return decorate


WHO = {ActorRole.PATIENT: "a patient", ActorRole.SYSTEM: "an organisation system"}


def writer(request, scopes: dict[ActorRole, str]) -> Actor:
    """The caller, if it is of one of the roles named and holds that role's scope; a
    session must pass CSRF."""
    try:
        actor = api_actor(request)
    except InvalidToken as invalid:
        raise views.Unauthenticated(invalid.challenge) from None
    if actor.role == ActorRole.ANONYMOUS:
        raise views.Unauthenticated
    if actor.role not in scopes:
        raise Problem(403, f"Only {' or '.join(WHO[role] for role in scopes)} may do this", code="forbidden")
    if bearer_token(request) is None:
        check = CsrfViewMiddleware(lambda _: None)
        check.process_request(request)
        if check.process_view(request, None, (), {}) is not None:
            raise Problem(403, "The CSRF check failed: send the portal's CSRF token", code="forbidden")
    if not has_scope(request, scopes[actor.role]):
        raise views.MissingScope(scopes[actor.role])
    return actor


def read_json(request, label: str):
    """The request body as JSON (decimals kept exactly), within the ingest size limit."""
    content_type = request.META.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise Problem(415, "Send the body as application/fhir+json", code="not-supported")
    limit = settings.INGEST_MAX_FILE_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    too_large = Problem(413, f"The body is larger than the {limit:,} bytes allowed", code="too-costly")
    if length > limit:
        raise too_large
    try:
        data = request.read(limit + 1)
    except RequestDataTooBig:
        raise too_large from None
    if len(data) > limit:
        raise too_large
    try:
        return parse_json(data, label)
    except UnusableInput as unusable:
        raise Problem(400, str(unusable), code="structure") from None


def check_resource(resource, resource_type: str) -> dict:
    """A body that is one valid FHIR R4 resource of the type, or 400 naming what is wrong."""
    if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
        raise Problem(400, f"The body must be a {resource_type} resource", expression="resourceType")
    problems = fhir_models.validate(resource)
    if problems:
        raise Issues(
            400,
            [
                fhir_models.issue(
                    f"{resource_type}.{path}" if path else resource_type,
                    f"{resource_type}.{path} {message}" if path else f"{resource_type} {message}",
                )
                for path, message in problems
            ],
        )
    return resource


# --- 1. POST /fhir/: transaction and batch Bundles -------------------------------------


@write_view(("POST",))
def transaction_or_batch(request):
    """An organisation system sends its records in (see the module's contract 1)."""
    actor = writer(request, {ActorRole.SYSTEM: "system/Bundle.write"})
    if actor.organisation is None or not may_write(actor, actor.organisation):
        raise Problem(403, "This client may not write records", code="forbidden")
    document = read_json(request, "Bundle")
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        raise Problem(400, "POST a Bundle of type transaction or batch", expression="resourceType")
    kind = document.get("type")
    if kind not in ("transaction", "batch"):
        raise Problem(400, "The Bundle's type must be transaction or batch", expression="Bundle.type")
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        raise Problem(400, "Bundle.entry must be a list", expression="Bundle.entry")
    try:
        result = ingest_documents(
            [("Bundle", document)],
            organisation=actor.organisation,
            atomic=kind == "transaction",
            source="api",
        )
    except UnusableInput as unusable:
        raise Problem(
            400, str(unusable), code="too-costly" if "larger" in str(unusable) else "structure"
        ) from None
    by_entry: dict[int, list[dict]] = {}
    for issue in result.issues:
        found = ENTRY_WHERE.match((issue.get("expression") or [""])[0])
        if found:
            by_entry.setdefault(int(found.group(1)), []).append(issue)
    if kind == "transaction" and result.rejected:
        return operation_outcome(400, result.issues)
    parts = [
        json.dumps({"response": item}, ensure_ascii=False)
        for item in entry_responses(actor, entries, by_entry, result.batch_id)
    ]
    return response(bundle(f"{kind}-response", parts))


def entry_responses(
    actor: Actor, entries: list, by_entry: dict[int, list[dict]], batch_id: str
) -> list[dict]:
    """Bundle.entry.response for each received entry, in order."""
    stored: dict[tuple[str, str], list[int]] = {}
    for resource_type, fhir_id, number in (
        EntryVersion.objects.filter(batch_id=batch_id)
        .order_by("number")
        .values_list("entry__resource_type", "entry__fhir_id", "number")
    ):
        stored.setdefault((resource_type, fhir_id), []).append(number)
    keys = [
        (entry["resource"].get("resourceType"), entry["resource"].get("id"))
        for index, entry in enumerate(entries)
        if index not in by_entry and isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
    ]
    current = {
        (t, i): v
        for t, i, v in RecordEntry.objects.filter(
            owner=actor.organisation,
            resource_type__in={t for t, _ in keys},
            fhir_id__in={i for _, i in keys},
        ).values_list("resource_type", "fhir_id", "version")
    }
    replies = []
    for index, entry in enumerate(entries):
        if index in by_entry or not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            issues = by_entry.get(index) or [
                fhir_models.issue(f"Bundle.entry[{index}]", "this entry carries no resource to store")
            ]
            replies.append(
                {
                    "status": "400 Bad Request",
                    "outcome": {"resourceType": "OperationOutcome", "issue": issues},
                }
            )
            continue
        key = (entry["resource"].get("resourceType"), entry["resource"].get("id"))
        numbers = stored.get(key)
        if numbers:
            number = numbers.pop(0)
            status = "201 Created" if number == 1 else "200 OK"
        else:
            number, status = current.get(key, 1), "200 OK"  # the same as the current version
        replies.append(
            {
                "status": status,
                "location": f"{key[0]}/{key[1]}/_history/{number}",
                "etag": f'W/"{number}"',
                "lastModified": instant(),
            }
        )
    return replies


# --- 2. POST /fhir/Communication/$correction-request -----------------------------------


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def _first_text(items, name: str) -> str:
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return _text(items[0].get(name))
    return ""


def about_entry(actor: Actor, communication: dict) -> uuid.UUID:
    """The patient's own entry the Communication is about, or NotFound."""
    about = communication.get("about")
    reference = ""
    if isinstance(about, list) and about and isinstance(about[0], dict):
        reference = _text(about[0].get("reference"))
    if not reference:
        raise Problem(
            400, "Name the item in about[0].reference, as <Type>/<id>", expression="Communication.about[0]"
        )
    parts = reference.removeprefix("urn:uuid:").split("/")
    if len(parts) == 4 and parts[2] == "_history":
        parts = parts[:2]
    if len(parts) == 1:
        try:
            pk = uuid.UUID(parts[0])
        except ValueError:
            raise NotFound from None
        found = RecordEntry.objects.filter(pk=pk, patient_id=actor.patient_id).values_list(
            "resource_type", flat=True
        )
        if not found:
            raise NotFound
        parts = [found[0], str(pk)]
    if len(parts) != 2 or not RESOURCE_TYPE.match(parts[0]) or not parts[1]:
        raise Problem(
            400,
            "about[0].reference must be <Type>/<id> of an item of your record",
            expression="Communication.about[0].reference",
        )
    _, pk = views.resolve(actor, parts[0], parts[1])
    return pk


@write_view(("POST",))
def correction_request(request):
    """A patient asks for an item of their record to be corrected (contract 2)."""
    actor = writer(request, {ActorRole.PATIENT: "patient/Communication.write"})
    communication = check_resource(read_json(request, "Communication"), "Communication")
    payload = communication.get("payload") or []
    what = _text(payload[0].get("contentString")) if payload else ""
    if not what:
        raise Problem(
            400,
            "Say what is wrong in payload[0].contentString",
            expression="Communication.payload[0].contentString",
        )
    sources = {
        "proposed": (
            "Communication.payload[1].contentString",
            _text(payload[1].get("contentString")) if len(payload) > 1 else "",
        ),
        "reason": ("Communication.reasonCode[0].text", _first_text(communication.get("reasonCode"), "text")),
    }
    if not sources["reason"][1] and _first_text(communication.get("note"), "text"):
        sources["reason"] = ("Communication.note[0].text", _first_text(communication.get("note"), "text"))
    for name, (_where, value) in list(sources.items()):
        if not value:
            sources[name] = ("Communication.payload[0].contentString", what)
    element = ""
    for extension in communication.get("extension") or []:
        if extension.get("url") == ELEMENT_EXTENSION:
            element = _text(extension.get("valueString"))
    entry_id = about_entry(actor, communication)
    try:
        created = corrections.submit_correction(
            actor=actor,
            entry_id=entry_id,
            element=element,
            proposed=sources["proposed"][1],
            reason=sources["reason"][1],
            contact_preference="portal",
        )
    except corrections.DuplicateRequest as duplicate:
        raise Problem(
            409,
            f"An open correction request about this item exists already: Task/{duplicate.existing.pk}",
            code="duplicate",
            expression="Communication.about[0]",
        ) from None
    except corrections.InvalidStep as invalid:
        where = {"element": f"Communication.extension('{ELEMENT_EXTENSION}')"}.get(invalid.field)
        where = where or sources.get(invalid.field, ("Communication",))[0]
        raise Problem(400, str(invalid), expression=where) from None
    found = corrections.request_for(actor, created.pk)
    reply = task_response(actor, found, 201)
    reply["Location"] = f"{views.base_url(request)}Task/{found.pk}"
    return reply


def task_response(actor: Actor, found, status: int = 200) -> HttpResponse:
    task = views.released_tasks(actor, [found])[0]
    reply = response(task, status)
    reply["ETag"] = f'W/"{task["meta"]["versionId"]}"'  # meta.versionId is the request's revision
    return reply


# --- 3 and 4. GET and PUT /fhir/Task/<id> ----------------------------------------------

TASK_WRITERS = {ActorRole.SYSTEM: "system/Task.write", ActorRole.PATIENT: "patient/Task.write"}
ASSIGNEE = f"Task.extension('{correction_fhir.ASSIGNEE_EXTENSION}').valueReference"
DEADLINE = "Task.restriction.period.end"
STAFF = re.compile(r"^Practitioner/staff-(\d{1,18})$")
DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T.*)?$")


@write_view(("GET", "HEAD", "PUT"))
def task_instance(request, task_id: str):
    """GET reads the Task (api.fhir_views.task_read); PUT takes steps (contracts 3 and 4)."""
    if request.method != "PUT":
        return views.task_read(request, task_id=task_id)
    actor = writer(request, TASK_WRITERS)
    found = corrections.request_for(actor, task_id)
    check_if_match(request, found)
    task = check_resource(read_json(request, "Task"), "Task")
    if task.get("id") not in (None, str(found.pk)):
        raise Problem(400, "The Task's id must be the id in the URL", expression="Task.id")
    steps = withdrawal(task, found) if actor.role == ActorRole.PATIENT else owner_steps(task, found)
    with transaction.atomic():  # several steps in one PUT: all of them or none
        revision = found.revision
        for step in steps:
            revision = step.take(actor, found, revision)
    return task_response(actor, corrections.request_for(actor, found.pk))


def check_if_match(request, found) -> None:
    """The PUT is based on the revision the request is at: 428 without If-Match, 412 if stale."""
    given = request.META.get("HTTP_IF_MATCH", "").strip()
    if not given:
        raise Problem(
            428,
            'Send If-Match: W/"<revision>" with the ETag of the Task you read',
            code="required",
            expression="If-Match",
        )
    match = ETAG.match(given)
    if match is None:
        raise Problem(400, 'If-Match must be W/"<revision>"', expression="If-Match")
    if int(match.group(1)) != found.revision:
        raise Problem(
            412,
            f"The Task changed since you read it: it is at revision {found.revision}. Read it again.",
            code="conflict",
            expression="If-Match",
        )


@dataclass
class Step:
    """One accuracy.services step a PUT asks for, with the Task elements its refusals name."""

    function: Callable[..., object]
    arguments: dict
    fields: dict[str, str]  # InvalidStep.field -> the element at fault
    where: str  # the element that asked for the step: named by a Conflict
    invalid_status: int = 400

    def take(self, actor: Actor, found, revision: int) -> int:
        try:
            done = self.function(actor=actor, request_id=found.pk, revision=revision, **self.arguments)
        except corrections.Conflict as conflict:
            raise Problem(409, str(conflict), code="conflict", expression=self.where) from None
        except corrections.InvalidStep as invalid:
            raise Problem(
                self.invalid_status,
                str(invalid),
                code="business-rule" if self.invalid_status == 422 else "invalid",
                expression=self.fields.get(invalid.field, self.where),
            ) from None
        return done.revision


def owner_steps(task: dict, found) -> list[Step]:
    """What the owner's system changed, as steps: the assignee, then the deadline, then
    the businessStatus (an element that is absent or as it was asks for nothing)."""
    if task.get("status") == Status.CANCELLED and found.status != Status.CANCELLED:
        raise Problem(
            422,
            "Only the patient may withdraw a correction request: an organisation's system cannot cancel it",
            code="business-rule",
            expression="Task.status",
        )
    steps = []
    colleague = changed_assignee(task, found)
    if colleague is not None:
        steps.append(
            Step(corrections.assign, {"colleague": colleague}, {"colleague": ASSIGNEE}, ASSIGNEE, 422)
        )
    until = changed_deadline(task, found)
    if until is not None:
        reason = _text((task.get("statusReason") or {}).get("text"))
        steps.append(
            Step(
                corrections.extend_deadline,
                {"reason": reason, "until": until},
                {"until": DEADLINE, "reason": "Task.statusReason.text"},
                DEADLINE,
                422,
            )
        )
    code = business_status(task)
    if code is not None and code != found.business_status:
        steps.append(business_step(task, found, code))
    return steps


def business_step(task: dict, found, code: str) -> Step:
    """The step a new businessStatus asks for (contract 3)."""
    reason = task.get("statusReason") or {}
    fields = {
        "code": "Task.statusReason.coding[0].code",
        "text": "Task.statusReason.text",
        "note": "Task.statusReason.text",
        "question": "Task.note[0].text",
    }
    where = "Task.businessStatus"
    if code == "in-review":
        return Step(corrections.start_review, {}, fields, where)
    if code == "denied":
        arguments = {"code": _first_text(reason.get("coding"), "code"), "text": _text(reason.get("text"))}
        return Step(corrections.deny, arguments, fields, where)
    if code == "waiting-for-information":
        question = _first_text(task.get("note"), "text") or _text(reason.get("text"))
        return Step(corrections.ask_information, {"question": question}, fields, where)
    if code in ("amendment-completed", "partial-amendment-completed"):
        resource, contained = amended_resource(task, found)
        arguments = {
            "resource_json": canonical_json(resource).decode(),
            "based_on_version": focus_version(task),
            "in_part": code == "partial-amendment-completed",
            "note": _text(reason.get("text")),
        }
        return Step(corrections.accept, arguments, {**fields, "resource": contained}, where)
    raise Problem(
        422,
        "Task.businessStatus must be in-review, waiting-for-information, denied,"
        " amendment-completed or partial-amendment-completed",
        code="business-rule",
        expression="Task.businessStatus",
    )


def withdrawal(task: dict, found) -> list[Step]:
    """A patient's app may only withdraw: Task.status cancelled, the note in statusReason.text."""
    if task.get("status") != Status.CANCELLED:
        raise Problem(
            422,
            "Your app may only withdraw the request: set Task.status to cancelled",
            code="business-rule",
            expression="Task.status",
        )
    code = business_status(task)
    if code not in (None, found.business_status, BusinessStatus.CANCELLED):
        raise Problem(
            422,
            f"Your app may only withdraw the request: leave Task.businessStatus out or set it to"
            f" {BusinessStatus.CANCELLED.value}",
            code="business-rule",
            expression="Task.businessStatus",
        )
    if found.status == Status.CANCELLED:
        return []  # withdrawn already: nothing to do
    note = _text((task.get("statusReason") or {}).get("text"))
    return [Step(corrections.withdraw, {"note": note}, {"note": "Task.statusReason.text"}, "Task.status")]


def business_status(task: dict) -> str | None:
    """The guide's businessStatus code in the Task, or None when it has none."""
    if "businessStatus" not in task:
        return None
    codings = (task.get("businessStatus") or {}).get("coding") or []
    for coding in codings:
        if coding.get("system") in (None, correction_fhir.BUSINESS_STATUS_SYSTEM) and coding.get("code"):
            return coding["code"]
    raise Problem(
        400, "Name the step in Task.businessStatus.coding[0].code", expression="Task.businessStatus"
    )


def changed_deadline(task: dict, found) -> date | None:
    """The deadline in Task.restriction.period.end, if the Task asks for another one."""
    restriction = task.get("restriction")
    period = restriction.get("period") if isinstance(restriction, dict) else None
    end = period.get("end") if isinstance(period, dict) else None
    if end is None:
        return None
    match = DAY.match(end) if isinstance(end, str) else None
    try:
        until = date.fromisoformat(match.group(1)) if match else None
    except ValueError:
        until = None
    if until is None:
        raise Problem(400, "Give the new deadline as a full date (YYYY-MM-DD)", expression=DEADLINE)
    return None if until == found.due_on else until


def changed_assignee(task: dict, found) -> User | None:
    """The colleague the assignee extension names, if it names another one than now."""
    for extension in task.get("extension") or []:
        if not isinstance(extension, dict) or extension.get("url") != correction_fhir.ASSIGNEE_EXTENSION:
            continue
        reference = _text((extension.get("valueReference") or {}).get("reference"))
        match = STAFF.match("/".join(reference.split("/")[-2:]))
        if match is None:
            raise Problem(
                422,
                "Name the colleague as Practitioner/staff-<id>",
                code="business-rule",
                expression=ASSIGNEE,
            )
        if int(match.group(1)) == found.assigned_to_id:
            return None
        colleague = User.objects.filter(pk=int(match.group(1))).first()
        if colleague is None:
            # The words accuracy.services.assign uses for a non-member: the two look alike.
            raise Problem(
                422, "Choose a colleague at your organisation", code="business-rule", expression=ASSIGNEE
            )
        return colleague
    return None


def amended_resource(task: dict, found) -> tuple[dict, str]:
    """The contained resource Task.output[].valueReference points at, with the item's id."""
    local = None
    for output in task.get("output") or []:
        reference = _text((output.get("valueReference") or {}).get("reference"))
        if reference.startswith("#"):
            local = reference[1:]
            break
    if not local:
        raise Problem(
            400,
            "Reference the amended item, contained in the Task, from Task.output[].valueReference (#<id>)",
            expression="Task.output",
        )
    for index, resource in enumerate(task.get("contained") or []):
        if resource.get("id") == local:
            amended = {k: v for k, v in resource.items()}
            amended["id"] = found.entry.fhir_id
            return amended, f"Task.contained[{index}]"
    raise Problem(400, f"No contained resource has the id {local}", expression="Task.contained")


def focus_version(task: dict) -> int:
    reference = _text((task.get("focus") or {}).get("reference"))
    parts = reference.split("/")
    if len(parts) == 4 and parts[2] == "_history" and parts[3].isdigit():
        return int(parts[3])
    raise Problem(
        400,
        "Task.focus must name the version the amendment is based on: <Type>/<id>/_history/<n>",
        expression="Task.focus",
    )


# --- 5 and 6. POST and GET /fhir/Communication -----------------------------------------


NOTICE_FILTERS = frozenset({"recipient", "recipient:identifier"})
# A notice is dated when it was sent; oldest first without _sort.
NOTICE_SORT = {"date": "sent_at"}
COMMUNICATION_WRITERS = {
    ActorRole.SYSTEM: "system/Communication.write",
    ActorRole.PATIENT: "patient/Communication.write",
}
MESSAGE = "Communication.payload[0].contentString"


@write_view(("GET", "HEAD", "POST"))
def communications(request):
    """GET: notices or a conversation (contract 6); POST: a message on a request (contract 5)."""
    if request.method == "POST":
        return post_message(request)
    return notices(request)


def post_message(request) -> HttpResponse:
    """The owner's system writes to the patient, or the patient's app replies, or logs a
    disagreement with a refusal (contract 5)."""
    actor = writer(request, COMMUNICATION_WRITERS)
    communication = check_resource(read_json(request, "Communication"), "Communication")
    task_id = part_of_task(communication)
    body = _first_text(communication.get("payload"), "contentString")
    if not body:
        raise Problem(400, "Write the message in payload[0].contentString", expression=MESSAGE)
    disagreement = is_disagreement(communication)
    found = corrections.request_for(actor, task_id)
    if disagreement:
        # The patient states a disagreement; the owner's system responds to it.
        by_patient = actor.role == ActorRole.PATIENT
        function = corrections.log_disagreement if by_patient else corrections.add_rebuttal
        step = Step(function, {"text": body}, {"text": MESSAGE}, "Communication.category[0]")
    else:
        # The patient's reply answers a question when the request waits for information.
        function = corrections.patient_reply if actor.role == ActorRole.PATIENT else corrections.post_message
        step = Step(function, {"body": body}, {"body": MESSAGE}, "Communication.partOf[0]")
    with transaction.atomic():  # the request stays locked until what was written is read back
        step.take(actor, found, found.revision)
        if disagreement:
            kind = Statement.Kind.DISAGREEMENT if by_patient else Statement.Kind.REBUTTAL
            statement = Statement.objects.select_related("request__owner").get(request=found, kind=kind)
            # What the writer has just written is theirs to read back.
            resource = correction_fhir.statement_resource(statement, statement.text)
        else:
            message = Message.objects.select_related("request__owner").filter(request=found).latest("id")
            resource = correction_fhir.communication_resource(message, message.body)
    reply = response(resource, 201)
    reply["Location"] = f"{views.base_url(request)}Communication/{resource['id']}"
    return reply


def is_disagreement(communication: dict) -> bool:
    """Whether the Communication is of the guide's disagreement process (its category)."""
    codings = [
        coding
        for category in communication.get("category") or []
        if isinstance(category, dict)
        for coding in category.get("coding") or []
        if isinstance(coding, dict)
    ]
    return any(
        coding.get("code") == correction_fhir.DISAGREEMENT
        and coding.get("system") in (None, correction_fhir.COMMUNICATION_TYPE_SYSTEM)
        for coding in codings
    )


def part_of_task(communication: dict) -> str:
    """The id of the Task that Communication.partOf[0] names (Task/<id>)."""
    part_of = communication.get("partOf")
    reference = ""
    if isinstance(part_of, list) and part_of and isinstance(part_of[0], dict):
        reference = _text(part_of[0].get("reference"))
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or parts[-2] != "Task" or not parts[-1]:
        raise Problem(
            400,
            "Name the correction request in partOf[0].reference, as Task/<id>",
            expression="Communication.partOf[0]",
        )
    return parts[-1]


@views.fhir_view
def notices(request):
    """Notices for the caller's organisation (contract 6), else the conversation search."""
    actor = views.caller(request, "Communication")
    wants_notices = "recipient" in request.GET or "recipient:identifier" in request.GET
    if not wants_notices and not (actor.role == ActorRole.SYSTEM and "part-of" not in request.GET):
        return views.communication_search(request)
    answer = parse_answer(request.GET, NOTICE_FILTERS, NOTICE_SORT)
    organisation = actor.organisation if actor.role in (ActorRole.SYSTEM, ActorRole.CLINICIAN) else None
    if organisation is None:
        return views.no_matches(request, answer.page, answer.shape)
    for name in NOTICE_FILTERS:
        for value in request.GET.getlist(name):
            code = value.rpartition("|")[2].removeprefix("Organization/").strip().upper()
            if code != organisation.ods_code.upper():
                return views.no_matches(request, answer.page, answer.shape)
    notices = DownstreamNotice.objects.filter(organisation=organisation).order_by("sent_at", "id")
    total = notices.count()
    texts = []
    if not answer.shape.count_only:
        chosen = answer.page.of(sort_rows(notices, answer.sort))
        texts = list(chosen.values_list("communication", flat=True))
    base = views.base_url(request)
    # Served as stored (or subsetted by _elements); decoded only to name each one in its fullUrl.
    parts = [
        bundle_entry(f"{base}Communication/{json.loads(text)['id']}", views.shaped(text, answer.shape))
        for text in texts
    ]
    detail = {"api": "fhir", "notices": len(texts)}
    if answer.shape.count_only:
        detail["summary"] = "count"
    audit.record(
        "correction.notice.read",
        outcome="permit",
        purpose="correction",
        detail=detail,
        **actor.audit_fields(),
    )
    if answer.shape.count_only:
        return views.total_only(request, total)
    return views.searchset(request, parts, answer.page, total)
