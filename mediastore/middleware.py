"""Request guards that apply to the whole API."""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class RejectNulMiddleware:
    """Answer 422 for NUL characters in an API request's path, query or JSON body.

    PostgreSQL cannot store NUL in text or jsonb, and no identifier, key or metadata needs one;
    refusing them here gives one clear answer on every database instead of a 500 on one of them.
    Only JSON bodies are looked at (streamed uploads are never read here), and only parsed when the
    escape ``\\u0000`` occurs in the raw bytes at all.
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
        if request.content_type != "application/json" or b"\\u0000" not in request.body:
            return False
        try:
            return _has_nul(json.loads(request.body))
        except ValueError:
            return False  # malformed JSON: the API answers that itself
