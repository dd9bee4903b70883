"""What every FHIR view shares: ``fhir_view``, the one door of every view, read or write
(the methods it answers, Django's CSRF check for a session caller, every error an
OperationOutcome); who is calling and with which scopes; search answers and their paging
links; and the two endpoints every type shares: a search POSTed to ``<Type>/_search``, and
anything else under /fhir/ (404). The contract is docs/fhir.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db.models import QuerySet
from django.http import HttpResponse, QueryDict
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import Resolver404, reverse
from django.urls import resolve as resolve_url
from django.views.decorators.csrf import csrf_exempt

from consent.policy import SECOND_FACTOR_NEEDED, Actor, ActorRole, NotFound
from phr import fhir as fhir_models
from phr.columns import parse_fhir_datetime
from phr.ingest import UnusableInput, parse_json

from ..auth import InvalidToken, api_actor, bearer_token, has_scope
from .bundle import bundle, bundle_entry, not_found, outcome, response, subsetted
from .search import IGNORED, Answer, Page, SearchError, Shape, sort_items, sort_rows

# The methods a view answers unless it names others (fhir_view).
READS = ("GET", "HEAD")
# Patient search parameters that carry an NHS number, a name or a birth date: POST only.
DEMOGRAPHIC_PARAMS = ("identifier", "name", "family", "given", "birthdate")
FORM = "application/x-www-form-urlencoded"
JSON_TYPES = ("application/fhir+json", "application/json")
WHO = {ActorRole.PATIENT: "a patient", ActorRole.SYSTEM: "an organisation system"}


class Unauthenticated(Exception):
    def __init__(self, challenge: str = 'Bearer realm="fhir"'):
        super().__init__(challenge)
        self.challenge = challenge


class MissingScope(Exception):
    def __init__(self, scope: str):
        super().__init__(scope)
        self.scope = scope


class SecondFactorMissing(Exception):
    """Staff without a second factor set up: the policy refuses them every record and
    audit trail; the FHIR answer says why instead of a bare 404."""


class Ambiguous(Exception):
    """A read by id that more than one permitted resource answers: 409."""


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


def fhir_view(view=None, /, *, methods: tuple[str, ...] = READS):
    """The one door of every FHIR view, read or write: only the methods named (a search
    POSTed to <Type>/_search is answered as a GET, see post_search), Django's CSRF check
    for a caller signed in by the portal's session, and every error an OperationOutcome,
    never an HTML page or a bare 500. ``@fhir_view`` reads; ``@fhir_view(methods=...)``
    names the methods a view answers."""
    if view is None:
        return lambda view: fhir_view(view, methods=methods)

    @csrf_exempt  # checked in the wrapper for a session; a bearer token needs no CSRF check
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in methods and not posted(request):
            reply = outcome(405, f"{request.method} is not supported here", code="not-supported")
            reply["Allow"] = ", ".join(methods)
            return reply
        try:
            if fails_csrf(request):
                raise Problem(403, "The CSRF check failed: send the portal's CSRF token", code="forbidden")
            return view(request, *args, **kwargs)
        except Unauthenticated as refused:
            reply = outcome(401, "Sign in or send a valid bearer token", code="login")
            reply["WWW-Authenticate"] = refused.challenge
            return reply
        except MissingScope as missing:
            return outcome(
                403, f"The access token does not carry the scope {missing.scope}", code="forbidden"
            )
        except SecondFactorMissing:
            return outcome(403, SECOND_FACTOR_NEEDED, code="forbidden")
        except Problem as problem:
            return outcome(problem.status, problem.message, code=problem.code, expression=problem.expression)
        except Issues as invalid:
            return operation_outcome(invalid.status, invalid.issues)
        except SearchError as error:
            return outcome(400, error.message, code=error.code, expression=error.parameter)
        except NotFound:
            return not_found()
        except Ambiguous:
            return outcome(
                409,
                "More than one organisation holds a resource of this type with this id: read it by"
                " its entry id, or search with _id and patient",
                code="multiple-matches",
            )

    return wrapper


def fails_csrf(request) -> bool:
    """Whether a request that may change something (a write, or a POSTed search) comes
    from the portal's session without passing Django's CSRF check. A browser never sends
    a bearer token by itself, so a token needs no check; a caller with neither is
    answered 401 by the view; a POSTed search was checked once, at post_search."""
    if request.method in READS or posted(request):
        return False
    try:
        if bearer_token(request) is not None:
            return False
    except InvalidToken:
        return False  # an empty bearer token: the view answers 401
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    check = CsrfViewMiddleware(lambda _: None)
    check.process_request(request)
    try:  # a form body is read for its csrfmiddlewaretoken field
        return check.process_view(request, None, (), {}) is not None
    except RequestDataTooBig:
        raise Problem(413, "The request is too large", code="too-costly") from None
    except TooManyFieldsSent:
        raise Problem(400, "The request has too many parameters", code="too-costly") from None


def posted(request) -> bool:
    """Whether this is a search POSTed to <Type>/_search, its parameters in request.GET."""
    return getattr(request, "posted_search", False)


def signed_in(request) -> Actor:
    """The signed-in actor (a session or a valid bearer token), or Unauthenticated."""
    try:
        actor = api_actor(request)
    except Exception as invalid:
        # api.auth refuses a bad bearer token with an exception carrying its challenge.
        challenge = getattr(invalid, "challenge", None)
        if challenge is None:
            raise
        raise Unauthenticated(challenge) from None
    if actor.role == ActorRole.ANONYMOUS:
        raise Unauthenticated
    if actor.second_factor_missing:
        raise SecondFactorMissing
    return actor


def caller(request, resource_type: str) -> Actor:
    """The signed-in actor, holding a read scope for ``resource_type``."""
    actor = signed_in(request)
    context = {ActorRole.PATIENT: "patient", ActorRole.SYSTEM: "system"}.get(actor.role, "user")
    scope = f"{context}/{resource_type}.read"
    if not (has_scope(request, scope) or has_scope(request, f"{context}/*.read")):
        raise MissingScope(scope)
    return actor


def record_reader(request) -> Actor:
    """The signed-in actor, releasing at least one resource type of the record: an
    operation over the whole record ($everything, $summary) answers the types it
    releases (the policy filters the entries), and a token that releases none is refused."""
    actor = signed_in(request)
    if actor.readable_types is not None and not actor.readable_types:
        context = {ActorRole.PATIENT: "patient", ActorRole.SYSTEM: "system"}.get(actor.role, "user")
        raise MissingScope(f"{context}/*.read")
    return actor


def base_url(request) -> str:
    return request.build_absolute_uri(reverse("fhir:metadata")).removesuffix("metadata")


def own_or_given(actor: Actor, given: str | None, parameter: str = "patient") -> str:
    """The patient a search is about: the one given, or a patient's own record."""
    if given:
        return given
    if actor.role == ActorRole.PATIENT and actor.patient_id:
        return str(actor.patient_id)
    raise SearchError(parameter, f"This search needs {parameter}=<patient id>")


def page_links(request, page: Page, returned: int, total: int | None) -> list[tuple[str, str]]:
    """self, and previous/next by _offset; built from the query only (ids, never names).
    A POSTed search's parameters stay out of URLs: it links only to itself, bare."""
    path = request.build_absolute_uri(request.path)
    if posted(request):
        return [("self", path)]
    params = [(k, v) for k, v in request.GET.lists() for v in v if k not in ("_count", "_offset")]

    def url(offset: int) -> str:
        return f"{path}?{urlencode([*params, ('_count', page.count), ('_offset', offset)])}"

    links = [("self", url(page.offset))]
    if page.offset:
        links.append(("previous", url(max(page.offset - page.count, 0))))
    if total is not None and page.offset + returned < total:
        links.append(("next", url(page.offset + page.count)))
    return links


def query_detail(request) -> str:
    """The search for the audit trail: parameter names always, values only where they can
    carry no NHS number, name or birth date."""
    parts = [
        (name, "-" if name in DEMOGRAPHIC_PARAMS else value)
        for name, values in request.GET.lists()
        for value in values
    ]
    return urlencode(parts)[:500]


def writer(request, scopes: dict[ActorRole, str]) -> Actor:
    """The signed-in caller, if it is of one of the roles named and holds that role's
    scope (a session passed the CSRF check at the door, fhir_view)."""
    actor = signed_in(request)
    if actor.role not in scopes:
        raise Problem(403, f"Only {' or '.join(WHO[role] for role in scopes)} may do this", code="forbidden")
    if not has_scope(request, scopes[actor.role]):
        raise MissingScope(scopes[actor.role])
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


def searchset(request, parts: list[str], page: Page, total: int | None) -> HttpResponse:
    links = page_links(request, page, len(parts), total)
    return response(bundle("searchset", parts, total=total, links=links))


def empty_searchset(request, page: Page) -> HttpResponse:
    return searchset(request, [], page, 0)


def total_only(request, total: int) -> HttpResponse:
    """_summary=count: the total, no entries, and a self link."""
    return response(bundle("searchset", [], total=total, links=page_links(request, Page(), 0, None)[:1]))


def no_matches(request, page: Page, shape: Shape) -> HttpResponse:
    """A search that finds nothing the caller may see, answered as asked (a count or not)."""
    return total_only(request, 0) if shape.count_only else empty_searchset(request, page)


def shaped(text: str, shape: Shape | None) -> str:
    """A resource's text as a search answers it: subsetted when _elements asks."""
    return subsetted(text, shape.elements) if shape and shape.elements else text


def portal_searchset(
    request,
    answer: Answer,
    found: QuerySet | list[dict],
    to_resource: Callable[..., dict] | None = None,
    *,
    to_resources: Callable[[list], list[dict]] | None = None,
) -> HttpResponse:
    """A search of the portal's own resources answered as asked: the total alone, or one
    page in _sort's order, each resource shaped by _elements. ``found`` is either rows the
    caller may see (counted, sorted and paged in the database, and made resources by
    ``to_resource`` one row at a time, or by ``to_resources`` given the page's rows) or a
    list of the resources already built."""
    rows = isinstance(found, QuerySet)
    total = found.count() if rows else len(found)
    if answer.shape.count_only:
        return total_only(request, total)
    chosen = answer.page.of(sort_rows(found, answer.sort) if rows else sort_items(found, answer.sort))
    if rows:
        chosen = to_resources(list(chosen)) if to_resources else map(to_resource, chosen)
    base = base_url(request)
    parts = [
        bundle_entry(
            f"{base}{resource['resourceType']}/{resource['id']}",
            shaped(json.dumps(resource, ensure_ascii=False), answer.shape),
        )
        for resource in chosen
    ]
    return searchset(request, parts, answer.page, total)


def dated_by(element: str):
    """A _sort key for a resource the portal builds: the date in one of its elements."""
    return lambda resource: parse_fhir_datetime(resource.get(element))


@fhir_view(methods=("POST",))
def post_search(request, resource_type: str):
    """POST <Type>/_search: the same search as GET <Type>, its parameters in a form body.

    The GET view answers it, with request.GET replaced by the body's parameters; nothing
    of the body reaches a URL (see page_links) or the audit trail's values (query_detail).
    """
    content_type = request.META.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if content_type not in ("", FORM):
        return outcome(415, f"Send the search parameters as {FORM}", code="not-supported")
    in_url = [name for name in request.GET if name not in IGNORED]
    if in_url:
        return outcome(400, "Send every search parameter in the body, none in the URL", expression=in_url[0])
    try:
        params = request.POST if content_type == FORM else QueryDict()
    except RequestDataTooBig:
        return outcome(413, "The search is too large", code="too-costly")
    except TooManyFieldsSent:
        return outcome(400, "The search has too many parameters", code="too-costly")
    try:
        match = resolve_url(reverse("fhir:search", kwargs={"resource_type": resource_type}))
    except Resolver404:
        return outcome(404, "This server has no such endpoint", code="not-supported")
    request.GET = params
    request.posted_search = True
    return match.func(request, *match.args, **match.kwargs)


@fhir_view
def unknown(request, rest: str = ""):
    """Anything else under /fhir/: an OperationOutcome, never an HTML page."""
    return outcome(404, "This server has no such endpoint", code="not-supported")
