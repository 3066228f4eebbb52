"""/api/media/{pid}/preview: a media's thumbnail or first lines (``content.previews``).

Registered before the media router, as ``content.api`` is: ``/media/{path:pid}`` would otherwise
take ``/media/<pid>/preview`` as a pid.
"""

from __future__ import annotations

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.utils.http import parse_etags
from ninja import Query, Router

from content import previews
from media.selectors import media_get

router = Router(tags=["media"])

NO_PREVIEW = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "`no preview: <reason>`"},
        "content_type": {"type": "string", "description": "The media's content type."},
        "size": {"type": ["integer", "null"], "description": "The media's size in bytes."},
    },
    "required": ["detail", "content_type", "size"],
}
CACHING = "private, no-cache"  # keep it, but ask again (a 304 while the bytes are the same)


@router.get(
    "/media/{path:pid}/preview",
    response={200: None, 304: None, 415: None},
    summary="A thumbnail or the first lines of a media",
    openapi_extra={
        "responses": {
            200: {
                "description": "An image's thumbnail (WebP, at most `size` pixels on its longer side), or "
                "the first lines of a text, CSV or JSON media (JSON pretty-printed when it is small).",
                "content": {
                    "image/webp": {"schema": {"type": "string", "format": "binary"}},
                    "text/plain": {"schema": {"type": "string"}},
                },
            },
            304: {"description": "Not modified: If-None-Match matched the ETag"},
            415: {
                "description": "No preview of this media: another type, no bytes yet, an image too large "
                "(MEDIASTORE_PREVIEW_MAX_PIXELS, MEDIASTORE_PREVIEW_MAX_BYTES), undecodable or too slow to "
                "decode (MEDIASTORE_PREVIEW_SECONDS). The body says why, with the media's type and size.",
                "content": {"application/json": {"schema": NO_PREVIEW}},
            },
        }
    },
)
def media_preview(
    request: HttpRequest,
    pid: str,
    size: int = Query(
        previews.DEFAULT_SIZE,
        ge=previews.MIN_SIZE,
        le=previews.MAX_SIZE,
        description="Longest side of a thumbnail in pixels (64 to 1024).",
    ),
):
    """A thumbnail of a PNG, JPEG, TIFF, GIF or WebP media (by its content type or its first bytes),
    made on the server and kept as derived data, or the first 40 lines of a text, CSV or JSON media.
    The answer has an `ETag` that changes with the media's bytes and `Cache-Control: private,
    no-cache`; `If-None-Match` with it answers 304. 415 with the reason when there is no preview;
    an image over the configured pixel or byte limits is refused without being decoded."""
    media = media_get(pid)
    etag = f'"{previews.version_of(media, size)}"'
    headers = {"ETag": etag, "Cache-Control": CACHING}
    if etag in (tag.removeprefix("W/") for tag in parse_etags(request.headers.get("If-None-Match", ""))):
        return HttpResponse(status=304, headers=headers)
    shown = previews.preview(media, size)
    if shown.kind == "image":
        response = FileResponse(shown.path.open("rb"), content_type=shown.media_type)
    elif shown.kind == "text":
        response = HttpResponse(shown.text, content_type="text/plain; charset=utf-8")
    else:
        body = {
            "detail": f"no preview: {shown.reason}",
            "content_type": shown.content_type,
            "size": shown.size,
        }
        return JsonResponse(body, status=415)
    for name, value in headers.items():
        response[name] = value
    return response
