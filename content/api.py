"""/api/upload..., /api/download..., and the streaming /api/media/{pid}/content and /verify.

Registered before the media router: its ``/media/{path:pid}`` routes would otherwise take
``/media/<pid>/content`` as a pid.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.http import parse_etags
from ninja import Body, Query, Router, Status
from ninja.responses import NinjaJSONEncoder

from content import archives, base64io, fallback, multipart, reads, uploads
from content import services as transfer
from content.framing import body_stream
from content.ranges import Unsatisfiable, parse_range
from content.schemas import (
    ArchiveIn,
    ArchiveQuery,
    CompleteIn,
    DownloadOut,
    MultipartUploadOut,
    PartsIn,
    PartsOut,
    UploadIn,
    UploadOut,
    VerifyOut,
)
from media.models import StoreStatus
from media.rules import served_content_type
from media.schemas import MediaError, MediaOut, media_out_dict
from media.search.params import filters_from_query
from media.selectors import media_get, media_read_many
from mediastore import metrics
from mediastore.errors import MediastoreError, NotFound, RuleViolation
from mediastore.openapi import TEXT
from mediastore.pagination import JsonArrayStream, json_response
from mediastore.parser import large_member

router = Router(tags=["bytes"])

BINARY = {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}


# url_name: mediastore.parser decodes a large body's base64 for the view "api:upload" (content/apps.py)
@router.post(
    "/upload",
    response=UploadOut | MultipartUploadOut,
    summary="Create a media with its bytes",
    url_name="upload",
)
def upload(request: HttpRequest, payload: UploadIn):
    """Create a media and store its bytes in one step.

    With `base64`: the bytes are decoded (strictly; invalid base64 is 422 and nothing is created),
    stored, and the media is created READY; if the store fails the answer is 502 and no media is
    created. Without `base64`: the media is created PENDING. On a BucketStore `presigned_put` is a
    URL to PUT the bytes to within `MEDIASTORE_PRESIGN_SECONDS` (e.g. `curl -T FILE "$URL"`); then
    call `POST /api/upload/{pid}/complete` (or just download it) to mark it READY. On other stores
    `presigned_put` is null: send the same upload again with `base64` (or the bytes with
    `PUT /api/media/{pid}/content`). Give `size` so that only an upload of exactly that many bytes
    can complete. A bucket that does not exist is a 502 and no media is created.

    Repeating an upload is safe: for a pid that exists PENDING with the same mediadata, an upload
    with `base64` completes it (200 READY) and one without answers PENDING again (with a fresh URL
    on a BucketStore); for a READY media the same bytes again, or none, answer 200 READY and change
    nothing, other bytes are 409 (replace bytes with `PUT /api/media/{pid}/content`). Different mediadata
    (pid_type, store_config, identifiers, metadata, tags, or a declared size) is 409 naming the
    fields. For large files prefer `POST /api/media` + `PUT /api/media/{pid}/content`, which
    streams. JSON bodies are limited to `MEDIASTORE_MAX_UPLOAD_MB` (413 above it); `mediadata.tags`
    to `MEDIASTORE_MAX_TAGS` (1000) distinct tags (422, nothing created).

    With `multipart: {"size": N}` (BucketStore only; 422 elsewhere or together with `base64`) the
    media is created PENDING with an S3 multipart upload and the answer lists a presigned URL per
    part: `{"status": "PENDING", "pid", "upload_id", "part_size", "parts": [{"part_number", "url"}]}`.
    PUT each part to its URL (no token: the URL is the permission; S3 answers with the part's
    `ETag`), then `POST /api/upload/{pid}/complete` with `{"parts": [{"part_number", "etag"}, ...]}`.
    Repeated with the same mediadata for a PENDING media, it begins a new multipart upload."""
    if payload.multipart is not None:
        return _upload_multipart(request, payload)
    data = None
    if payload.base64:
        data = large_member(request, payload.base64)  # already decoded from a large body
        if data is None:
            data = base64io.decode_base64(payload.base64)
    media, url = uploads.upload(
        payload.mediadata, data, content_type=payload.content_type, size=payload.size, user=request.auth
    )
    status = "READY" if media.store_status == StoreStatus.READY else "PENDING"
    return {"status": status, "presigned_put": url, "pid": media.pid}


def _upload_multipart(request: HttpRequest, payload: UploadIn):
    if payload.base64:
        raise RuleViolation("send either base64 or multipart, not both")
    size = payload.multipart.size
    if payload.size is not None and payload.size != size:
        raise RuleViolation(f"size says {payload.size} bytes, multipart.size {size}")
    media, upload_id = uploads.upload_multipart(
        payload.mediadata, size=size, content_type=payload.content_type, user=request.auth
    )
    if upload_id is None:  # a repeat for a READY media
        return {"status": "READY", "presigned_put": None, "pid": media.pid}
    part_size, _ = multipart.part_plan(size)
    return json_response(
        {
            "status": "PENDING",
            "presigned_put": None,
            "pid": media.pid,
            "upload_id": upload_id,
            "part_size": part_size,
            "parts": multipart.first_urls(media, upload_id),
        }
    )


@router.post("/upload/{path:pid}/complete", response=MediaOut, summary="Finish a presigned upload")
def upload_complete(request: HttpRequest, pid: str, body: CompleteIn | None = Body(None)):
    """Check that the bytes of a PENDING media are in its store, record their size and SHA-256
    checksum, and mark it READY. 409 if nothing was uploaded yet, or if the object's size is not
    the `size` declared at `POST /api/upload` (the media then stays PENDING); a READY media is
    returned as is.

    With a body `{"parts": [{"part_number", "etag"}, ...]}` it first joins the parts of the media's
    S3 multipart upload. The list must name each part of the declared size once: a part left out,
    named twice or past the last is 422 naming the part numbers, before S3 is asked, and the upload
    stays (complete again with all the parts). 422 as well when S3 refuses them (an ETag that is not
    S3's, a part below 5 MiB but the last); 409 when no multipart upload is in progress, or when the
    upload was abandoned (`DELETE /api/upload/{pid}`) meanwhile."""
    media = media_get(pid)
    if body is not None:
        parts = [(part.part_number, part.etag) for part in body.parts]
        return multipart.multipart_finish(media, parts, user=request.auth)
    return transfer.complete(media, user=request.auth)


@router.post("/upload/{path:pid}/parts", response=PartsOut, summary="More part URLs of a multipart upload")
def upload_parts(request: HttpRequest, pid: str, body: PartsIn):
    """Presigned URLs for the parts `parts` of the PENDING media's S3 multipart upload (those past
    the first `MEDIASTORE_MULTIPART_URLS`, or fresh ones for URLs that expired). 422 for a part
    number outside 1 to the number of parts, 409 when no multipart upload is in progress."""
    return {"parts": multipart.multipart_parts(media_get(pid), body.parts)}


@router.delete("/upload/{path:pid}", response={204: None}, summary="Abandon an upload")
def upload_abandon(request: HttpRequest, pid: str):
    """Abort the PENDING media's S3 multipart uploads (any store: a PENDING media without them is
    simply deleted) and delete the media, with its history and a `media.deleted` event. 409 for a
    READY media (delete that with `DELETE /api/media/{pid}`)."""
    multipart.upload_abandon(media_get(pid), user=request.auth)
    return Status(204, None)


@router.get("/download/url/{path:pid}", response=DownloadOut, summary="Presigned download URL")
def download_url(request: HttpRequest, pid: str):
    """A URL to GET the bytes straight from S3 (BucketStore only; 422 for other stores), valid for
    `MEDIASTORE_PRESIGN_SECONDS`. 409 when the bytes were never stored. A media with a GOOD replica
    in a BucketStore gets a URL of that replica when its own store cannot presign or its primary
    copy failed (`X-Mediastore-Copy` names the copy)."""
    media, url, copy = fallback.presigned_any_copy(media_get(pid, request), user=request.auth)
    response = json_response(
        {"mediadata": media_out_dict(media), "presigned_get": url}
    )  # DownloadOut, unvalidated
    response[fallback.COPY_HEADER] = copy
    return response


@router.post(
    "/download/urls", response=list[DownloadOut | MediaError], summary="Presigned URLs for many media"
)
def download_urls(request: HttpRequest, pids: list[str] | dict | None = Body(None)):
    """For each pid, a `DownloadOut` with `presigned_get`, or a `MediaError` (`NotFound`,
    `ValidationError` for non-S3 stores, `Conflict` for bytes never stored). No body: empty list.

    Instead of pids, the body may be an object: the filters of `POST /api/media/search`. Then the
    answer has the same entry for every matching media in the search's order (no page limit:
    `limit` and `offset` only when given; a body without any filter finds nothing), sent as it is
    made; at most `MEDIASTORE_ARCHIVE_MAX_MEDIA` media (413 above it). Media outside S3 get a
    `ValidationError` entry saying how to fetch them (or use `POST /api/download/archive`)."""
    if isinstance(pids, dict):
        selection = archives.search_selection(pids)
        return JsonArrayStream(presigned_entries(selection, user=request.auth))
    pids = pids or []
    found = {media.pid: media for media in media_read_many(pids)}
    results = []
    for pid in pids:
        try:
            if pid not in found:
                raise NotFound("Media", pid)
            media, url, _ = fallback.presigned_any_copy(found[pid], user=request.auth)
            results.append({"mediadata": media, "presigned_get": url})
        except MediastoreError as exc:
            results.append({"pid": pid, "error": exc.kind, "msg": exc.message})
    return results


def presigned_entries(selection, *, user) -> Iterator[str]:
    """The JSON array of ``POST /api/download/urls`` for a search, one entry at a time."""
    yield "["
    for index, media in enumerate(selection):
        try:
            media, url = reads.presigned_get(media, user=user)
            entry = {"mediadata": media_out_dict(media), "presigned_get": url}
        except MediastoreError as exc:
            entry = {"pid": media.pid, "error": exc.kind, "msg": exc.message}
        yield ("," if index else "") + json.dumps(entry, cls=NinjaJSONEncoder)
    yield "]"


ARCHIVE_DOC = """The archive is streamed as it is built, in constant memory whatever its size: each
media's bytes as `data/<pid>` (percent-encoded: only ASCII letters, digits and `._-+=,@` stay as
they are, so no name is absolute or climbs out with `..`; layout `flat` encodes the pid's `/` too),
then `manifest-sha256.txt` (the recorded SHA-256 of every member, for `sha256sum -c`),
`media.json` (every selected media as the API returns it, plus `member`: its name in the
archive, or null) and `errors.txt` (one line
`pid<TAB>reason` for each selected media whose bytes are not in the archive, or not whole: PENDING,
unknown pid, bytes missing or failing to read; empty when all went well). More media than
`MEDIASTORE_ARCHIVE_MAX_MEDIA` (100,000) is a 413 before any byte. The answer is always whole (200,
no `Range`): a broken download is started again."""

ARCHIVE_RESPONSES = {
    200: {
        "description": "The archive (zip or tar), streamed",
        "content": {
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
            "application/x-tar": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/download/archive",
    response={200: None},
    summary="Download many media as one zip or tar",
    openapi_extra={"responses": ARCHIVE_RESPONSES},
)
def download_archive(request: HttpRequest, payload: ArchiveIn):
    """The media of `pids` (in that order), or every match of the search filters of
    `POST /api/media/search` (in its `order_by`; `limit` and `offset` only when given), as one zip
    (default) or tar. Pids and filters together, or neither, are a 422."""
    selection = archives.body_selection(payload)
    return archives.archive_response(selection, format=payload.format, layout=payload.layout)


download_archive.__doc__ += "\n\n" + ARCHIVE_DOC


@router.get(
    "/download/archive",
    response={200: None},
    summary="Download a search as one zip or tar",
    openapi_extra={"responses": ARCHIVE_RESPONSES},
)
def download_archive_get(request: HttpRequest, query: Query[ArchiveQuery]):
    """Every media matching the query parameters of `GET /api/media` (no filter: every media), as
    one zip (default) or tar, e.g. `?tags=diatom&format=tar`."""
    if query.cursor is not None:
        raise RuleViolation("query parameter 'cursor' does not apply: an archive takes every match")
    filters = filters_from_query(query, request.GET.keys(), extra={"format", "layout"})
    selection = archives.query_selection(filters, request.GET.keys())
    return archives.archive_response(selection, format=query.format, layout=query.layout)


download_archive_get.__doc__ += "\n\n" + ARCHIVE_DOC


@router.get("/download/{path:pid}", response=DownloadOut, summary="Download bytes as base64")
def download(request: HttpRequest, pid: str):
    """The media and its bytes as base64. 409 when the bytes were never stored; a PENDING media
    whose upload has arrived is completed first. For large files use `GET /api/media/{pid}/content`.
    When the primary copy cannot be read, a GOOD replica serves the bytes (`X-Mediastore-Copy`
    names the copy that did; see `GET /api/media/{pid}/content`)."""
    return fallback.read_any_copy(pid, user=request.auth, read=base64_response)


def base64_response(media) -> StreamingHttpResponse:
    """The media and its bytes as a streamed JSON answer: the bytes are encoded piece by piece
    instead of being held whole, as bytes, as base64 text and as the rendered JSON, all at once."""
    size = reads.stored_size(media)
    chunks = reads.open_content(media, 0, None, base64io.ENCODE_CHUNK)
    mediadata = media_out_dict(media)
    head = json.dumps({"mediadata": mediadata, "presigned_get": ""}, cls=NinjaJSONEncoder)  # as other answers
    head_bytes = head[:-1].encode() + b', "base64": "'
    tail = b'"}'
    response = StreamingHttpResponse(
        itertools.chain([head_bytes], base64io.base64_chunks(chunks), [tail]), content_type="application/json"
    )
    response["Content-Length"] = str(len(head_bytes) + base64io.base64_length(size) + len(tail))
    return response


@router.put(
    "/media/{path:pid}/content",
    response=MediaOut,
    summary="Upload bytes as a raw stream",
    openapi_extra={"requestBody": {"required": True, **BINARY}},
)
def content_put(request: HttpRequest, pid: str):
    """Stream the raw request body into the media's store (no base64, no size limit from
    `MEDIASTORE_MAX_UPLOAD_MB`, constant memory for filesystem and S3 stores), record size,
    SHA-256 and the request's `Content-Type`, and mark the media READY. The body needs a
    `Content-Length` (`0` stores an empty object) or `Transfer-Encoding: chunked`; without either
    the answer is 411 and nothing changes.

    Replaces bytes stored before, atomically: the body goes to a new object (so `store_key`
    changes), then the media switches to it in one step and the old object is removed; readers
    see the old bytes or the new ones, never a mix. Concurrent PUTs: the last to finish wins.
    If the store fails the answer is 502 (507 when it is full) and the media is unchanged; 409 if
    the media was moved or deleted meanwhile. The bytes count only when the whole body arrived: a
    body that ends before its `Content-Length`, or a chunked body cut off before its last chunk, is
    400 and nothing changes (the media keeps its bytes). A transfer coding before `chunked`
    (`gzip, chunked`) is 501; framing the HTTP server itself refuses (a coding without `chunked`,
    `Content-Length` together with `Transfer-Encoding`, two lengths) is its 400. Conditional
    writes: `If-Match: "<etag>"` (the ETag of `GET .../content`) stores only if the current bytes
    still have that ETag,
    `If-None-Match: *` only if the media has no bytes yet; otherwise 412 and nothing changes. The
    `Content-Type` is stored as the media's type: longer than 255 characters it is 422."""
    content_type = request.headers.get("Content-Type", "") or transfer.DEFAULT_CONTENT_TYPE
    stream, size = body_stream(request)
    conditions = transfer.Preconditions(
        if_match=request.headers.get("If-Match"), if_none_match=request.headers.get("If-None-Match")
    )
    media = transfer.put_content(
        pid, stream, content_type=content_type, size=size, user=request.auth, conditions=conditions
    )
    metrics.BYTES_UPLOADED.inc(media.size or 0)
    return media


@router.get(
    "/media/{path:pid}/content",
    response={200: None, 206: None, 304: None, 416: None},
    summary="Download bytes as a raw stream",
    # Integer status keys, as ninja writes its own: a "200" string key would be a second 200 in the JSON.
    openapi_extra={
        "responses": {
            200: {"description": "The bytes", **BINARY},
            206: {"description": "The requested range of the bytes (with Content-Range)", **BINARY},
            304: {"description": "Not modified: If-None-Match matched the ETag"},
            416: {
                "description": "The range starts past the end, or a position has more than 20 digits "
                "(Content-Range: bytes */size).",
                "content": {"application/json": {"schema": TEXT}},
            },
        }
    },
)
def content_get(request: HttpRequest, pid: str):
    """Stream the stored bytes with Content-Length, Content-Type and an ETag (the SHA-256).
    Supports a single `Range: bytes=first-last` (206; a `last` past the end is clipped to the end;
    416 when `first` is past the end or a position has more than 20 digits) and `If-None-Match`
    (304). 409 when the bytes were never stored.

    When the primary copy cannot be read before the first byte is sent (its store unreachable, the
    object missing, a read error), a GOOD replica serves the bytes instead and the primary is
    recorded as failed (MISSING or BAD in `GET /api/media/{pid}/replicas`, a `media.verify_failed`
    event); the header `X-Mediastore-Copy` says which copy served the answer (`primary; store=3` or
    `replica; store=5`). A STALE replica is never served. 502 when no copy answers."""

    def respond(media) -> HttpResponse:
        size = reads.stored_size(media)
        etag = transfer.current_etag(media)
        headers = {"Accept-Ranges": "bytes"}
        if etag:
            headers["ETag"] = f'"{etag}"'
            # A list of tags, weak ones (W/"...") and * compare as RFC 9110 says for If-None-Match.
            wanted = parse_etags(request.headers.get("If-None-Match", ""))
            if "*" in wanted or any(tag.removeprefix("W/") == headers["ETag"] for tag in wanted):
                return HttpResponse(status=304, headers=headers)
        try:
            wanted = parse_range(request.headers.get("Range", ""), size)
        except Unsatisfiable:
            wanted_range = request.headers.get("Range", "")[:100]
            return JsonResponse(
                {"detail": f"the range {wanted_range!r} is outside the {size} bytes"},
                status=416,
                headers={**headers, "Content-Range": f"bytes */{size}"},
            )
        first, last = wanted if wanted else (0, size - 1)
        length = max(last - first + 1, 0)
        response = StreamingHttpResponse(
            reads.open_content(media, first, length),
            status=206 if wanted else 200,
            content_type=served_content_type(media.content_type, transfer.DEFAULT_CONTENT_TYPE),
            headers=headers,
        )
        response["Content-Length"] = str(length)
        if wanted:
            response["Content-Range"] = f"bytes {first}-{last}/{size}"
        return response

    return fallback.read_any_copy(pid, user=request.auth, read=respond)


@router.get("/media/{path:pid}/verify", response=VerifyOut, summary="Check the stored bytes")
def content_verify(request: HttpRequest, pid: str):
    """Re-read the stored bytes and compare size and SHA-256 with what was recorded at upload.
    `ok` is false when they differ or the object is missing. 409 for a PENDING media."""
    return reads.verify(media_get(pid))
