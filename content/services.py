"""Moving bytes between clients, media rows and storage backends.

The rules every path here keeps:
- a media row says READY only when its bytes are stored: bytes are written first, the row after;
- a failure leaves no row claiming bytes that were not stored, and removes bytes it wrote;
- long byte transfers run outside database transactions (SQLite locks the whole database for a
  write transaction); the row is then updated in a short transaction that re-checks it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator
from typing import BinaryIO

from django.conf import settings
from django.db import transaction

from media.models import Media, StoreStatus
from media.schemas import MediaIn
from media.selectors import media_get
from media.services import media_insert, media_prepare_many, new_store_key
from mediastore.errors import Conflict, MediastoreError, RuleViolation, StorageError
from stores.backends import Backend, ObjectNotFound
from stores.models import StoreConfig

DEFAULT_CONTENT_TYPE = "application/octet-stream"


def checksum_label(digest: hashlib._Hash) -> str:
    return f"sha256:{digest.hexdigest()}"


class HashingReader:
    """A read-only stream that hashes and counts what passes through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk

    @property
    def checksum(self) -> str:
        return checksum_label(self.digest)


class ChunkReader:
    """A file-like ``read(n)`` over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            chunk = next(self.chunks, b"")
            if not chunk:
                break
            self.buffer += chunk
        if size < 0:
            size = len(self.buffer)
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


BASE64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def decode_base64(text: str) -> bytes:
    """Strict standard base64: anything outside the alphabet, missing or extra padding, or stray
    bits in the last group is a 422, so nothing is silently dropped. No copies beyond the result."""
    if len(text) % 4 or not BASE64_RE.fullmatch(text):
        raise RuleViolation(
            "base64 is invalid: use the standard alphabet (A-Z a-z 0-9 + /) with '=' padding to a "
            "multiple of 4 characters, and no line breaks or spaces"
        )
    tail = text[-4:]
    if tail and base64.b64encode(base64.b64decode(tail)).decode("ascii") != tail:
        raise RuleViolation("base64 is invalid: the last group has stray bits (not canonical)")
    try:
        return binascii.a2b_base64(text, strict_mode=True)  # unlike b64decode, no ASCII copy of text
    except (binascii.Error, ValueError) as exc:  # unreachable after the checks above; kept as a guard
        raise RuleViolation(f"base64 is invalid: {exc}") from None


def base64_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Base64 of a stream of byte chunks, encoded piecewise (pieces regrouped to multiples of 3)."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        cut = len(data) - len(data) % 3
        rest = data[cut:]
        if cut:
            yield base64.b64encode(memoryview(data)[:cut])
    if rest:
        yield base64.b64encode(rest)


def base64_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


def hash_object(backend: Backend, key: str) -> tuple[int, str]:
    """Size and checksum of a stored object, read in chunks. Raises ObjectNotFound."""
    digest, size = hashlib.sha256(), 0
    for chunk in backend.iter_bytes(key):
        digest.update(chunk)
        size += len(chunk)
    return size, checksum_label(digest)


def discard(backend: Backend, key: str) -> None:
    """Best-effort removal of bytes this request wrote, when its database write failed."""
    try:
        backend.delete(key)
    except StorageError:
        pass  # the original error is the one to report; an orphan object claims nothing


# ---------------------------------------------------------------------------------------------
# Upload


def upload_base64(item: MediaIn, data: bytes, *, content_type: str, size: int | None = None, user) -> Media:
    """Create a media together with its bytes: both are stored, or neither. ``size``, when the
    client declared one, must be the length of ``data`` (RuleViolation otherwise)."""
    if size is not None and size != len(data):
        raise RuleViolation(f"base64 decodes to {len(data)} bytes, but size says {size}; nothing was stored")
    [media] = media_prepare_many([item], name_items=False)
    backend = media.store_config.backend()
    backend.put(media.store_key, data)
    media.store_status = StoreStatus.READY
    media.size = len(data)
    media.checksum = checksum_label(hashlib.sha256(data))
    media.etag = backend.etag(media.store_key) or ""
    media.content_type = content_type or DEFAULT_CONTENT_TYPE
    try:
        media_insert([media], user=user)
    except Exception:
        discard(backend, media.store_key)
        raise
    return media


def upload_presigned(item: MediaIn, *, content_type: str, size: int | None = None, user) -> tuple[Media, str]:
    """Create a PENDING media and a URL the client PUTs its bytes to (S3 stores only).

    ``size`` is what the client declared it will upload: it is signed into the URL and kept as the
    PENDING media's size, which ``complete`` then holds the object to. A missing bucket is a
    StorageError before anything is created."""
    [media] = media_prepare_many([item], name_items=False)
    backend = media.store_config.backend()
    if not backend.supports_presign:
        raise RuleViolation(
            f"no base64 given: presigned uploads need a BucketStore, not a {media.store_config.type}; "
            "send the bytes as base64 or with PUT /api/media/{pid}/content"
        )
    media.content_type = content_type
    media.size = size
    url = backend.presigned_put(
        media.store_key, settings.MEDIASTORE_PRESIGN_SECONDS, content_type or None, size=size
    )
    media_insert([media], user=user)
    return media, url


def _record_stored(
    media: Media, *, size: int, checksum: str, etag: str, content_type: str | None, user
) -> Media:
    """Mark the media READY with what was stored, if it still points where the bytes went."""
    with transaction.atomic():
        current = (
            Media.objects.select_for_update(of=("self",))
            .select_related("store_config__s3cfg")
            .filter(pk=media.pk, store_config_id=media.store_config_id, store_key=media.store_key)
            .first()
        )
        if current is None:
            raise Conflict(
                f"media '{media.pid}' was changed or deleted while its bytes were stored; try again"
            )
        current.store_status = StoreStatus.READY
        current.size, current.checksum, current.etag = size, checksum, etag
        if content_type is not None:
            current.content_type = content_type or DEFAULT_CONTENT_TYPE
        current._history_user = user
        current.save()
    return current


def put_content(pid: str, stream: BinaryIO, *, content_type: str, size: int | None, user) -> Media:
    """Stream a request body into the media's store (replacing bytes it had) and mark it READY.
    ``size`` is the body's length when the request declared one."""
    media = media_get(pid)
    backend = media.store_config.backend()
    reader = HashingReader(stream)
    backend.put_stream(media.store_key, reader, size)
    try:
        return _record_stored(
            media,
            size=reader.size,
            checksum=reader.checksum,
            etag=backend.etag(media.store_key) or "",
            content_type=content_type,
            user=user,
        )
    except Conflict:
        if not Media.objects.filter(
            store_config_id=media.store_config_id, store_key=media.store_key
        ).exists():
            discard(backend, media.store_key)
        raise


def complete(media: Media, *, user) -> Media:
    """READY media as they are; a PENDING media whose object now exists becomes READY (size and
    checksum read from the store); otherwise Conflict: nothing was uploaded. A PENDING media with a
    size (declared at a presigned upload) becomes READY only when the object has exactly that size;
    otherwise Conflict and it stays PENDING (an empty object from a mistaken POST included)."""
    if media.store_status == StoreStatus.READY:
        return media
    backend = media.store_config.backend()
    try:
        size, checksum = hash_object(backend, media.store_key)
    except ObjectNotFound:
        raise Conflict(f"the bytes of media '{media.pid}' were never stored") from None
    if media.size is not None and size != media.size:
        raise Conflict(
            f"the object uploaded for media '{media.pid}' has {size} bytes, but {media.size} were "
            "declared; it stays PENDING: PUT the right bytes to the presigned URL (or with "
            "PUT /api/media/{pid}/content) and complete again"
        )
    return _record_stored(
        media,
        size=size,
        checksum=checksum,
        etag=backend.etag(media.store_key) or "",
        content_type=None,
        user=user,
    )


# ---------------------------------------------------------------------------------------------
# Download


def _missing(media: Media) -> StorageError:
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


def open_content(media: Media, start: int, length: int | None) -> Iterator[bytes]:
    """Chunks of the stored bytes; raises before streaming starts when they are missing."""
    try:
        return media.store_config.backend().iter_bytes(media.store_key, start, length)
    except ObjectNotFound:
        raise _missing(media) from None


def stored_size(media: Media) -> int:
    if media.size is not None:
        return media.size
    try:
        return media.store_config.backend().size(media.store_key)
    except ObjectNotFound:
        raise _missing(media) from None


def verify(media: Media) -> dict:
    """Re-read the stored bytes and compare them with the recorded size and checksum."""
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
        result["missing"] = True
    result["ok"] = (
        not result["missing"]
        and result["size"] == media.size
        and (not media.checksum or result["checksum"] == media.checksum)
    )
    return result


# ---------------------------------------------------------------------------------------------
# Moving a READY media to another store


def copy_to_store(media: Media, store: StoreConfig) -> str:
    """Copy the media's bytes into ``store`` and verify the copy against the recorded checksum.

    Returns the key of the copy (the same key when it is free there). On any failure the copy is
    removed and the error raised (Conflict for a checksum mismatch, StorageError otherwise);
    the media and its original bytes are untouched.
    """
    source, target = media.store_config.backend(), store.backend()
    key = media.store_key
    if Media.objects.filter(store_config=store, store_key=key).exists() or target.exists(key):
        key = new_store_key()
    try:
        chunks = source.iter_bytes(media.store_key)
    except ObjectNotFound:
        raise _missing(media) from None
    reader = HashingReader(ChunkReader(chunks))
    try:
        target.put_stream(key, reader, media.size)
        expected = media.checksum or reader.checksum
        if reader.checksum != expected:
            raise Conflict(f"the stored bytes of media '{media.pid}' no longer match its checksum; not moved")
        try:
            copied = hash_object(target, key)[1]
        except ObjectNotFound:
            raise StorageError(
                f"the copy of media '{media.pid}' vanished from the new store; not moved"
            ) from None
        if copied != expected:
            raise Conflict(f"the copy of media '{media.pid}' in the new store did not verify; not moved")
    except MediastoreError:
        discard(target, key)
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return key
