"""The JSON API's request bodies, parsed by the same function as the FHIR writes'
(phr.ingest.parse_json), so that JSON nested too deeply or a number longer than Python
converts is a 400 saying so on both, never a server error."""

from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from phr.ingest import UnusableInput, parse_json

NUL = "\x00"
NUL_MESSAGE = "This must not hold a NUL character (\\u0000)"


class SafeJSONParser(JSONParser):
    """DRF's JSON parser (same media type), with phr.ingest.parse_json's limits, and a
    NUL character anywhere refused naming where it is (PostgreSQL stores no NUL)."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read() if stream is not None else b""
        try:
            parsed = parse_json(data, "The request body")
        except UnusableInput as unusable:
            raise exceptions.ParseError(str(unusable)) from None
        where = nul_at(parsed)
        if where is not None:
            raise exceptions.ValidationError({where or "body": [NUL_MESSAGE]})
        return parsed


def nul_at(value) -> str | None:
    """Where the first NUL character is (keys and [indexes], dotted), or None. A loop, not
    recursion: a body may be nested as deeply as the parser allows."""
    stack = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return path
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                where = f"{path}.{key}" if path else str(key)
                if NUL in str(key):
                    return where.replace(NUL, "")
                stack.append((where, inner))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", inner) for index, inner in reversed(list(enumerate(item))))
    return None
