"""Correction requests at /fhir/, as the HL7 Patient Request for Corrections guide has
them: Task (read, search, and PUT a step or a withdrawal), Communication (a request's
conversation, messages and statements of disagreement, and correction notices to an
organisation) and $correction-request. Thin views over accuracy.services, which holds the
rules: these only say which element of the body a refusal is about. The contracts are
docs/fhir.md, writes 2 to 6."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.db.models.functions import Coalesce
from django.http import HttpResponse

import audit
from accounts.models import User
from accuracy import fhir as correction_fhir
from accuracy import services as corrections
from accuracy.models import BusinessStatus, DownstreamNotice, Message, Statement, Status
from accuracy.selectors import release_copies, visible_requests
from consent.policy import Actor, ActorRole, NotFound
from phr.ingest import canonical_json
from phr.models import RecordEntry

from .bundle import bundle_entry, response
from .common import (
    Problem,
    base_url,
    caller,
    check_resource,
    dated_by,
    fhir_view,
    no_matches,
    portal_searchset,
    read_json,
    searchset,
    shaped,
    total_only,
    writer,
)
from .record import resolve
from .search import SearchError, parse_answer, patient_id, sort_rows

ELEMENT_EXTENSION = "https://patient-record-portal.example/StructureDefinition/correction-element"
ETAG = re.compile(r'^(?:W/)?"(\d{1,9})"$')
RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")


# --- Reading Task and Communication ----------------------------------------------------


# A conversation's Communication ids: <first 24 hex digits of the request>-m<message pk>
# or -s<statement pk> (accuracy.fhir).
CONVERSATION_ID = re.compile(r"([0-9a-f]{24})-([ms])([0-9]{1,18})")
CONVERSATION_KINDS = {
    "m": (Message, correction_fhir.communication_resource),
    "s": (Statement, correction_fhir.statement_resource),
}


def released_tasks(actor: Actor, found: list) -> list[dict]:
    """Requests as Tasks, their texts as the policy releases them to the actor (audited)."""
    copies = release_copies(actor, found, detail={"api": "fhir"})
    for_patient = actor.role == ActorRole.PATIENT
    return [correction_fhir.task_resource(r, copies[r.pk], for_patient=for_patient) for r in found]


@fhir_view
def task_read(request, task_id: str):
    actor = caller(request, "Task")
    found = corrections.request_for(actor, task_id)
    reply = response(released_tasks(actor, [found])[0])
    reply["ETag"] = f'W/"{found.revision}"'  # If-Match for PUT /fhir/Task/<id> (task_instance)
    return reply


# A Task's date is when it was authored; it was last updated when it was last modified
# (decided), as its lastModified says: the request keeps no other time of change.
TASK_SORT = {"date": "created_at", "_lastUpdated": Coalesce("decided_at", "created_at")}


@fhir_view
def task_search(request):
    """Correction requests as Tasks: ?patient=<uuid>, ?owner=<ODS code> (an organisation's
    queue), in the order of the actor's list (accuracy.selectors: the queue's, for an
    organisation) unless _sort says otherwise."""
    actor = caller(request, "Task")
    answer = parse_answer(request.GET, frozenset({"patient", "owner"}), TASK_SORT)
    requests = visible_requests(actor)
    if request.GET.get("patient"):
        requests = requests.filter(patient_id=patient_id(request.GET["patient"]))
    if request.GET.get("owner"):
        ods = request.GET["owner"].rpartition("|")[2].removeprefix("Organization/")
        requests = requests.filter(owner__ods_code=ods)
    return portal_searchset(
        request, answer, requests, to_resources=lambda found: released_tasks(actor, found)
    )


COMMUNICATION_SORT = {"date": dated_by("sent")}


def released_conversation(actor: Actor, found):
    """A request's thread, its words as the policy releases them to the actor (audited)."""
    return release_copies(actor, [found], thread=True, detail={"api": "fhir"})[found.pk]


@fhir_view
def communication_search(request):
    """A correction request's conversation: ?part-of=Task/<uuid>, its messages and
    statements of disagreement in the order they were written (or _sort's, by sent)."""
    actor = caller(request, "Communication")
    answer = parse_answer(request.GET, frozenset({"part-of"}), COMMUNICATION_SORT)
    part_of = request.GET.get("part-of")
    if not part_of:
        raise SearchError("part-of", "This search needs part-of=Task/<id>")
    try:
        found = corrections.request_for(actor, part_of.removeprefix("Task/"))
    except NotFound:
        return no_matches(request, answer.page, answer.shape)
    conversation = correction_fhir.conversation(released_conversation(actor, found))
    return portal_searchset(request, answer, conversation)


@fhir_view
def communication_read(request, resource_id: str):
    """Communication/<id>: a message (``<request>-m<n>``) or a statement of disagreement or
    the owner's response (``<request>-s<n>``) of a correction request the caller may see,
    or a correction notice to their organisation (``notice-...``); else 404 alike."""
    actor = caller(request, "Communication")
    if resource_id.startswith("notice-"):
        return response(notice_text(actor, resource_id))
    match = CONVERSATION_ID.fullmatch(resource_id)
    if match is None:
        raise NotFound
    prefix, kind, number = match.groups()
    model, render = CONVERSATION_KINDS[kind]
    # Only which request it belongs to here: its words are released below.
    request_id = model.objects.filter(pk=int(number)).values_list("request_id", flat=True).first()
    if request_id is None or request_id.hex[:24] != prefix:
        raise NotFound
    found = corrections.request_for(actor, request_id)  # NotFound alike when not theirs
    copies = released_conversation(actor, found)
    said = copies.messages if model is Message else copies.statements
    item, text = next(pair for pair in said if pair[0].pk == int(number))
    return response(render(item, text))


def _starting(field: str, prefix: str) -> dict:
    """A filter for every UUID whose hex starts with the prefix (an id holds only the
    first digits): as a range, which an index serves."""
    missing = 32 - len(prefix)
    return {
        f"{field}__gte": uuid.UUID(prefix + "0" * missing),
        f"{field}__lte": uuid.UUID(prefix + "f" * missing),
    }


def notice_text(actor: Actor, resource_id: str) -> str:
    """The stored correction notice if it was sent to the actor's organisation, audited as
    the notices search is: ``notice-<request prefix>-<organisation>`` after a patient's
    request, ``notice-<finding prefix>-<entry prefix>-<organisation>`` after a holder
    corrected an item from an accuracy check's finding."""
    prefix, _, organisation_id = resource_id.removeprefix("notice-").rpartition("-")
    organisation = actor.organisation if actor.role in (ActorRole.SYSTEM, ActorRole.CLINICIAN) else None
    if organisation is None or organisation_id != str(organisation.pk):
        raise NotFound
    notices = DownstreamNotice.objects.filter(organisation=organisation)
    try:
        if len(prefix) == 24:
            notices = notices.filter(**_starting("request_id", prefix))
        elif len(prefix) == 41 and prefix[20] == "-":
            notices = notices.filter(
                **_starting("finding_id", prefix[:20]), **_starting("entry_id", prefix[21:])
            )
        else:
            raise NotFound
    except ValueError:
        raise NotFound from None
    text = notices.order_by("sent_at", "id").values_list("communication", flat=True).first()
    if text is None:
        raise NotFound
    audit.record(
        "correction.notice.read",
        outcome="permit",
        purpose="correction",
        detail={"api": "fhir", "notices": 1},
        **actor.audit_fields(),
    )
    return text


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
    _, pk = resolve(actor, parts[0], parts[1])
    return pk


@fhir_view(methods=("POST",))
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
    reply["Location"] = f"{base_url(request)}Task/{found.pk}"
    return reply


def task_response(actor: Actor, found, status: int = 200) -> HttpResponse:
    task = released_tasks(actor, [found])[0]
    reply = response(task, status)
    reply["ETag"] = f'W/"{task["meta"]["versionId"]}"'  # meta.versionId is the request's revision
    return reply


# --- 3 and 4. GET and PUT /fhir/Task/<id> ----------------------------------------------

TASK_WRITERS = {ActorRole.SYSTEM: "system/Task.write", ActorRole.PATIENT: "patient/Task.write"}
ASSIGNEE = f"Task.extension('{correction_fhir.ASSIGNEE_EXTENSION}').valueReference"
DEADLINE = "Task.restriction.period.end"
STAFF = re.compile(r"^Practitioner/staff-(\d{1,18})$")
DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T.*)?$")


@fhir_view(methods=("GET", "HEAD", "PUT"))
def task_instance(request, task_id: str):
    """GET reads the Task (task_read); PUT takes steps (contracts 3 and 4)."""
    if request.method != "PUT":
        return task_read(request, task_id=task_id)
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


@fhir_view(methods=("GET", "HEAD", "POST"))
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
    reply["Location"] = f"{base_url(request)}Communication/{resource['id']}"
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


@fhir_view
def notices(request):
    """Notices for the caller's organisation (contract 6), else the conversation search."""
    actor = caller(request, "Communication")
    wants_notices = "recipient" in request.GET or "recipient:identifier" in request.GET
    if not wants_notices and not (actor.role == ActorRole.SYSTEM and "part-of" not in request.GET):
        return communication_search(request)
    answer = parse_answer(request.GET, NOTICE_FILTERS, NOTICE_SORT)
    organisation = actor.organisation if actor.role in (ActorRole.SYSTEM, ActorRole.CLINICIAN) else None
    if organisation is None:
        return no_matches(request, answer.page, answer.shape)
    for name in NOTICE_FILTERS:
        for value in request.GET.getlist(name):
            code = value.rpartition("|")[2].removeprefix("Organization/").strip().upper()
            if code != organisation.ods_code.upper():
                return no_matches(request, answer.page, answer.shape)
    notices = DownstreamNotice.objects.filter(organisation=organisation).order_by("sent_at", "id")
    total = notices.count()
    texts = []
    if not answer.shape.count_only:
        chosen = answer.page.of(sort_rows(notices, answer.sort))
        texts = list(chosen.values_list("communication", flat=True))
    base = base_url(request)
    # Served as stored (or subsetted by _elements); decoded only to name each one in its fullUrl.
    parts = [
        bundle_entry(f"{base}Communication/{json.loads(text)['id']}", shaped(text, answer.shape))
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
        return total_only(request, total)
    return searchset(request, parts, answer.page, total)
