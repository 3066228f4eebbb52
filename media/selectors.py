"""Reads of media, with the joins the responses need (no per-row queries)."""

from __future__ import annotations

from django.db.models import QuerySet

from media.models import Media
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
