"""Finding and removing objects no media points at.

Every byte write goes to a fresh object and switches the media row to it, then removes the old
object; a crash or a failing store between those steps leaves an object behind that no row
references. Such orphans claim nothing, but they take space. An object younger than the grace
period may belong to a write still in progress (written, not yet switched), so it is kept.

Stores that take parts (S3) are also searched for unfinished multipart uploads that nothing claims
(``ListMultipartUploads``): those of media deleted while PENDING, and boto's own, left by a worker
killed during a streaming PUT. Their parts take space until they are aborted. A multipart upload is
claimed by a media whose key it writes (a PENDING media's direct multipart upload) or by an owner
an app above registered (``register_multipart_owner``: tus uploads, whose media do not exist yet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from content.models import Replica
from content.services import discard
from media.models import Media
from media.trash import binned_keys
from mediastore.errors import StorageError
from stores.backends.base import ListingNotSupported, MultipartUpload, StoredObject
from stores.models import StoreConfig

# Functions store -> keys of multipart uploads in it that something other than a media row owns.
MULTIPART_OWNERS: list[Callable[[StoreConfig], set[str]]] = []


def register_multipart_owner(owner: Callable[[StoreConfig], set[str]]) -> None:
    """Let an app above (which content cannot import) claim multipart uploads it is writing."""
    MULTIPART_OWNERS.append(owner)


@dataclass
class StoreOrphans:
    """What one store holds that no media references."""

    store: StoreConfig
    orphans: list[StoredObject] = field(default_factory=list)
    too_young: int = 0  # unreferenced, but written within the grace period
    unknown_age: int = 0  # unreferenced, in a medium that records no write times
    error: str = ""  # the store could not be listed
    multipart: list[MultipartUpload] = field(default_factory=list)  # unfinished, claimed by nothing
    multipart_young: int = 0  # unclaimed, but begun within the grace period

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
    referenced |= binned_keys(store.pk)  # media in the recycle bin keep their bytes
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
    backend = store.backend()
    if backend.supports_multipart:
        try:
            uploads = backend.multipart_list()
        except StorageError as exc:
            result.error = exc.message
            return result
        claimed = claimed_keys(store)
        for upload in uploads:
            if upload.key in claimed or upload.key.startswith(others):
                continue
            if now - upload.initiated < older_than:
                result.multipart_young += 1
            else:
                result.multipart.append(upload)
    return result


def claimed_keys(store: StoreConfig) -> set[str]:
    keys = set(Media.objects.filter(store_config=store).values_list("store_key", flat=True))
    for owner in MULTIPART_OWNERS:
        keys |= owner(store)
    return keys


def abort_multipart(found: StoreOrphans) -> int:
    """Abort the unclaimed multipart uploads found (re-checked first); returns how many."""
    if not found.multipart:
        return 0
    backend = found.store.backend()
    claimed = claimed_keys(found.store)
    aborted = 0
    for upload in found.multipart:
        if upload.key in claimed:
            continue
        try:
            backend.multipart_abort(upload.key, upload.upload_id)
        except StorageError:
            continue
        aborted += 1
    return aborted


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
    """Whether a media's primary copy or a replica, or a binned media's, is the object under ``key``
    of ``store``."""
    return (
        Media.objects.filter(store_config=store, store_key=key).exists()
        or Replica.objects.filter(store_config=store, store_key=key).exists()
        or key in binned_keys(store.pk)
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
