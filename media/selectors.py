"""Reads of media, with the joins the responses need (no per-row queries)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from media.lifecycle import check_not_expired, not_expired_q
from media.models import Media
from media.pids import pick, pid_forms, with_pids
from mediastore.auth import NOT_READ, read_with_token
from mediastore.errors import NotFound
from mediastore.rowfetch import RowFetcher
from stores.models import StoreConfig


def media_queryset() -> QuerySet[Media]:
    return Media.objects.select_related("store_config__s3cfg")


# A media with its store configuration (and S3 configuration) in one statement compiled once:
# the same objects as media_queryset(), without compiling the query on every single read.
MEDIA_BY_PID = RowFetcher(Media, "pid", ("store_config", "s3cfg"))


def media_find(pid: str) -> Media | None:
    """The media of ``pid`` as given, else of its other Unicode forms (``media.pids``), or None."""
    for form in pid_forms(pid):
        media = MEDIA_BY_PID.first(form)
        if media is not None:
            return media
    return None


def media_get(pid: str, request: HttpRequest | None = None) -> Media:
    """The media of ``pid`` (as ``media_find``), or NotFound; Expired (a 404 too) when it passed its
    ``expires_at``. With ``request``, the row its token statement read for that pid when it did
    (``mediastore.auth.read_with_token``)."""
    media = NOT_READ if request is None else read_with_token(request, MEDIA_BY_PID, pid)
    if media is NOT_READ or media is None:  # None: the pid as given is not there; try its other forms
        media = media_find(pid)
    if media is None:
        raise NotFound("Media", pid)
    check_not_expired(media)
    return media


def media_stored(pids: list[str]) -> dict[str, Media]:
    """The stored media of these pids in any of their Unicode forms, expired ones too, by stored pid
    (``media.pids.pick`` finds a pid's), with their stores, in one query."""
    return {media.pid: media for media in with_pids(media_queryset(), pids)}


def media_read_many(pids: list[str]) -> list[Media]:
    """The media of these pids that exist and have not expired, in the order asked, each once."""
    found = {m.pid: m for m in with_pids(media_queryset().filter(not_expired_q(timezone.now())), pids)}
    media = {}
    for pid in pids:
        hit = pick(found, pid)
        if hit is not None:
            media.setdefault(hit.pk, hit)
    return list(media.values())


def media_locked(pids: Iterable[str] | None = None, **filters: object) -> list[Media]:
    """The media matching ``filters`` and, given ``pids``, of those pids (in every form:
    ``with_pids``), with their rows locked (``SELECT ... FOR UPDATE``, inside the caller's
    transaction), in primary-key order so that every writer locks in the same order and
    none deadlocks another, each with its store configuration (and S3 configuration) attached.

    The locking statement reads the media table alone. With a join to the store, PostgreSQL
    re-checks the join for a row that a concurrent move changed against the store row it had read
    before waiting for the lock, finds no match and drops the row: the media looks missing (a
    DELETE answered 404 and left the media). The stores are read in a second statement.
    """
    locking = Media.objects.select_for_update()
    if pids is not None:
        locking = with_pids(locking, pids)
    rows = list(locking.filter(**filters).order_by("pk"))
    stores = StoreConfig.objects.select_related("s3cfg").in_bulk({m.store_config_id for m in rows})
    for media in rows:
        media.store_config = stores[media.store_config_id]
    return rows
