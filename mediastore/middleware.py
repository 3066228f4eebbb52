"""Request guards that apply to the whole API."""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.http import HttpRequest, JsonResponse, UnreadablePostError

from mediastore.parser import is_json_request


def is_json_body(request: HttpRequest) -> bool:
    """A JSON body bound for the API's parser; a raw stream to ``.../content`` is bytes whatever its
    Content-Type says, so it is never read or limited here."""
    if request.method == "PUT" and request.path.endswith("/content"):
        return False
    return request.path.startswith("/api/") and is_json_request(request)


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


def _has_nul(value) -> bool:
    """Whether any string (key or value) below ``value`` is bad text; iterative, so that nesting
    as deep as json.loads reads cannot exhaust the stack here."""
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


class RejectNulMiddleware:
    """Answer 422 for NUL characters or unpaired surrogates in an API request's path, query or JSON body.

    PostgreSQL cannot store NUL in text or jsonb, no database can store half a surrogate pair, and
    no identifier, key or metadata needs either; refusing them here gives one clear answer on every
    database instead of a 500. Only JSON bodies are looked at (streamed uploads are never read
    here), and only parsed when such an escape occurs in the raw bytes at all.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path.startswith("/api/") and self._has_nul(request):
            return JsonResponse(
                {
                    "detail": [
                        {"error": "NUL characters are not allowed in paths, parameters or JSON strings"}
                    ]
                },
                status=422,
            )
        return self.get_response(request)

    @staticmethod
    def _has_nul(request: HttpRequest) -> bool:
        if (
            "\x00" in request.path
            or "\x00" in request.META.get("QUERY_STRING", "")
            or "%00" in request.META.get("QUERY_STRING", "")
        ):
            return True
        if not is_json_body(request) or b"\\" not in request.body or not SUSPECT_ESCAPE.search(request.body):
            return False
        try:
            return _has_nul(json.loads(request.body))
        except (ValueError, RecursionError):
            return False  # malformed or too deep JSON: the API's parser answers that itself


def discard_body(request: HttpRequest, chunk_size: int = 1 << 20) -> None:
    """Read the request body to its end, keeping nothing.

    An answer given before the body is read (a 413) would otherwise come with a connection reset:
    the server closes a socket with unread data, and nginx, still streaming the body through, turns
    that into a 502. The read ends at the declared length or when the client goes away."""
    try:
        while request.read(chunk_size):
            pass
    except UnreadablePostError:
        pass  # the client is gone; nobody is left to read the answer


class JsonBodyLimitMiddleware:
    """Answer 413 to a JSON API body larger than ``MEDIASTORE_MAX_UPLOAD_MB``, without keeping it,
    and 411 to one sent chunked (no Content-Length: Django would read it as empty).

    Base64 uploads travel as JSON; Django's own limit is switched off in settings so that this one,
    with a sentence naming the variable, applies to every JSON endpoint alike. Raw streams
    (``PUT /api/media/{pid}/content``) are not limited by it.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if is_json_body(request):
            if not request.META.get("CONTENT_LENGTH") and "chunked" in (
                request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
            ):
                # Django reads a body of unknown length as empty; say so instead of a 422 for
                # "missing" fields the client did send.
                return JsonResponse(
                    {
                        "detail": "a JSON body needs a Content-Length; this one was sent chunked "
                        "(Transfer-Encoding: chunked). Only PUT /api/media/{pid}/content takes "
                        "chunked bodies"
                    },
                    status=411,
                )
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            limit_mb = settings.MEDIASTORE_MAX_UPLOAD_MB
            if length > limit_mb * 1024 * 1024:
                discard_body(request)
                return JsonResponse(
                    {
                        "detail": f"request body of {length / 2**20:.1f} MB is over the limit of "
                        f"{limit_mb} MB; raise MEDIASTORE_MAX_UPLOAD_MB to accept it, or stream the bytes "
                        "with PUT /api/media/{pid}/content"
                    },
                    status=413,
                )
        return self.get_response(request)
