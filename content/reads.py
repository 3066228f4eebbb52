"""Reading a media's bytes: presigned and direct downloads that retry when the bytes were replaced
meanwhile, ranged reads, and verification against the recorded checksum. Writes (the atomic switch
of a media's bytes) are in ``content.services``, moves to another store in ``content.moves``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

from django.conf import settings

from content.services import complete, hash_object
from media.models import Media, StoreStatus
from media.selectors import media_get
from mediastore import failpoints, metrics
from mediastore.errors import Conflict, NotFound, RuleViolation, StorageError
from stores.backends import ObjectNotFound
from stores.backends.base import DEFAULT_CHUNK_SIZE

log = logging.getLogger(__name__)

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Download


def missing_bytes(media: Media) -> StorageError:
    """The error for a READY media whose bytes are not in its store."""
    return StorageError(f"the stored bytes of media '{media.pid}' are missing from its store")


def presigned_get(media: Media, *, user) -> tuple[Media, str]:
    backend = media.store_config.backend()
    if not backend.supports_presign:
        raise RuleViolation(
            f"presigned URLs are only available for BucketStore media, not {media.store_config.type}; "
            "use GET /api/download/{pid} or GET /api/media/{pid}/content"
        )
    media = complete(media, user=user)
    return media, backend.presigned_get(media.store_key, settings.MEDIASTORE_PRESIGN_SECONDS)


# A reader that finds its object replaced reads the media again, up to this many times in all
# (each replacement is a completed write; only a media rewritten many times a second exhausts it).
READ_ATTEMPTS = 8


def replaced(media: Media) -> bool:
    """Whether the media's bytes were switched to another object since ``media`` was read (a
    reader that finds its object gone then reads the media again instead of failing)."""
    return (
        Media.objects.filter(pk=media.pk)
        .exclude(store_config_id=media.store_config_id, store_key=media.store_key)
        .exists()
    )


def deleted(media: Media) -> bool:
    """Whether the media was deleted since ``media`` was read (its bytes go with it: a reader that
    then finds them missing answers 404, not "stored bytes missing")."""
    return not Media.objects.filter(pk=media.pk).exists()


def read_current(pid: str, *, user, read: Callable[[Media], T]) -> T:
    """``read(media)`` for the media as it is now (a PENDING one whose upload arrived is completed
    first). When ``read`` fails with a StorageError because the bytes were switched to another
    object between reading the row and opening them, the media is read again and ``read`` retried,
    at most READ_ATTEMPTS times in all."""
    for attempt in range(1, READ_ATTEMPTS + 1):
        media = complete(media_get(pid), user=user)
        failpoints.hit("content.before_read")  # the live test widens the window to a racing delete here
        try:
            return read(media)
        except StorageError:
            if deleted(media):  # a DELETE won the race: the media is gone, not its bytes lost
                raise NotFound("Media", pid) from None
            if attempt == READ_ATTEMPTS or not replaced(media):
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def open_content(
    media: Media, start: int, length: int | None, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """Chunks of the stored bytes (counted as downloaded as they go out); raises before streaming
    starts when they are missing."""
    try:
        chunks = media.store_config.backend().iter_bytes(media.store_key, start, length, chunk_size)
        return metrics.counted(chunks, metrics.BYTES_DOWNLOADED)
    except ObjectNotFound:
        raise missing_bytes(media) from None


def stored_size(media: Media) -> int:
    if media.size is not None:
        return media.size
    try:
        return media.store_config.backend().size(media.store_key)
    except ObjectNotFound:
        raise missing_bytes(media) from None


def verify(media: Media, *, attempts: int = READ_ATTEMPTS) -> dict:
    """Re-read the stored bytes and compare them with the recorded size and checksum (those of
    the media as it is then, when its bytes were replaced while being read)."""
    if media.store_status != StoreStatus.READY:
        raise Conflict(f"media '{media.pid}' has no stored bytes to verify (store_status PENDING)")
    result = {
        "pid": media.pid,
        "expected_size": media.size,
        "expected_checksum": media.checksum,
        "size": None,
        "checksum": "",
        "missing": False,
    }
    try:
        result["size"], result["checksum"] = hash_object(media.store_config.backend(), media.store_key)
    except ObjectNotFound:
        if deleted(media):
            raise NotFound("Media", media.pid) from None
        if attempts > 1 and replaced(media):  # switched to new bytes while being read: verify those
            return verify(media_get(media.pid), attempts=attempts - 1)
        result["missing"] = True
    result["ok"] = (
        not result["missing"]
        and result["size"] == media.size
        and (not media.checksum or result["checksum"] == media.checksum)
    )
    return result
