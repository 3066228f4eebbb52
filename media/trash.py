"""The recycle bin's records (``MEDIASTORE_TRASH_DAYS``): putting deleted media rows in it and
purging them for good. ``content.trash`` stands above: the delete that bins, restore, the sweep.

Why a table of its own and not a flag on the media row: every reader of the media table (raw SQL
search, stats, dumps, the admin, fixity, the importer, events) would need a filter, and one
forgotten filter serves a deleted media. A binned media is a ``BinnedMedia`` row holding its media
row's every field and its replica rows, while its bytes stay where they are.

Purging removes the bytes (primary and replicas) unless a media in the table now uses the same
store key: a new media may have taken the key (keys may derive from the pid), and its bytes are
never removed by a purge. A new media that takes a binned media's pid or store key purges that
binned media at once (``purge_taken``), with a history row saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from media.history import history_row
from media.models import BinnedMedia, Media
from mediastore.errors import MediastoreError
from stores.models import StoreConfig

log = logging.getLogger(__name__)


def trash_enabled() -> bool:
    return settings.MEDIASTORE_TRASH_DAYS > 0


def media_record(media: Media) -> dict:
    """Every field of the media row (attname -> value), for ``BinnedMedia.record``."""
    return {field.attname: getattr(media, field.attname) for field in Media._meta.concrete_fields}


def media_from_record(record: dict) -> Media:
    """The unsaved media row ``record`` describes (values converted back from JSON)."""
    values = {}
    for field in Media._meta.concrete_fields:
        if field.attname in record:
            values[field.attname] = field.to_python(record[field.attname])
    return Media(**values)


def bin_rows(gone: list[Media], replicas: dict[int, list[dict]], *, user, now: datetime) -> None:
    """Put these media rows (being deleted in the caller's transaction) in the bin; ``replicas``:
    media pk -> its replica rows as dicts. A binned media with one of their pids is purged first:
    one binned media per pid, the newest."""
    purge_binned(
        list(BinnedMedia.objects.select_for_update().filter(pid__in=[m.pid for m in gone])),
        reason="a newer media of this pid was deleted",
        user=user,
    )
    keep = timedelta(days=settings.MEDIASTORE_TRASH_DAYS)
    by = getattr(user, "username", "") or ""
    BinnedMedia.objects.bulk_create(
        [
            BinnedMedia(
                media_pk=media.pk,
                pid=media.pid,
                store_config_id=media.store_config_id,
                store_key=media.store_key,
                record=media_record(media),
                replicas=replicas.get(media.pk, []),
                deleted_at=now,
                deleted_by=by,
                purge_after=now + keep,
            )
            for media in gone
        ]
    )


def purge_binned(binned: list[BinnedMedia], *, reason: str, user, remove_bytes: bool = True) -> None:
    """Remove these binned media for good (in the caller's transaction): a history row each
    ("purged from the recycle bin: <reason>"), then, once the transaction commits, their bytes and
    their replicas' bytes, except objects a media row uses by then. ``remove_bytes`` False: the
    objects now belong to someone else (a new media took the key)."""
    if not binned:
        return
    now = timezone.now()
    user_id = getattr(user, "pk", None)
    Media.history.model.objects.bulk_create(
        [
            history_row(
                media_from_record(item.record),
                history_date=now,
                history_type="-",
                history_user_id=user_id,
                history_change_reason=f"purged from the recycle bin: {reason}"[:100],
            )
            for item in binned
        ]
    )
    BinnedMedia.objects.filter(pk__in=[item.pk for item in binned]).delete()
    if remove_bytes:
        objects = binned_objects(binned)
        transaction.on_commit(lambda: remove_objects(objects), robust=True)


def binned_objects(binned: Iterable[BinnedMedia]) -> list[tuple[int, str]]:
    """(store pk, key) of the bytes of these binned media and of their replicas."""
    objects = []
    for item in binned:
        objects.append((item.store_config_id, item.store_key))
        objects += [(r["store_config_id"], r["store_key"]) for r in item.replicas if r.get("store_key")]
    return objects


def remove_objects(objects: list[tuple[int, str]]) -> None:
    """Remove these objects, each unless a media row or a binned media uses it now; a store
    failure is logged (``manage.py collect_orphans`` finds what stays)."""
    stores = StoreConfig.objects.select_related("s3cfg").in_bulk({store for store, _ in objects})
    for store_pk, key in objects:
        if Media.objects.filter(store_config_id=store_pk, store_key=key).exists():
            continue  # a new media took the key: its bytes
        if BinnedMedia.objects.filter(store_config_id=store_pk, store_key=key).exists():
            continue
        if store_pk not in stores:
            continue
        try:
            stores[store_pk].backend().delete(key)
        except MediastoreError as exc:
            log.warning(
                "purged media's object %r of store %s could not be removed: %s", key, store_pk, exc.message
            )


def purge_taken(media: list[Media], *, user) -> None:
    """Purge the binned media whose pid or store key these new (or re-keyed) media take, in the
    caller's transaction. Of one whose key is taken the bytes are the new media's now: kept."""
    if not media or not BinnedMedia.objects.exists():
        return
    taken_pid = list(BinnedMedia.objects.select_for_update().filter(pid__in=[m.pid for m in media]))
    purge_binned(taken_pid, reason="its pid was taken by a new media", user=user)
    keys = {(m.store_config_id, m.store_key) for m in media}
    candidates = BinnedMedia.objects.select_for_update().filter(store_key__in={key for _, key in keys})
    taken_key = [item for item in candidates if (item.store_config_id, item.store_key) in keys]
    purge_binned(taken_key, reason="its store key was taken by another media", user=user, remove_bytes=False)


def binned_keys(store_pk: int) -> set[str]:
    """The keys of ``store_pk`` that binned media keep (their bytes and their replicas'): not
    orphans, whatever ``manage.py collect_orphans`` sees."""
    keys = set(BinnedMedia.objects.filter(store_config_id=store_pk).values_list("store_key", flat=True))
    for replicas in BinnedMedia.objects.exclude(replicas=[]).values_list("replicas", flat=True).iterator():
        keys |= {
            r["store_key"] for r in replicas if r.get("store_config_id") == store_pk and r.get("store_key")
        }
    return keys
