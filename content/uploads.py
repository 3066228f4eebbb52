"""``POST /api/upload``, first time and again: what a client that repeats an upload gets.

The pipeline's client (amplify-storage-utils' ``MediaStore.put``) first posts the mediadata
without ``base64`` to see whether the store hands out a presigned URL, and when it gets none posts
the same mediadata again with the bytes. Retries of a request whose answer was lost look the same.
So an upload for a pid that exists is no plain conflict:

- the mediadata must be the one the media was created with (else 409 naming the fields);
- a PENDING media gets its bytes (with ``base64``) or, without, its presigned URL again;
- a READY media is answered as it is (READY) when the bytes are the same or none are sent (a
  retry changes nothing), and 409 when they differ (replacing bytes is
  ``PUT /api/media/{pid}/content``). So ``MediaStore.put`` can be retried whatever the store.
"""

from __future__ import annotations

import hashlib
from typing import Any

from content.hashing import checksum_label
from content.multipart import multipart_again, multipart_begin
from content.services import (
    Preconditions,
    discard,
    discard_after,
    fresh_key,
    presign_put,
    switch_bytes,
    upload_base64,
    upload_pending,
)
from media.lifecycle import is_expired
from media.models import Media, StoreStatus
from media.rules import IdentifierRules, clean_content_type, clean_tags
from media.schemas import MediaIn
from media.selectors import media_find
from media.usage import precheck_bytes
from mediastore import metrics
from mediastore.errors import Conflict, PreconditionFailed, RuleViolation
from stores.services import normalize_store

# An upload of bytes completes a PENDING media only while it has none: a concurrent upload that
# got there first wins, and this one is then judged as a repeat of it.
NO_BYTES_YET = Preconditions(if_none_match="*")


def upload(
    item: MediaIn, data: bytes | None, *, content_type: str, size: int | None, user
) -> tuple[Media, str | None]:
    """Create the media of ``item`` (READY with ``data``, else PENDING with a presigned URL where
    the store has them), or, when its pid exists, treat the upload as a repeat (see the module)."""
    if data is not None and size is not None and size != len(data):
        raise RuleViolation(f"base64 decodes to {len(data)} bytes, but size says {size}; nothing was stored")
    clean_content_type(content_type)
    existing = _existing(item)
    if existing is None:
        try:
            if data is not None:
                return upload_base64(item, data, content_type=content_type, user=user), None
            return upload_pending(item, content_type=content_type, size=size, user=user)
        except Conflict:
            existing = _existing(item)  # created by a concurrent upload since: a repeat of that
            if existing is None:
                raise
    return upload_again(existing, item, data, content_type=content_type, size=size, user=user)


def upload_multipart(item: MediaIn, *, size: int, content_type: str, user) -> tuple[Media, str | None]:
    """Create the media of ``item`` PENDING with an S3 multipart upload of ``size`` bytes (its
    id returned), or for a pid that exists with the same mediadata: a READY media as it is (no
    id), a PENDING one with a new multipart upload."""
    clean_content_type(content_type)
    existing = _existing(item)
    if existing is None:
        try:
            return multipart_begin(item, size=size, content_type=content_type, user=user)
        except Conflict:
            existing = _existing(item)
            if existing is None:
                raise
    differing = mediadata_differences(existing, item)
    if existing.store_status == StoreStatus.PENDING and existing.size != size:
        differing.append("size")
    if differing:
        raise Conflict(
            f"media '{existing.pid}' already exists with another {', '.join(differing)}; an upload for an "
            "existing pid must repeat the mediadata it was created with",
            fields=differing,
        )
    if existing.store_status == StoreStatus.READY:
        return existing, None
    return existing, multipart_again(existing)


def _existing(item: MediaIn) -> Media | None:
    """The media an upload of ``item`` repeats: its pid in any Unicode form (``media_find``); new
    pids are stored in NFC, so a repeat that writes the pid in NFD (as macOS file names are) names
    the media the first upload made. An expired media (no hold keeping it) is none: the upload
    creates a new media, which retires it (``media.services.media_insert``)."""
    media = None if item.pid is None else media_find(item.pid)
    return None if media is None or is_expired(media) else media


def upload_again(
    media: Media, item: MediaIn, data: bytes | None, *, content_type: str, size: int | None, user
) -> tuple[Media, str | None]:
    """An upload for the pid of ``media``, which exists (see the module for the rules)."""
    differing = mediadata_differences(media, item)
    if size is not None and media.store_status == StoreStatus.PENDING and media.size not in (None, size):
        differing.append("size")
    if differing:
        raise Conflict(
            f"media '{media.pid}' already exists with another {', '.join(differing)}; an upload for an "
            "existing pid must repeat the mediadata it was created with (change a media with "
            f"PATCH /api/media/{media.pid} or the update endpoints)",
            fields=differing,
        )
    if media.store_status == StoreStatus.READY:
        # Without bytes nothing can differ: the answer READY tells the client the bytes are there
        # (MediaStore.put then sends its bytes, which are compared).
        if data is None or _same_bytes(media, data):
            return media, None  # a repeated upload: nothing changes
        raise Conflict(
            f"media '{media.pid}' already has other bytes; replace them with "
            f"PUT /api/media/{media.pid}/content"
        )
    if data is None:
        return media, presign_put(media, content_type)
    if media.size is not None and len(data) != media.size:
        raise Conflict(
            f"base64 decodes to {len(data)} bytes, but {media.size} were declared for media "
            f"'{media.pid}'; it stays PENDING"
        )
    return _fill(media, data, content_type=content_type, user=user), None


def _fill(media: Media, data: bytes, *, content_type: str, user) -> Media:
    """Store ``data`` as the bytes of the PENDING ``media`` and mark it READY."""
    precheck_bytes(media, len(data))
    backend = media.store_config.backend()
    key = fresh_key(media.store_key)
    backend.put(key, data)
    metrics.BYTES_UPLOADED.inc(len(data))
    try:
        return switch_bytes(
            media,
            key=key,
            size=len(data),
            checksum=checksum_label(hashlib.sha256(data)),
            etag=backend.etag(key) or "",
            content_type=content_type,
            user=user,
            conditions=NO_BYTES_YET,
        )
    except PreconditionFailed:
        discard(backend, key)
        current = Media.objects.select_related("store_config__s3cfg").get(pk=media.pk)
        if _same_bytes(current, data):
            return current  # a concurrent repeat of this upload completed it
        raise Conflict(f"media '{media.pid}' got other bytes meanwhile; nothing was stored") from None
    except Exception as exc:
        discard_after(exc, media, backend, key)
        raise


def _same_bytes(media: Media, data: bytes) -> bool:
    return (
        media.store_status == StoreStatus.READY
        and media.size == len(data)
        and media.checksum == checksum_label(hashlib.sha256(data))
    )


def same_json(a: Any, b: Any) -> bool:
    """Whether two decoded JSON values are the same JSON: Python's ``==`` takes ``true`` for ``1``
    and ``false`` for ``0`` (bool is an int), which JSON does not; numbers compare by value (``1``
    and ``1.0`` are one JSON number)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def mediadata_differences(media: Media, item: MediaIn) -> list[str]:
    """The fields of ``item`` (as the API names them) that differ from what ``media`` has."""
    differing = []
    if item.pid_type != media.pid_type_id:
        differing.append("pid_type")
    store = media.store_config
    spec = item.store_config
    store_type, bucket, s3cfg = normalize_store(spec.type, spec.bucket, spec.s3_url)
    if (store_type, bucket, getattr(s3cfg, "pk", None)) != (store.type, store.bucket, store.s3cfg_id):
        differing.append("store_config")
    if "pid_type" not in differing:
        wanted: dict[str, Any] = IdentifierRules().identifiers(media.pid, item.pid_type, item.identifiers)
        if wanted != media.identifiers:
            differing.append("identifiers")
    if not same_json(item.metadata, media.metadata):
        differing.append("metadata")
    if sorted(clean_tags(item.tags)) != sorted(media.tag_list):
        differing.append("tags")
    return differing
