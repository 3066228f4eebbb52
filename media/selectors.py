"""Reads of media, with the joins the responses need (no per-row queries)."""

from __future__ import annotations

from django.db.models import QuerySet

from media.models import Media, TaggedMedia
from mediastore.errors import NotFound


def media_queryset() -> QuerySet[Media]:
    return Media.objects.select_related("store_config__s3cfg")


def media_get(pid: str) -> Media:
    media = media_queryset().filter(pid=pid).first()
    if media is None:
        raise NotFound("Media", pid)
    return media


def media_read_many(pids: list[str]) -> list[Media]:
    """The media of these pids that exist, in the order asked, each once."""
    found = {m.pid: m for m in media_queryset().filter(pid__in=set(pids))}
    return [found[pid] for pid in dict.fromkeys(pids) if pid in found]


def media_with_any_tag(tags: list[str]) -> QuerySet[Media]:
    """Media carrying any of ``tags``, each once (a subquery, so no duplicates and no DISTINCT)."""
    tagged = TaggedMedia.objects.filter(tag__name__in=tags).values("content_object_id")
    return media_queryset().filter(pk__in=tagged)
