"""The admin's media page and list, the parts that need this floor: previews (``content.previews``)
as the list's thumbnail column and the page's preview, the media's copies with their health
(``content.replicas``), the list filter on failed fixity checks, and the page's context (history
story from ``media.history_story``). ``media.admin`` wires them into ``MediaAdmin``.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, Q
from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.http import parse_etags

from content import previews
from content.models import Replica, ReplicaState
from content.replicas import primary_dict, replica_dict
from media.history_story import media_story
from media.models import Media
from mediastore.errors import StorageError

LIST_SIZE, PAGE_SIZE = 64, 512
FAILED_COPY = [ReplicaState.BAD, ReplicaState.MISSING]


def preview_url(media: Media, size: int) -> str:
    return f"{reverse('admin:media_media_preview', args=[media.pk])}?size={size}"


def thumbnail_html(media: Media) -> str:
    """The list's thumbnail cell: an image loaded lazily (the list itself never reads bytes); the
    preview view answers a neutral placeholder when there is no thumbnail, so it never breaks."""
    return format_html(
        '<img src="{}" loading="lazy" decoding="async" width="{}" height="{}" alt="" class="ms-thumb">',
        preview_url(media, LIST_SIZE),
        LIST_SIZE,
        LIST_SIZE,
    )


def placeholder(label: str, size: int) -> HttpResponse:
    """A neutral square naming the media's kind (no preview): an SVG, never a broken image."""
    text = escape(label[:18])
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 64 64" '
        f'role="img" aria-label="no preview: {text}"><rect width="64" height="64" rx="6" fill="#e8e8e8"/>'
        f'<text x="32" y="36" font-family="sans-serif" font-size="9" text-anchor="middle" fill="#333">'
        f"{text}</text></svg>"
    )
    return HttpResponse(svg, content_type="image/svg+xml", headers={"Cache-Control": "private, no-cache"})


def kind_label(media: Media) -> str:
    if not media.content_type:
        return "no preview"
    return media.content_type.split(";")[0].split("/")[-1][:18] or "no preview"


def preview_response(request: HttpRequest, media: Media) -> HttpResponse:
    """The thumbnail of ``media`` for the admin's pages (``?size=``, 64 to 1024, default 256), by the
    same rules and from the same cache as ``GET /api/media/{pid}/preview``; a placeholder image when
    there is none (text included: the page shows its lines)."""
    try:
        size = min(
            max(int(request.GET.get("size", previews.DEFAULT_SIZE)), previews.MIN_SIZE), previews.MAX_SIZE
        )
    except ValueError:
        size = previews.DEFAULT_SIZE
    etag = f'"{previews.version_of(media, size)}"'
    if etag in (tag.removeprefix("W/") for tag in parse_etags(request.headers.get("If-None-Match", ""))):
        return HttpResponse(status=304, headers={"ETag": etag, "Cache-Control": "private, no-cache"})
    try:
        shown = previews.preview(media, size)
    except StorageError:
        return placeholder("unreadable", size)
    if shown.kind != "image":
        return placeholder("text" if shown.kind == "text" else kind_label(media), size)
    response = FileResponse(shown.path.open("rb"), content_type=shown.media_type)
    response["ETag"], response["Cache-Control"] = etag, "private, no-cache"
    return response


def page_preview(media: Media) -> dict[str, Any]:
    """The media page's preview: ``kind`` "image" (``url``), "text" (``text``) or "none" (``reason``),
    with the media's type and size."""
    out = {"content_type": media.content_type or "unknown type", "size": media.size}
    try:
        shown = previews.preview(media, PAGE_SIZE)
    except StorageError as exc:
        return {**out, "kind": "none", "reason": exc.message}
    if shown.kind == "image":
        return {**out, "kind": "image", "url": preview_url(media, PAGE_SIZE)}
    return {**out, "kind": shown.kind, "text": shown.text, "reason": shown.reason}


def copies(media: Media) -> list[dict[str, Any]]:
    """The primary copy, then the replicas, each with its state and last verification (as
    ``GET /api/media/{pid}/replicas`` lists them); each replica links to its own admin page. The
    page has no inline of replicas besides: it showed every replica a second time."""
    replicas = Replica.objects.select_related("store_config").filter(media=media).order_by("pk")
    shown = [
        {**replica_dict(r), "admin_url": reverse("admin:content_replica_change", args=[r.pk])}
        for r in replicas
    ]
    return [primary_dict(media), *shown]


def pretty(metadata: Any) -> str:
    try:
        return json.dumps(metadata, indent=2, ensure_ascii=False, sort_keys=True)
    except RecursionError:  # stored before MEDIASTORE_MAX_METADATA_DEPTH existed
        return "(nested too deeply to show here; see the Metadata field below)"


def page_context(media: Media, *, can_revert: bool) -> dict[str, Any]:
    return {
        "ms_preview": page_preview(media),
        "ms_metadata": pretty(media.metadata),
        "ms_copies": copies(media),
        "ms_fixity": {"verified_at": media.verified_at, "ok": media.verify_ok, "error": media.verify_error},
        "ms_story": media_story(media),
        "ms_version": media.version,
        "ms_can_revert": can_revert,
    }


class VerifyFailedFilter(admin.SimpleListFilter):
    """Fixity: media whose last check failed, or with a copy found BAD or MISSING; never checked;
    passed."""

    title = "fixity"
    parameter_name = "fixity"

    def lookups(self, request, model_admin):
        return [("failed", "verify failed"), ("never", "never verified"), ("passed", "verified")]

    def queryset(self, request, queryset):
        failed_copy = Exists(Replica.objects.filter(media=OuterRef("pk"), state__in=FAILED_COPY))
        if self.value() == "failed":
            return queryset.filter(Q(verify_ok=False) | failed_copy)
        if self.value() == "never":
            return queryset.filter(verified_at__isnull=True)
        if self.value() == "passed":
            return queryset.filter(verify_ok=True).exclude(failed_copy)
        return queryset
