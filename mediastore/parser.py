"""The API's JSON body parser."""

from __future__ import annotations

import array
import itertools
import json
import math
import re
import secrets
import sys
from collections.abc import Callable

from django.http import HttpRequest
from ninja.parser import Parser

from mediastore.compat import drop_request_body
from mediastore.errors import RuleViolation, UnsupportedMediaType
from mediastore.limits import MAX_JSON_DEPTH

# Bodies above this size are parsed without keeping Django's copy of the raw bytes.
LARGE_BODY = 1 << 20

# Top-level members whose large string values are decoded straight from the raw body (see
# ``register_large_member``): view name (``api:upload``) -> (member name, decode(bytes-like)).
_LARGE_MEMBERS: dict[str, tuple[str, Callable[[memoryview], object]]] = {}
# A JSON string value that follows the member's name, up to its opening quote.
_AFTER_NAME = re.compile(rb'[ \t\r\n]*:[ \t\r\n]*"')


def is_json_request(request: HttpRequest) -> bool:
    """Whether the request says its body is JSON: ``Content-Type: application/json`` (with any
    parameters, e.g. ``; charset=utf-8``) or an ``application/<x>+json`` type.

    A body without Content-Type is not JSON here: every guard that reads JSON bodies (NUL check,
    size limit) goes by this declaration, and the published client always sends it."""
    content_type = request.content_type or ""
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


NUL_MESSAGE = "NUL characters are not allowed in paths, parameters or JSON strings"
# JSON escapes that can decode to text no database can store: NUL and UTF-16 surrogates.
SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _bad_text(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return True
    return False


def has_bad_text(value) -> bool:
    """Whether any string (key or value) below ``value`` holds NUL or an unpaired surrogate;
    iterative, so that nesting as deep as json.loads reads cannot exhaust the stack here."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _bad_text(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


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


# Nesting depth: every byte but brackets, quotes and backslashes dropped, escapes dropped, the
# strings (every other piece between quotes) dropped, then the running count of open brackets.
_NOT_SYNTAX = bytes(b for b in range(256) if b not in b'[]{}"\\')
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes


def nesting_over(raw: bytes, limit: int, openers: int | None = None) -> bool:
    """Whether the JSON text ``raw`` nests arrays and objects more than ``limit`` levels deep.

    Counted here, before parsing, so that the answer is the same at any depth of the call stack
    (json's C parser recurses, and its RecursionError came at whatever depth Python had left). A
    body with no more brackets than ``limit`` cannot be deeper; others are counted in C-speed
    passes (bytes.translate, split, itertools.accumulate). ``openers``: the brackets' count, when
    the caller has it already. Malformed text is the parser's to refuse."""
    if (_openers(raw) if openers is None else openers) <= limit:
        return False
    syntax = raw.translate(None, _NOT_SYNTAX)
    if b"\\" in syntax:  # backslashes only occur in strings, each escaping the next character
        syntax = _ESCAPE.sub(b"", syntax)
    brackets = b"".join(syntax.split(b'"')[::2])
    return max(itertools.accumulate(array.array("b", brackets.translate(_STEPS))), default=0) > limit


def _openers(text: str | bytes) -> int:
    if isinstance(text, bytes):
        return text.count(b"[") + text.count(b"{")
    return text.count("[") + text.count("{")


def _make_headroom(levels: int) -> None:
    """Let json's parser, which recurses once per level, go ``levels`` deep from this point of the
    call stack: the recursion limit is raised (never lowered) when what is left would not do, so a
    body within MAX_JSON_DEPTH parses wherever the parser is called from."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    needed = depth + levels + 64
    if sys.getrecursionlimit() < needed:
        sys.setrecursionlimit(needed)


def loads(text: str | bytes):
    """Strict JSON. ``NaN`` and ``Infinity``, which Python's json accepts but JSON does not, are
    syntax errors (ValueError, ninja's 400 like any malformed body). Valid JSON that we cannot hold
    is a RuleViolation (422) saying what: numbers that overflow to infinity (``1e400``; neither
    PostgreSQL's jsonb nor SQLite's JSON check takes them), duplicate keys in one object (which one
    would win is a guess), and nesting deeper than ``MAX_JSON_DEPTH`` levels."""
    openers = _openers(text)
    if isinstance(text, bytes) and nesting_over(text, MAX_JSON_DEPTH, openers):
        raise RuleViolation(f"JSON body is nested more than {MAX_JSON_DEPTH} levels deep")
    if openers > 100:  # a body this shallow parses at any depth a request reaches
        _make_headroom(min(openers, MAX_JSON_DEPTH))
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
    except RecursionError:  # only with a call stack nearly used up before parsing began
        raise RuleViolation(f"JSON body is nested more than {MAX_JSON_DEPTH} levels deep") from None
    if overflowed:
        raise RuleViolation(
            f"number {overflowed[0][:40]} at '{_infinite_at(data)}' is too large "
            "(numbers must be finite 64-bit floats)"
        )
    return data


def register_large_member(view_name: str, name: str, decode: Callable[[memoryview], object]) -> None:
    """Let a large body sent to the view ``view_name`` (as ``reverse`` names it, e.g.
    ``api:upload``) skip the text parse for its top-level string member ``name``: ``decode`` gets
    its raw bytes (a memoryview of the body) and its result is what ``large_member`` returns.
    Bodies of other views are parsed as text, whatever members they have.

    A base64 upload's body is almost all one string. Decoding the body to text and parsing it
    makes two more copies of that string, each as large as the body, and scans it a character at a
    time; finding its closing quote with ``bytes.find`` and handing the bytes between the quotes to
    the decoder takes a fraction of that (docs/performance.md). ``decode`` raises on input it
    does not take; the body is then parsed the usual way, so every answer stays the one the full
    parse gives (a 400 for a control character in the string, say)."""
    _LARGE_MEMBERS[view_name] = (name, decode)


def large_member(request: HttpRequest, value):
    """What ``decode`` made of a member that ``JsonParser`` took from the raw body, when ``value``
    is the stand-in the parsed body holds for it; otherwise None (the member was parsed as usual)."""
    held = getattr(request, "_mediastore_large_members", None)
    return held.pop(value, None) if held and isinstance(value, str) else None


def _take_large_member(request: HttpRequest, raw: bytes):
    """Parse ``raw`` with the value of its registered member left out, or None when that does not
    apply (another view, no such member, a value under LARGE_BODY or under half the body, a
    backslash in it, or the decoder refuses it).

    The member's string has no quote (it ends at the first one) and no backslash, so the body
    without it reads exactly as the body with it: the rest is parsed strictly (``loads``) with a
    random stand-in in its place, and it counts only if the stand-in is what the parse put at that
    top-level name, i.e. the quotes found really delimit that member's value. Only the longest
    string after such a name is tried, and only when it is most of the body, so a body that does
    not fit costs at most a parse of its smaller part more than before."""
    match = getattr(request, "resolver_match", None)
    registered = _LARGE_MEMBERS.get(match.view_name) if match is not None else None
    if registered is None:
        return None
    name, decode = registered
    quoted = json.dumps(name).encode()
    longest = (0, 0)
    at = raw.find(quoted)
    while at != -1:
        at += len(quoted)
        after = _AFTER_NAME.match(raw, at)
        if after:
            start = after.end()
            end = raw.find(b'"', start)
            if end == -1:
                break
            if end - start > longest[1] - longest[0]:
                longest = (start, end)
            at = end
        at = raw.find(quoted, at)
    start, end = longest
    if end - start < max(LARGE_BODY, len(raw) // 2) or raw.find(b"\\", start, end) != -1:
        return None
    return _parse_without(request, raw, name, start, end, decode)


def _parse_without(request: HttpRequest, raw: bytes, name: str, start: int, end: int, decode):
    stand_in = f"mediastore-large-member-{secrets.token_hex(16)}"
    try:
        data = loads(raw[:start] + stand_in.encode() + raw[end:])
    except (ValueError, RuleViolation):
        return None  # the full parse gives the answer, with its positions
    if not isinstance(data, dict) or data.get(name) != stand_in:
        return None
    try:
        value = decode(memoryview(raw)[start:end])
    except (ValueError, RuleViolation):
        return None
    request._mediastore_large_members = {stand_in: value}
    return data


class JsonParser(Parser):
    """Parses JSON bodies strictly (see ``loads``), refuses other media types, and lets go of a large
    raw body early.

    Only operations that take a JSON body reach ``parse_body`` (the raw stream
    ``PUT /api/media/{pid}/content`` never does), so a body named as something else
    (``text/plain``, or the form encoding ``curl -d`` uses without ``-H``) is a 415 here.

    Django keeps ``request.body`` for the whole request. A base64 upload's body can be hundreds of
    MB, and its raw bytes, their decoded text, the parsed base64 string and the decoded bytes would
    otherwise all be alive at once. A registered large member (``register_large_member``) is
    decoded from the raw bytes without any text; otherwise the raw copy is dropped once the body is
    decoded to text (the API reads each body once), which keeps a base64 upload under 4x its size
    in memory.

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
        # NUL or half a surrogate pair: no database stores them (422, as RejectNulMiddleware answers
        # for paths). Only bodies with such an escape at all are searched once parsed.
        suspect = b"\\" in raw and SUSPECT_ESCAPE.search(raw) is not None
        if len(raw) < LARGE_BODY:
            data = loads(raw)
        else:
            drop_request_body(request)  # from here on ``raw`` is the only reference
            data = _take_large_member(request, raw)
            if data is None:
                if nesting_over(raw, MAX_JSON_DEPTH):
                    raise RuleViolation(f"JSON body is nested more than {MAX_JSON_DEPTH} levels deep")
                text = raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads(bytes) does
                del raw
                data = loads(text)
        if suspect and has_bad_text(data):
            raise RuleViolation(NUL_MESSAGE)
        return data
