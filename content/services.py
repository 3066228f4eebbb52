"""Moving bytes between clients, media rows and storage backends.

The rules every path here keeps (the README's "Consistency" section states them for clients):
- bytes are never overwritten in place: every write of a media's bytes goes to a fresh key, then
  one short transaction locks the media row, re-checks it and switches key, size, checksum and
  status together (``switch_bytes``); the superseded object is removed after the commit;
- a media row says READY only when its bytes are stored, so a crash at any point leaves either the
  old bytes or the new ones behind a READY row, plus at most an unreferenced object that
  ``manage.py collect_orphans`` finds;
- long byte transfers run outside database transactions (SQLite locks the whole database for a
  write transaction).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from typing import BinaryIO, TypeVar

import pybase64
from django.conf import settings
from django.db import transaction

from content.hashing import HashingReader, checksum_label
from media.models import EventType, Media, StoreStatus
from media.outbox import event_for, record
from media.schemas import MediaIn
from media.selectors import media_get
from media.services import media_insert, media_prepare_many
from mediastore import failpoints, metrics
from mediastore.errors import Conflict, MediastoreError, PreconditionFailed, RuleViolation, StorageError
from stores.backends import Backend, ObjectNotFound
from stores.models import StoreConfig
from stores.paths import MAX_KEY_LENGTH

DEFAULT_CONTENT_TYPE = "application/octet-stream"

log = logging.getLogger(__name__)

T = TypeVar("T")


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


def decode_base64(text: str) -> bytes:
    """Strict standard base64: anything outside the alphabet, missing or extra padding, or stray
    bits in the last group is a 422, so nothing is silently dropped. No copies beyond the result.

    pybase64 (SIMD) checks the alphabet and padding while it decodes, about 20x faster than a
    regular expression over the text followed by ``binascii`` (docs/performance.md)."""
    if len(text) % 4:
        raise RuleViolation(BAD_BASE64)
    try:
        data = pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RuleViolation(BAD_BASE64) from None
    tail = text[-4:]  # valid base64 now; only its stray bits remain to check
    if tail and base64.b64encode(base64.b64decode(tail)).decode("ascii") != tail:
        raise RuleViolation("base64 is invalid: the last group has stray bits (not canonical)")
    return data


BAD_BASE64 = (
    "base64 is invalid: use the standard alphabet (A-Z a-z 0-9 + /) with '=' padding to a "
    "multiple of 4 characters, and no line breaks or spaces"
)


def base64_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Base64 of a stream of byte chunks, encoded piecewise (pieces regrouped to multiples of 3)."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        cut = len(data) - len(data) % 3
        rest = data[cut:]
        if cut:
            yield pybase64.b64encode(memoryview(data)[:cut])
    if rest:
        yield pybase64.b64encode(rest)


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
    """Best-effort removal of an object no row points at (bytes a failed request wrote, or bytes a
    switch superseded). A failure is logged: the object is an orphan that collect_orphans finds."""
    try:
        backend.delete(key)
    except StorageError as exc:
        log.warning("could not remove unreferenced object %r: %s", key, exc.message)


# ---------------------------------------------------------------------------------------------
# Phase two of every byte write: the switch

_KEY_SUFFIX = re.compile(r"~[0-9a-f]{12}$")


def fresh_key(key: str) -> str:
    """The key for a new version of the bytes now under ``key``: the same name with a new random
    suffix (``name~3f9c0a1b2d4e``), so each version of a media's bytes is its own object."""
    base = _KEY_SUFFIX.sub("", key)[: MAX_KEY_LENGTH - 13]
    return f"{base}~{secrets.token_hex(6)}"


def current_etag(media: Media) -> str | None:
    """The ETag a client sees for the media's bytes (the SHA-256 hex), None while it has none."""
    if media.store_status != StoreStatus.READY:
        return None
    return media.checksum.removeprefix("sha256:") or None


class Preconditions:
    """HTTP conditional-write headers: ``If-Match`` (ETags or ``*``) and ``If-None-Match: *``.

    Checked once before the body is read (to fail fast) and again under the row lock at the
    switch (so a write that raced another one cannot slip through).
    """

    def __init__(self, if_match: str | None = None, if_none_match: str | None = None) -> None:
        self.if_match = _etag_list(if_match) if if_match is not None else None
        self.if_none_match = _etag_list(if_none_match) if if_none_match is not None else None

    def check(self, media: Media) -> None:
        etag = current_etag(media)
        if self.if_none_match is not None:
            if etag is not None and ("*" in self.if_none_match or etag in self.if_none_match):
                raise PreconditionFailed(
                    f"media '{media.pid}' already has bytes with ETag \"{etag}\" (If-None-Match)"
                )
        if self.if_match is not None:
            if etag is None:
                raise PreconditionFailed(f"media '{media.pid}' has no stored bytes (If-Match)")
            if "*" not in self.if_match and etag not in self.if_match:
                raise PreconditionFailed(
                    f"the bytes of media '{media.pid}' have ETag \"{etag}\", not the one given in If-Match"
                )


def _etag_list(header: str) -> list[str]:
    """``"a", W/"b", *`` -> ``["a", "b", "*"]`` (weak and strong compare alike for our ETags)."""
    tags = []
    for part in header.split(","):
        tag = part.strip().removeprefix("W/").strip('"')
        if tag:
            tags.append(tag)
    return tags


NO_CONDITIONS = Preconditions()

# What a switch may change, as the API names them (listed in the event's ``changed``).
BYTE_FIELDS = ("store_status", "size", "checksum", "content_type")


def switch_bytes(
    media: Media,
    *,
    key: str,
    size: int,
    checksum: str,
    etag: str,
    content_type: str | None,
    user,
    conditions: Preconditions = NO_CONDITIONS,
    same_key: bool = False,
) -> Media:
    """Point the media at the object just written under ``key`` and mark it READY, atomically.

    ``media`` is the row as it was when the write started. Under a row lock the current row must
    still exist and use the same store (else Conflict: the write is not acknowledged), with
    ``same_key`` also the same key (completions), and ``conditions`` must hold. Concurrent writers
    of new bytes are ordered by their switches: the last switch wins, as with S3 PUTs. After the
    commit the superseded object is removed. The caller removes ``key`` when this raises.
    """
    failpoints.hit("content.before_switch")
    with transaction.atomic():
        current = (
            Media.objects.select_for_update(of=("self",))
            .select_related("store_config__s3cfg")
            .filter(pk=media.pk)
            .first()
        )
        if current is None:
            raise Conflict(f"media '{media.pid}' was deleted while its bytes were stored")
        if same_key and current.store_key == key and current.store_status == StoreStatus.READY:
            return current  # completed by a concurrent request meanwhile
        if current.store_config_id != media.store_config_id or (
            same_key and current.store_key != media.store_key
        ):
            raise Conflict(f"media '{media.pid}' was moved or changed while its bytes were stored; try again")
        conditions.check(current)
        before = {name: getattr(current, name) for name in BYTE_FIELDS}
        old_key = current.store_key
        current.store_key = key
        current.store_status = StoreStatus.READY
        current.size, current.checksum, current.etag = size, checksum, etag
        current.verified_at, current.verify_ok, current.verify_error = None, None, ""  # new bytes: unchecked
        if content_type is not None:
            current.content_type = content_type or DEFAULT_CONTENT_TYPE
        current._history_user = user
        current.save()
        changed = [name for name in BYTE_FIELDS if getattr(current, name) != before[name]]
        record([event_for(current, EventType.BYTES_STORED, user=user, changed=changed)])
    failpoints.hit("content.after_switch")
    if old_key != key:
        discard(current.store_config.backend(), old_key)
    return current


# ---------------------------------------------------------------------------------------------
# Upload


def upload_base64(item: MediaIn, data: bytes, *, content_type: str, size: int | None = None, user) -> Media:
    """Create a media together with its bytes: both are stored, or neither. The new media's key
    is a fresh UUID, so the bytes can be written before the row exists. ``size``, when the client
    declared one, must be the length of ``data`` (RuleViolation otherwise)."""
    if size is not None and size != len(data):
        raise RuleViolation(f"base64 decodes to {len(data)} bytes, but size says {size}; nothing was stored")
    [media] = media_prepare_many([item], user=user, name_items=False)
    backend = media.store_config.backend()
    backend.put(media.store_key, data)
    metrics.BYTES_UPLOADED.inc(len(data))
    checksum = checksum_label(hashlib.sha256(data))
    return insert_ready(
        media, backend, size=len(data), checksum=checksum, content_type=content_type, user=user
    )


def upload_stream(
    item: MediaIn, stream: BinaryIO, *, content_type: str, size: int | None = None, user
) -> Media:
    """Create a media together with the bytes ``stream.read(n)`` yields (constant memory): both
    are stored, or neither. ``size`` is a hint for the backend. An error raised by the stream
    propagates after the backend removed what it had written (``Backend.put_stream``), so a caller
    may abort a transfer by making its stream raise."""
    [media] = media_prepare_many([item], user=user, name_items=False)
    backend = media.store_config.backend()
    reader = HashingReader(stream)
    backend.put_stream(media.store_key, reader, size)
    return insert_ready(
        media, backend, size=reader.size, checksum=reader.checksum, content_type=content_type, user=user
    )


def insert_ready(
    media: Media, backend: Backend, *, size: int, checksum: str, content_type: str, user
) -> Media:
    """Insert a prepared (unsaved) media as READY with the bytes already stored under its key;
    when the insert fails the bytes are removed and the error raised (no row claims them)."""
    media.store_status = StoreStatus.READY
    media.size, media.checksum = size, checksum
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
    [media] = media_prepare_many([item], user=user, name_items=False)
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


def put_content(
    pid: str,
    stream: BinaryIO,
    *,
    content_type: str,
    size: int | None,
    user,
    conditions: Preconditions = NO_CONDITIONS,
) -> Media:
    """Stream a request body into a fresh object of the media's store and switch the media to it
    (replacing bytes it had). ``size`` is the body's length when the request declared one.
    ``conditions`` are checked before the body is read and again at the switch (412)."""
    media = media_get(pid)
    conditions.check(media)
    backend = media.store_config.backend()
    key = fresh_key(media.store_key)
    reader = HashingReader(stream)
    backend.put_stream(key, reader, size)
    metrics.BYTES_UPLOADED.inc(reader.size)
    try:
        return switch_bytes(
            media,
            key=key,
            size=reader.size,
            checksum=reader.checksum,
            etag=backend.etag(key) or "",
            content_type=content_type,
            user=user,
            conditions=conditions,
        )
    except MediastoreError:
        discard(backend, key)
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
    try:
        return switch_bytes(
            media,
            key=media.store_key,
            size=size,
            checksum=checksum,
            etag=backend.etag(media.store_key) or "",
            content_type=None,
            user=user,
            same_key=True,
        )
    except Conflict:
        current = Media.objects.select_related("store_config__s3cfg").filter(pk=media.pk).first()
        if current is not None and current.store_status == StoreStatus.READY:
            return current  # completed (or replaced) by a concurrent request meanwhile
        raise


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


def read_current(pid: str, *, user, read: Callable[[Media], T]) -> T:
    """``read(media)`` for the media as it is now (a PENDING one whose upload arrived is completed
    first). When ``read`` fails with a StorageError because the bytes were switched to another
    object between reading the row and opening them, the media is read again and ``read`` retried,
    at most READ_ATTEMPTS times in all."""
    for attempt in range(1, READ_ATTEMPTS + 1):
        media = complete(media_get(pid), user=user)
        try:
            return read(media)
        except StorageError:
            if attempt == READ_ATTEMPTS or not replaced(media):
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def open_content(media: Media, start: int, length: int | None) -> Iterator[bytes]:
    """Chunks of the stored bytes (counted as downloaded as they go out); raises before streaming
    starts when they are missing."""
    try:
        chunks = media.store_config.backend().iter_bytes(media.store_key, start, length)
        return metrics.counted(chunks, metrics.BYTES_DOWNLOADED)
    except ObjectNotFound:
        raise _missing(media) from None


def stored_size(media: Media) -> int:
    if media.size is not None:
        return media.size
    try:
        return media.store_config.backend().size(media.store_key)
    except ObjectNotFound:
        raise _missing(media) from None


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
        if attempts > 1 and replaced(media):  # switched to new bytes while being read: verify those
            return verify(media_get(media.pid), attempts=attempts - 1)
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
    """Copy the media's bytes into a fresh key of ``store`` and verify the copy against the
    recorded checksum (phase one of a move; the row switches in ``media.services``).

    Returns the key of the copy. On any failure the copy is removed and the error raised
    (Conflict for a checksum mismatch or bytes replaced meanwhile, StorageError otherwise); the
    media and its original bytes are untouched.
    """
    source, target = media.store_config.backend(), store.backend()
    key = fresh_key(media.store_key)
    try:
        chunks = source.iter_bytes(media.store_key)
    except ObjectNotFound:
        if Media.objects.filter(pk=media.pk, store_key=media.store_key).exists():
            raise _missing(media) from None
        raise Conflict(f"the bytes of media '{media.pid}' were replaced while it moved; try again") from None
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
