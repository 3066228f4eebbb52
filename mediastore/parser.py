"""The API's JSON body parser."""

from __future__ import annotations

import io
import json
import math

from django.http import HttpRequest
from ninja.parser import Parser

from mediastore.errors import RuleViolation, UnsupportedMediaType

# Bodies above this size are parsed without keeping Django's copy of the raw bytes.
LARGE_BODY = 1 << 20


def is_json_request(request: HttpRequest) -> bool:
    """Whether the request says its body is JSON: ``Content-Type: application/json`` (with any
    parameters, e.g. ``; charset=utf-8``) or an ``application/<x>+json`` type.

    A body without Content-Type is not JSON here: every guard that reads JSON bodies (NUL check,
    size limit) goes by this declaration, and the published client always sends it."""
    content_type = request.content_type or ""
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")  # a syntax error like any other: 400


def _infinite_at(value) -> str | None:
    """Where (``a.b[0].c``) the first non-finite number below ``value`` is, or None; iterative."""
    stack: list[tuple[object, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path.lstrip(".") or "the body"
        if isinstance(item, dict):
            stack.extend((child, f"{path}.{key}") for key, child in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{index}]") for index, child in reversed(list(enumerate(item))))
    return None


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RuleViolation(f"duplicate key {key[:100]!r} in a JSON object; each key may appear once")
            seen.add(key)
    return obj


def loads(text: str | bytes):
    """Strict JSON. ``NaN`` and ``Infinity``, which Python's json accepts but JSON does not, are
    syntax errors (ValueError, ninja's 400 like any malformed body). Valid JSON that we cannot hold
    is a RuleViolation (422) saying what: numbers that overflow to infinity (``1e400``; neither
    PostgreSQL's jsonb nor SQLite's JSON check takes them), duplicate keys in one object (which one
    would win is a guess), and nesting too deep to parse (Python's recursion limit, about 1000)."""
    overflowed = []

    def parse_float(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            overflowed.append(text)
        return value

    try:
        data = json.loads(
            text, parse_constant=_reject_constant, parse_float=parse_float, object_pairs_hook=_unique_keys
        )
    except RecursionError:
        raise RuleViolation("JSON body is nested too deeply to be read") from None
    if overflowed:
        raise RuleViolation(
            f"number {overflowed[0][:40]} at '{_infinite_at(data)}' is too large "
            "(numbers must be finite 64-bit floats)"
        )
    return data


class JsonParser(Parser):
    """Parses JSON bodies strictly (see ``loads``), refuses other media types, and lets go of a large
    raw body early.

    Only operations that take a JSON body reach ``parse_body`` (the raw stream
    ``PUT /api/media/{pid}/content`` never does), so a body named as something else
    (``text/plain``, or the form encoding ``curl -d`` uses without ``-H``) is a 415 here.

    Django keeps ``request.body`` for the whole request. A base64 upload's body can be hundreds of
    MB, and its raw bytes, their decoded text, the parsed base64 string and the decoded bytes would
    otherwise all be alive at once. Once the body is decoded to text the raw copy is dropped (the
    API reads each body once), which keeps a base64 upload under 4x its size in memory.

    ninja wraps every error of ``parse_body`` in a 400; ``mediastore.api`` answers the
    MediastoreErrors raised here with their own status instead.
    """

    def parse_body(self, request: HttpRequest):
        if not is_json_request(request):
            sent = (
                f"not {request.content_type}" if request.content_type else "and the body has no Content-Type"
            )
            raise UnsupportedMediaType(
                f"this endpoint reads JSON, {sent}: send the body with 'Content-Type: application/json' "
                "(curl: -H 'Content-Type: application/json', or --json)"
            )
        raw = request.body
        if len(raw) < LARGE_BODY:
            return loads(raw)
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads(bytes) does
        del raw
        # Django keeps the bytes as _body and wrapped in _stream (a BytesIO sharing the buffer).
        request._body = b""
        request._stream = io.BytesIO()
        return loads(text)
