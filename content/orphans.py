"""Finding and removing objects no media points at.

Every byte write goes to a fresh object and switches the media row to it, then removes the old
object; a crash or a failing store between those steps leaves an object behind that no row
references. Such orphans claim nothing, but they take space. An object younger than the grace
period may belong to a write still in progress (written, not yet switched), so it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from content.models import Replica
from content.services import discard
from media.models import Media
from mediastore.errors import StorageError
from stores.backends.base import ListingNotSupported, StoredObject
from stores.models import StoreConfig


@dataclass
class StoreOrphans:
    """What one store holds that no media references."""

    store: StoreConfig
    orphans: list[StoredObject] = field(default_factory=list)
    too_young: int = 0  # unreferenced, but written within the grace period
    unknown_age: int = 0  # unreferenced, in a medium that records no write times
    error: str = ""  # the store could not be listed

    @property
    def size(self) -> int:
        return sum(obj.size for obj in self.orphans)


def find_orphans(store: StoreConfig, *, older_than: float, now: float) -> StoreOrphans:
    """Objects of ``store`` that no media references (as its primary copy or a replica) and that
    were written more than ``older_than`` seconds before ``now``. Objects without a write time
    count as orphans only when ``older_than`` is 0."""
    result = StoreOrphans(store)
    try:
        listed = list(store.backend().list_objects())
    except (ListingNotSupported, StorageError) as exc:
        result.error = getattr(exc, "message", None) or str(exc)
        return result
    # Loaded after listing: a switch that committed meanwhile makes its new key referenced here.
    referenced = set(Media.objects.filter(store_config=store).values_list("store_key", flat=True))
    referenced |= set(Replica.objects.filter(store_config=store).values_list("store_key", flat=True))
    others = nested_prefixes(store)
    for obj in listed:
        if obj.key in referenced or obj.key.startswith(others):
            continue
        if obj.modified is None and older_than > 0:
            result.unknown_age += 1
        elif obj.modified is not None and now - obj.modified < older_than:
            result.too_young += 1
        else:
            result.orphans.append(obj)
    return result


def nested_prefixes(store: StoreConfig) -> tuple[str, ...]:
    """Key prefixes, relative to ``store``, under which other store configurations keep their
    objects: BucketStores of the same bucket and S3 configuration with a longer prefix (``bucket``
    and ``bucket/2024``, or ``bucket/a`` and ``bucket/a/b``). Listing ``store`` lists their objects
    too; they are theirs to judge, never ``store``'s orphans (``--delete`` removed the bytes of
    READY media of ``bucket/2024`` as orphans of ``bucket``)."""
    if store.s3cfg_id is None:
        return ()
    outer = store.bucket.strip("/") + "/"
    inner = (
        StoreConfig.objects.filter(s3cfg_id=store.s3cfg_id, bucket__startswith=outer)
        .exclude(pk=store.pk)
        .values_list("bucket", flat=True)
    )
    # startswith is case-insensitive on SQLite (LIKE); prefixes are not.
    return tuple(f"{bucket[len(outer) :].strip('/')}/" for bucket in inner if bucket.startswith(outer))


def referenced(store: StoreConfig, key: str) -> bool:
    """Whether a media's primary copy or a replica is the object under ``key`` of ``store``."""
    return (
        Media.objects.filter(store_config=store, store_key=key).exists()
        or Replica.objects.filter(store_config=store, store_key=key).exists()
    )


def remove_orphans(found: StoreOrphans) -> tuple[int, int]:
    """Delete the orphans found, each re-checked just before (a media may point at it now).
    Returns (objects removed, bytes freed)."""
    backend = found.store.backend()
    removed = freed = 0
    for obj in found.orphans:
        if referenced(found.store, obj.key):
            continue
        discard(backend, obj.key)
        removed += 1
        freed += obj.size
    return removed, freed
