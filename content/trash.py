"""The recycle bin's services that touch more than records: restoring binned media (rows, tags,
replicas; their bytes never moved), purging them at once or when due (``manage.py purge_trash``),
and the bin's listing. ``media.trash`` keeps the records; ``content.deletes`` bins on delete.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from content.replicas import restore_replicas
from media.bulk import BulkOutcome, raise_first_failure
from media.models import BinnedMedia, EventType, Media, StoreStatus, next_marks
from media.outbox import event_for, record
from media.pids import lookup_set
from media.tags import sync_tags
from media.trash import media_from_record, purge_binned
from media.usage import charge_inserted
from mediastore.errors import Conflict, MediastoreError, NotFound
from mediastore.pagination import Page
from stores.models import StoreConfig

PURGE_BATCH = 500
RESTORE_REASON = "restored from the recycle bin"


def trash_page(*, pid_prefix: str = "", limit: int, offset: int) -> Page:
    """One page of the bin, newest deletion first; ``pid_prefix`` keeps the pids that start with it."""
    rows = BinnedMedia.objects.all()
    if pid_prefix:
        rows = rows.filter(pid__startswith=pid_prefix)
    total = rows.count()
    items = list(rows.order_by("-deleted_at", "-pk")[offset : offset + limit + 1])
    stores = StoreConfig.objects.select_related("s3cfg").in_bulk({item.store_config_id for item in items})
    for item in items:
        item.store_config = stores[item.store_config_id]
    return Page(items[:limit], total, True, offset, limit, len(items) > limit)


def binned_media(item: BinnedMedia) -> Media:
    """The media row ``item`` keeps, with its store attached (unsaved)."""
    media = media_from_record(item.record)
    media.store_config = item.store_config
    return media


def _binned(pids: list[str]) -> dict[str, BinnedMedia]:
    rows = BinnedMedia.objects.select_for_update(of=("self",)).select_related("store_config__s3cfg")
    return {item.pid: item for item in rows.filter(pid__in=lookup_set(pids))}


def _restorable(item: BinnedMedia, media: Media, *, user) -> None:
    """Conflict when ``media`` cannot come back as it was: its pid, pk or store key is used by a media
    now, or its bytes were replaced by another's (then it is purged: those bytes are not its own)."""
    if Media.objects.filter(pid__in=lookup_set([media.pid])).exists():
        raise Conflict(
            f"media with pid '{media.pid}' exists again (created after the delete); the binned one cannot be "
            "restored under it: delete or rename that media first"
        )
    if Media.objects.filter(pk=media.pk).exists():
        raise Conflict(f"the record number {media.pk} of media '{media.pid}' is used by another media now")
    if Media.objects.filter(store_config_id=media.store_config_id, store_key=media.store_key).exists():
        raise Conflict(
            f"the store key {media.store_key!r} of media '{media.pid}' is used by another media now; "
            "it cannot be restored onto that media's bytes"
        )
    if media.store_status != StoreStatus.READY:
        return
    backend = item.store_config.backend()
    if not backend.exists(media.store_key):
        raise Conflict(f"the bytes of media '{media.pid}' are gone from its store; it cannot be restored")
    etag = backend.etag(media.store_key)
    if (etag and media.etag and etag != media.etag) or backend.size(media.store_key) != media.size:
        purge_binned(
            [item], reason="its object was overwritten by other bytes", user=user, remove_bytes=False
        )
        raise Conflict(
            f"the object of media '{media.pid}' was overwritten by other bytes meanwhile; it is purged from "
            "the recycle bin (never restored onto foreign bytes)"
        )


def restore_media(items: list[BinnedMedia], media: list[Media], *, user) -> None:
    """Put these binned media back in the media table exactly as they were (pk, pid, identifiers,
    metadata, tags, store, key, size, checksum, ETag, expiry, hold), with their replicas, as one more
    change each (new mark and version, a history row "restored from the recycle bin", an event
    ``media.restored``), and drop them from the bin. In the caller's transaction. The one way a
    binned media comes back: whatever counts media (quotas) counts them again here."""
    if not media:
        return
    now = timezone.now()
    for obj, mark in zip(media, next_marks(len(media)), strict=True):
        obj.stamp(mark)
        obj.updated = now
        if obj.expires_at is not None and obj.expires_at <= now:
            # Back with an expiry already past it would answer 404 everywhere and go to the bin
            # again at the next `expire`: restoring it means keeping it, so the expiry is cleared.
            obj._change_reason = (
                f"{RESTORE_REASON}; its expiry {obj.expires_at.isoformat()} had passed: cleared"
            )
            obj.expires_at = None
    # Binned media count toward no quota; back, they count again (QuotaExceeded, 507: nothing restored).
    warnings = charge_inserted(media, user=user)
    created = [obj.created for obj in media]
    Media.objects.bulk_create(media)
    for obj, when in zip(media, created, strict=True):
        obj.created = when  # bulk_create stamped "now" (auto_now_add): put the creation time back
    Media.objects.bulk_update(media, ["created"])
    Media.history.bulk_history_create(
        media, update=True, default_user=user, default_date=now, default_change_reason=RESTORE_REASON
    )
    sync_tags(media, fresh=True)
    restore_replicas([row for item in items for row in item.replicas])  # of stores that still exist
    record([event_for(obj, EventType.RESTORED, user=user, now=now) for obj in media] + warnings)
    BinnedMedia.objects.filter(pk__in=[item.pk for item in items]).delete()


def trash_restore_many(pids: list[str], *, user) -> BulkOutcome:
    """Restore the binned media of ``pids``; each succeeds or fails on its own (NotFound when not in
    the bin, Conflict when its pid, pk or store key was taken meanwhile)."""
    outcome = BulkOutcome()
    with transaction.atomic():
        found = _binned(pids)
        items, media = [], []
        for pid in pids:
            item = found.pop(pid, None)
            try:
                if item is None:
                    raise NotFound("Media in the recycle bin", pid)
                obj = binned_media(item)
                _restorable(item, obj, user=user)
            except MediastoreError as exc:
                outcome.failures.append((pid, exc))
                continue
            items.append(item)
            media.append(obj)
            outcome.successes.append(pid)
        restore_media(items, media, user=user)
        outcome.applied = media
    return outcome


def trash_restore(pid: str, *, user) -> Media:
    outcome = trash_restore_many([pid], user=user)
    raise_first_failure(outcome)
    return outcome.applied[0]


def trash_purge(pid: str, *, user) -> None:
    """Purge the binned media of ``pid`` now (record, bytes, replicas' bytes); NotFound."""
    with transaction.atomic():
        item = _binned([pid]).get(pid)
        if item is None:
            raise NotFound("Media in the recycle bin", pid)
        purge_binned(
            [item], reason=f"purged by {getattr(user, 'username', '') or 'an administrator'}", user=user
        )


def purge_due(*, now: datetime | None = None, batch: int = PURGE_BATCH) -> int:
    """Purge the binned media whose ``purge_after`` has passed, ``batch`` per transaction; how many."""
    now = now or timezone.now()
    due = BinnedMedia.objects.filter(purge_after__lte=now)
    purged = 0
    for _ in range(due.count() // batch + 2):  # bounded: each round takes a batch or ends
        with transaction.atomic():
            items = list(due.select_for_update().order_by("pk")[:batch])
            if not items:
                break
            purge_binned(items, reason="its time in the bin ran out", user=None)
        purged += len(items)
    return purged
