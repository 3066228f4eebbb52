"""``/api/tus/`` and ``/api/tus/{id}``: the tus 1.0.0 protocol as plain Django views (HEAD, PATCH
with ``application/offset+octet-stream``, OPTIONS and the status 460 fit no JSON operation).

Authentication is the API's bearer token (``mediastore.auth.token_row``), with the permission and
token scope of creating media (changing them for a ``replace``), or, for the upload page
(``tus.pages``), the admin's session with its CSRF token; each upload answers only its creator
(anyone else gets 404). Every answer carries ``Tus-Resumable: 1.0.0`` except OPTIONS'.
Errors are JSON ``{"detail": "..."}``. docs/resumable-uploads.md is the user's
documentation.
"""

from __future__ import annotations

import io
from urllib.parse import quote

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt

from content.framing import body_stream
from mediastore import bodies
from mediastore.auth import token_row
from mediastore.errors import Forbidden, MediastoreError, ScopeForbidden
from mediastore.permissions import (
    ADD_MEDIA,
    CHANGE_MEDIA,
    groups_granting,
    scope_allows,
    scopes_allowing,
    what_needs,
)
from tus import services
from tus.headers import (
    CHECKSUMS,
    EXTENSIONS,
    OFFSET_TYPE,
    TUS_VERSION,
    TusError,
    checksum_header,
    length_header,
    media_request,
    parse_metadata,
)
from tus.models import TusUpload

REASONS = {460: "Checksum Mismatch"}


def _answer(
    status: int = 204, headers: dict[str, str] | None = None, body: dict | None = None
) -> HttpResponse:
    if body is None:
        response = HttpResponse(status=status, reason=REASONS.get(status))
    else:
        response = JsonResponse(body, status=status, reason=REASONS.get(status))
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _options() -> HttpResponse:
    response = HttpResponse(status=204)
    response["Tus-Version"] = TUS_VERSION
    response["Tus-Extension"] = EXTENSIONS
    response["Tus-Max-Size"] = str(services.max_size())
    response["Tus-Checksum-Algorithm"] = ",".join(CHECKSUMS)
    return response


def _caller(request: HttpRequest, *permissions: str):
    """The user of the request's bearer token, allowed one of ``permissions`` by account and token
    scope; 401 (``{"detail": "Unauthorized"}``) or 403 naming the first permission otherwise."""
    header = request.headers.get("Authorization", "")
    if not header and request.user.is_authenticated:  # the upload page: the admin's session
        _check_csrf(request)
        user, scopes = request.user, None
    else:
        scheme, _, token = header.partition(" ")
        row = token_row(token) if scheme.lower() == "bearer" else None
        if row is None:
            raise TusError(401, "Unauthorized", {"WWW-Authenticate": "Bearer"})
        user, scopes = row.user, row.scope_list
    bodies.trust(request)
    held = [p for p in permissions if user.has_perm(p)]
    permission = held[0] if held else permissions[0]
    if not held:
        member_of = list(user.groups.order_by("name").values_list("name", flat=True))
        raise Forbidden(permission, groups_granting(permission), member_of)
    if scopes is not None and not scope_allows(scopes, permission):
        raise ScopeForbidden(scopes_allowing(permission)[0], what_needs(permission), scopes)
    return user


def _check_csrf(request: HttpRequest) -> None:
    """A request on the strength of a session cookie must carry the CSRF token (``X-CSRFToken``),
    as Django checks it for forms: another site could otherwise make a logged-in browser upload.
    Checked on the effective method (``X-HTTP-Method-Override``, honoured on POST only), so a
    method that writes always needs the token."""
    effective = (request.headers.get("X-HTTP-Method-Override") or request.method or "").upper()
    if effective in ("GET", "HEAD", "OPTIONS") and request.method in ("GET", "HEAD", "OPTIONS"):
        return
    refused = CsrfViewMiddleware(lambda request: None).process_view(request, None, (), {})
    if refused is not None:
        raise TusError(403, "CSRF check failed: a request with a session cookie needs the header X-CSRFToken")


def _state(upload: TusUpload) -> dict[str, str]:
    """The headers that say where an upload is."""
    headers = {"Upload-Offset": str(upload.offset), "Upload-Expires": http_date(upload.expires.timestamp())}
    if upload.length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(upload.length)
    if upload.done:
        headers["Media-Location"] = "/api/media/" + quote(upload.media_pid, safe="/:@")
    return headers


def _protocol(view):
    """Method override, the Tus-Resumable check, OPTIONS and the JSON answer of every error."""

    @csrf_exempt
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        override = request.headers.get("X-HTTP-Method-Override")
        if override and request.method != "POST":  # GET (or HEAD) never writes, whatever it says
            problem = f"X-HTTP-Method-Override is honoured on POST only, not on {request.method}"
            return _answer(400, body={"detail": problem} if request.method != "HEAD" else None)
        method = (override or request.method or "").upper()
        if method == "OPTIONS":
            return _options()
        try:
            if request.headers.get("Tus-Resumable") != TUS_VERSION:
                raise TusError(
                    412,
                    f"this server speaks tus {TUS_VERSION}: send the header Tus-Resumable: {TUS_VERSION}",
                    {"Tus-Version": TUS_VERSION},
                )
            return view(request, method, *args, **kwargs)
        except MediastoreError as exc:
            return _answer(exc.status_code, exc.headers, exc.body() if method != "HEAD" else None)

    return wrapped


@_protocol
def collection(request: HttpRequest, method: str) -> HttpResponse:
    """``POST /api/tus/``: create an upload (creation, creation-with-upload, creation-defer-length)."""
    if method != "POST":
        problem = f"{method} is not allowed here: POST creates an upload"
        raise TusError(405, problem, {"Allow": "POST, OPTIONS"})
    _caller(request, ADD_MEDIA, CHANGE_MEDIA)  # 401/403 before anything of the request is looked at
    length = length_header(request.headers.get("Upload-Length"), "Upload-Length")
    defer = request.headers.get("Upload-Defer-Length")
    if length is None and defer != "1":
        raise TusError(400, "send Upload-Length (the upload's size in bytes) or Upload-Defer-Length: 1")
    if length is not None and defer is not None:
        raise TusError(400, "send either Upload-Length or Upload-Defer-Length, not both")
    header = request.headers.get("Upload-Metadata", "")
    entries = parse_metadata(header)
    item, pid, replace, etag = media_request(entries)
    user = _caller(request, CHANGE_MEDIA if replace else ADD_MEDIA)
    content_type = entries.get("content_type") or entries.get("filetype") or ""
    carries_body = request.headers.get("Content-Type", "").split(";")[0].strip() == OFFSET_TYPE
    upload = services.upload_create(
        user=user,
        length=length,
        metadata_header=header,
        item=item,
        pid=pid,
        etag=etag,
        content_type=content_type,
    )
    location = {"Location": request.build_absolute_uri(f"/api/tus/{upload.id}")}
    if carries_body or length == 0:
        try:
            upload = _patch(request, upload.id, user, offset=0, length=None, with_body=carries_body)
        except MediastoreError as exc:  # the upload exists: the client resumes it at its Location
            upload = TusUpload.objects.filter(pk=upload.id).first() or upload
            return _answer(exc.status_code, {**exc.headers, **location, **_state(upload)}, exc.body())
    return _answer(201, {**location, **_state(upload)})


@_protocol
def resource(request: HttpRequest, method: str, upload_id: str) -> HttpResponse:
    """``HEAD``, ``PATCH`` and ``DELETE /api/tus/{id}``."""
    if method == "HEAD":
        upload = services.upload_find(upload_id, user=_caller(request, ADD_MEDIA, CHANGE_MEDIA))
        headers = _state(upload)
        if upload.metadata_header:
            headers["Upload-Metadata"] = upload.metadata_header
        return _answer(200, headers)
    if method == "PATCH":
        user = _caller(request, ADD_MEDIA, CHANGE_MEDIA)
        if request.headers.get("Content-Type", "").split(";")[0].strip() != OFFSET_TYPE:
            raise TusError(415, f"a PATCH carries its bytes as Content-Type: {OFFSET_TYPE}")
        offset = length_header(request.headers.get("Upload-Offset"), "Upload-Offset")
        if offset is None:
            raise TusError(400, "a PATCH needs Upload-Offset: the offset its bytes start at")
        length = length_header(request.headers.get("Upload-Length"), "Upload-Length")
        return _answer(204, _state(_patch(request, upload_id, user, offset=offset, length=length)))
    if method == "DELETE":
        services.upload_terminate(upload_id, user=_caller(request, ADD_MEDIA, CHANGE_MEDIA))
        return _answer(204)
    raise TusError(405, f"{method} is not allowed here", {"Allow": "HEAD, PATCH, DELETE, OPTIONS"})


def _patch(
    request: HttpRequest, upload_id: str, user, *, offset: int, length: int | None, with_body: bool = True
) -> TusUpload:
    checksum = checksum_header(request.headers.get("Upload-Checksum"))
    body, body_length = body_stream(request) if with_body else (io.BytesIO(), 0)
    return services.upload_patch(
        upload_id,
        user=user,
        offset=offset,
        length=length,
        checksum=checksum,
        body=body,
        body_length=body_length,
    )
