"""Request guards that apply to the whole API."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from mediastore.errors import RequestTimeout
from mediastore.parser import NUL_MESSAGE, is_json_request


def is_json_body(request: HttpRequest) -> bool:
    """A JSON body bound for the API's parser; a raw stream to ``.../content`` is bytes whatever its
    Content-Type says, so it is never read or limited here."""
    if request.method == "PUT" and request.path.endswith("/content"):
        return False
    return request.path.startswith("/api/") and is_json_request(request)


class RejectNulMiddleware:
    """Answer 422 for NUL characters in an API request's path or query.

    PostgreSQL cannot store NUL in text or jsonb, and no identifier, key or metadata needs it;
    refusing it here gives one clear answer on every database instead of a 500. JSON bodies get
    the same answer from the API's parser (``mediastore.parser.JsonParser``), which reads them only
    after the request is authenticated: a body read here, before that, would keep a thread for
    whoever sends one slowly without a token (mediastore/bodies.py).
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path.startswith("/api/") and self._has_nul(request):
            return JsonResponse({"detail": [{"error": NUL_MESSAGE}]}, status=422)
        return self.get_response(request)

    @staticmethod
    def _has_nul(request: HttpRequest) -> bool:
        return (
            "\x00" in request.path
            or "\x00" in request.META.get("QUERY_STRING", "")
            or "%00" in request.META.get("QUERY_STRING", "")
        )


class MethodNotAllowedJsonMiddleware:
    """Answer a method that an API path does not take (``POST /api/media/{pid}``) with a JSON 405
    like every other API error, keeping its ``Allow`` header: ninja's own 405 is the plain text
    "Method not allowed", which clients that parse every API answer as JSON cannot read."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        response = self.get_response(request)
        if (
            response.status_code == 405
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            allowed = response.get("Allow", "")
            detail = f"{request.method[:20]} is not allowed on '{request.path[:200]}'; it takes {allowed}"
            answer = JsonResponse({"detail": detail}, status=405)
            answer["Allow"] = allowed
            return answer
        return response


class JsonBodyLimitMiddleware:
    """Answer 413 to a JSON API body declared larger than ``MEDIASTORE_MAX_UPLOAD_MB``, without
    reading it, and 411 to one sent chunked (no Content-Length: Django would read it as empty).

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
                # Answered from the header alone; the body is never read, and the connection is
                # closed after the answer (mediastore/bodies.py) instead of being drained.
                return JsonResponse(
                    {
                        "detail": f"request body of {length / 2**20:.1f} MB is over the limit of "
                        f"{limit_mb} MB; raise MEDIASTORE_MAX_UPLOAD_MB to accept it, or stream the bytes "
                        "with PUT /api/media/{pid}/content"
                    },
                    status=413,
                )
        return self.get_response(request)


class BodyTimeoutMiddleware:
    """Answer 408 outside the API (admin forms) when a POST body misses its deadline
    (mediastore/bodies.py), instead of a 500.

    Django's CSRF check reads ``request.POST`` of every POST to a view it protects, where nothing
    could turn RequestTimeout into an answer; this reads it the same way (forms parsed, files
    spooled as Django does) one step earlier. The API's views are exempt from that check and
    answer RequestTimeout themselves (``mediastore.api``).
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if request.method != "POST" or getattr(view_func, "csrf_exempt", False):
            return None
        try:
            request.POST  # noqa: B018  (loads the body, as the CSRF check is about to)
        except RequestTimeout as exc:
            return JsonResponse(exc.body(), status=exc.status_code)
        return None
