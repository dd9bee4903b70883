"""Everything the portal knows about fhir.resources lives here.

Validation uses the R4B models: the package's default models are R5 and reject real R4
data. The rest of the code sees plain dicts, FHIRPath-style element paths and
OperationOutcome dicts, never a pydantic model.
"""

import json
from functools import cache

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

# Messages rewritten in plain words; pydantic's own wording is kept for anything else.
PLAIN_MESSAGES = {
    "extra_forbidden": "is not an element of this resource type in FHIR R4",
    "missing": "is required but missing",
    "string_type": "must be a string",
    "list_type": "must be a list (a JSON array)",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "decimal_type": "must be a number",
    "decimal_parsing": "must be a number",
}


@cache
def model_class(resource_type: str):
    """The R4B model for a resource type, or None when FHIR R4 has no such resource."""
    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError, ImportError):
        return None


@cache
def mandatory_elements(resource_type: str) -> frozenset[str]:
    """The top-level elements FHIR R4 requires of a resource type (any choice of a required
    value[x]): a search's _elements keeps them, as the specification says a server should."""
    cls = model_class(resource_type)
    if cls is None:
        return frozenset()
    names = set()
    for name, info in cls.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if info.is_required() or extra.get("element_required") or extra.get("one_of_many_required"):
            names.add(info.alias or name)
    return frozenset(names)


def _path(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            if parts:
                parts[-1] += f"[{item}]"
            continue
        # pydantic adds validator names for some unions and wrapped validators.
        if not isinstance(item, str) or any(c in item for c in "[(:, "):
            continue
        if item == "__root__":
            continue
        parts.append(item)
    return ".".join(parts)


def validate(resource: dict) -> list[tuple[str, str]]:
    """Validate one resource against FHIR R4; return (relative element path, message) pairs.

    An empty list means valid. The path is relative to the resource ("" for the resource
    itself); the caller prefixes where the resource sat (a bundle entry, a file line).
    """
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        return [("resourceType", "is required: every resource must name its resourceType")]
    cls = model_class(resource_type)
    if cls is None or not _is_resource_class(cls):
        return [("resourceType", f"'{resource_type[:64]}' is not a FHIR R4 resource type")]
    try:
        cls.model_validate(resource)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            message = PLAIN_MESSAGES.get(error["type"]) or error.get("msg", "is not valid")
            problems.append((_path(tuple(error.get("loc", ()))), message.removeprefix("Value error, ")))
        return problems or [("", "is not a valid FHIR R4 resource")]
    except Exception:
        # fhir.resources raises plain KeyError/TypeError on some malformed values (an
        # invalid type name inside a reference, say); the resource is still invalid.
        return [("", "is not a valid FHIR R4 resource: an element holds a value of the wrong kind")]
    return []


@cache
def _is_resource_class(cls) -> bool:
    # Data types (HumanName, Coding...) are models too; only resources may stand alone.
    from fhir.resources.R4B.resource import Resource

    return issubclass(cls, Resource)


def issue(expression: str, diagnostics: str, *, severity: str = "error", code: str = "invalid") -> dict:
    """One OperationOutcome.issue naming the element at fault."""
    entry = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        entry["expression"] = [expression]
    return entry


def operation_outcome(issues: list[dict]) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": issues
        or [issue("", "All resources were accepted", severity="information", code="informational")],
    }


def bundle_entry(full_url: str, text: str, mode: str | None = "match") -> str:
    """One Bundle entry around a resource already serialised (stored JSON is served as
    it is, never parsed again); ``mode`` is its search mode, None for none."""
    search = f',"search":{{"mode":"{mode}"}}' if mode else ""
    return f'{{"fullUrl":{json.dumps(full_url)},"resource":{text}{search}}}'


def validate_text(text: bytes) -> list[tuple[str, str]]:
    """validate() for a resource sent as its JSON bytes: what a validating process of a
    parallel ingest is given (bytes cross a process boundary far cheaper than a dict)."""
    return validate(json.loads(text))
