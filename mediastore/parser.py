"""The API's JSON body parser."""

from __future__ import annotations

import io
import json

from django.http import HttpRequest
from ninja.parser import Parser

# Bodies above this size are parsed without keeping Django's copy of the raw bytes.
LARGE_BODY = 1 << 20


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class JsonParser(Parser):
    """Parses JSON like ninja's default parser, but lets go of a large raw body early.

    Django keeps ``request.body`` for the whole request. A base64 upload's body can be hundreds of
    MB, and its raw bytes, their decoded text, the parsed base64 string and the decoded bytes would
    otherwise all be alive at once. Once the body is decoded to text the raw copy is dropped (the
    API reads each body once), which keeps a base64 upload under 4x its size in memory.

    ``NaN`` and ``Infinity``, which Python's json accepts but JSON does not (and neither
    PostgreSQL's jsonb nor SQLite's JSON check), are refused like any other malformed body.
    """

    def parse_body(self, request: HttpRequest):
        raw = request.body
        if len(raw) < LARGE_BODY:
            return json.loads(raw, parse_constant=_reject_constant)
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads(bytes) does
        del raw
        # Django keeps the bytes as _body and wrapped in _stream (a BytesIO sharing the buffer).
        request._body = b""
        request._stream = io.BytesIO()
        return json.loads(text, parse_constant=_reject_constant)
