"""Moving bytes between clients, media rows and storage backends.

The rules every path here keeps (docs/bytes.md, "Consistency", states them for clients):
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

import hashlib
import logging
import re
import secrets
from typing import BinaryIO, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction

from content.hashing import HashingReader, checksum_label
from content.models import Replica
from media.lifecycle import check_hold
from media.models import EventType, Media, StoreStatus
from media.outbox import event_for, record
from media.rules import clean_content_type
from media.schemas import MediaIn
from media.selectors import media_get, media_locked
from media.services import media_insert, prepared_media
from media.usage import charge_change, counted, precheck_bytes
from mediastore import failpoints, metrics
from mediastore.errors import Conflict, PreconditionFailed, StorageError
from stores.backends import Backend, ObjectNotFound
from stores.paths import MAX_KEY_LENGTH, MAX_NAME_BYTES

DEFAULT_CONTENT_TYPE = "application/octet-stream"

log = logging.getLogger(__name__)

T = TypeVar("T")


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


def discard_after(failure: BaseException, media: Media, backend: Backend, key: str) -> None:
    """Remove the object under ``key`` that a write stored for ``media`` before ``failure`` stopped
    the switch (or insert) that was to point the media at it.

    After a lost database connection the outcome is unknown: a commit can reach the database
    although its answer never came back. Then the object is removed only when a fresh connection
    shows that no media points at it; when that cannot be read either, the object stays, an orphan
    that ``collect_orphans`` finds (better than a READY row without bytes).
    """
    if not isinstance(failure, OperationalError | InterfaceError):
        discard(backend, key)
        return
    try:
        if connection.in_atomic_block:  # the caller's transaction is broken: nothing can be read in it
            raise OperationalError("inside a failed transaction")
        connection.close_if_unusable_or_obsolete()
        claimed = Media.objects.filter(store_config_id=media.store_config_id, store_key=key).exists()
    except DatabaseError as exc:
        log.warning("object %r left in its store: whether a media uses it is unknown (%s)", key, exc)
        return
    if not claimed:
        discard(backend, key)


# ---------------------------------------------------------------------------------------------
# Phase two of every byte write: the switch

_KEY_SUFFIX = re.compile(r"~[0-9a-f]{12}$")


def fresh_key(key: str) -> str:
    """The key for a new version of the bytes now under ``key``: the same name with a new random
    suffix (``name~3f9c0a1b2d4e``), so each version of a media's bytes is its own object. The name's
    last part is cut so that it stays a valid file name (stores.paths.MAX_NAME_BYTES) with the suffix."""
    head, _, name = _KEY_SUFFIX.sub("", key)[: MAX_KEY_LENGTH - 13].rpartition("/")
    name = name.encode("utf-8", "surrogatepass")[: MAX_NAME_BYTES - 13].decode("utf-8", "ignore")
    return f"{head}{'/' if head else ''}{name}~{secrets.token_hex(6)}"


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
    reason: str = "",
) -> Media:
    """Point the media at the object just written under ``key`` and mark it READY, atomically.

    ``media`` is the row as it was when the write started. Under a row lock the current row must
    still exist and use the same store (else Conflict: the write is not acknowledged), with
    ``same_key`` also the same key (completions), and ``conditions`` must hold. ``content_type``
    None or empty keeps the type the media has (one declared at a presigned upload), and a media
    that has none gets DEFAULT_CONTENT_TYPE, as a base64 upload does. ``reason`` is the history
    row's change reason (e.g. "ingest: <path>"). Concurrent writers
    of new bytes are ordered by their switches: the last switch wins, as with S3 PUTs. After the
    commit the superseded object is removed. Every replica of the media becomes STALE in the same
    transaction (the replication worker rewrites them). The new size is charged to the media's usage
    (QuotaExceeded when it does not fit). The caller removes ``key`` when this raises.
    """
    failpoints.hit("content.before_switch")
    with transaction.atomic():
        locked = media_locked(pk=media.pk)
        current = locked[0] if locked else None
        if current is None:
            raise Conflict(f"media '{media.pid}' was deleted while its bytes were stored")
        if same_key and current.store_key == key and current.store_status == StoreStatus.READY:
            return current  # completed by a concurrent request meanwhile
        if current.store_config_id != media.store_config_id or (
            same_key and current.store_key != media.store_key
        ):
            raise Conflict(f"media '{media.pid}' was moved or changed while its bytes were stored; try again")
        check_hold(current, "given other bytes")
        conditions.check(current)
        before = {name: getattr(current, name) for name in BYTE_FIELDS}
        counted_before = counted(current)
        old_key = current.store_key
        current.store_key = key
        current.store_status = StoreStatus.READY
        current.size, current.checksum, current.etag = size, checksum, etag
        current.verified_at, current.verify_ok, current.verify_error = None, None, ""  # new bytes: unchecked
        current.content_type = content_type or current.content_type or DEFAULT_CONTENT_TYPE
        current._history_user = user
        if reason:
            current._change_reason = reason  # django-simple-history's way, as _history_user
        current.save()
        warnings = charge_change(current, counted_before, user=user)  # QuotaExceeded: nothing switched
        changed = [name for name in BYTE_FIELDS if getattr(current, name) != before[name]]
        Replica.objects.mark_stale(current.pk)  # no copy of the old bytes stays GOOD
        record([event_for(current, EventType.BYTES_STORED, user=user, changed=changed), *warnings])
    failpoints.hit("content.after_switch")
    if old_key != key:
        discard(current.store_config.backend(), old_key)
    return current


# ---------------------------------------------------------------------------------------------
# Upload


def upload_base64(item: MediaIn, data: bytes, *, content_type: str, user) -> Media:
    """Create a media together with its bytes: both are stored, or neither. The new media's key
    is a fresh UUID, so the bytes can be written before the row exists. (A size the client
    declared is held to ``data`` by ``content.uploads.upload``, for new and existing media alike.)"""
    with prepared_media([item], user=user, name_items=False) as [media]:
        precheck_bytes(media, len(data), new=True)
        backend = media.store_config.backend()
        backend.put(media.store_key, data)
        metrics.BYTES_UPLOADED.inc(len(data))
        checksum = checksum_label(hashlib.sha256(data))
        return insert_ready(
            media, backend, size=len(data), checksum=checksum, content_type=content_type, user=user
        )


def upload_stream(
    item: MediaIn, stream: BinaryIO, *, content_type: str, size: int | None = None, user, reason: str = ""
) -> Media:
    """Create a media together with the bytes ``stream.read(n)`` yields (constant memory): both
    are stored, or neither. ``size`` is a hint for the backend. An error raised by the stream
    propagates after the backend removed what it had written (``Backend.put_stream``), so a caller
    may abort a transfer by making its stream raise. ``reason``: the history row's change reason."""
    clean_content_type(content_type)
    with prepared_media([item], user=user, name_items=False) as [media]:
        precheck_bytes(media, size, new=True)
        backend = write_new(media, stream, size=size, content_type=content_type)
        return insert_written(media, backend, user=user, reason=reason)


def write_new(
    media: Media, stream: BinaryIO, *, size: int | None, content_type: str, backend: Backend | None = None
) -> Backend:
    """Phase one of ``upload_stream``: what ``stream`` yields stored durably under the prepared
    (unsaved) media's fresh key, hashed on the way, and described on the media (``mark_ready``).
    Returns the backend written to: ``backend`` when given (the media's store's, built once by a
    caller storing many), else a new one. A failed write leaves nothing under the key
    (``Backend.put_stream``)."""
    backend = backend or media.store_config.backend()
    reader = HashingReader(stream)
    backend.put_stream(media.store_key, reader, size)
    mark_ready(media, backend, size=reader.size, checksum=reader.checksum, content_type=content_type)
    return backend


def mark_ready(media: Media, backend: Backend, *, size: int, checksum: str, content_type: str) -> None:
    """Describe, on a prepared (unsaved) media, the bytes stored under its key: READY, their size,
    checksum, the store's ETag and the content type (``DEFAULT_CONTENT_TYPE`` for none)."""
    media.store_status = StoreStatus.READY
    media.size, media.checksum = size, checksum
    media.etag = backend.etag(media.store_key) or ""
    media.content_type = content_type or DEFAULT_CONTENT_TYPE


def insert_ready(
    media: Media, backend: Backend, *, size: int, checksum: str, content_type: str, user, reason: str = ""
) -> Media:
    """Insert a prepared (unsaved) media as READY with the bytes already stored under its key;
    when the insert fails the bytes are removed and the error raised (no row claims them)."""
    mark_ready(media, backend, size=size, checksum=checksum, content_type=content_type)
    return insert_written(media, backend, user=user, reason=reason)


def insert_written(media: Media, backend: Backend, *, user, reason: str = "") -> Media:
    """Insert a prepared media that ``mark_ready`` described; when the insert fails the bytes are
    removed and the error raised (no row claims them)."""
    try:
        media_insert([media], user=user, reason=reason)
    except Exception as exc:
        discard_after(exc, media, backend, media.store_key)
        raise
    return media


def upload_pending(
    item: MediaIn, *, content_type: str, size: int | None = None, user
) -> tuple[Media, str | None]:
    """Create a PENDING media whose bytes come later, and where the store can presign, a URL the
    client PUTs them to (None elsewhere: the bytes come with a second upload, as base64, or with
    ``PUT /api/media/{pid}/content``).

    ``size`` is what the client declared it will upload: it is signed into the URL and kept as the
    PENDING media's size, which the completion then holds the bytes to. A missing bucket is a
    StorageError before anything is created (a store configuration made for it included)."""
    with prepared_media([item], user=user, name_items=False) as [media]:
        media.content_type = content_type
        media.size = size
        url = presign_put(media, content_type)
        media_insert([media], user=user)
        return media, url


def presign_put(media: Media, content_type: str) -> str | None:
    """A presigned PUT URL for the PENDING media's key (its declared size signed in), or None for
    a store that cannot presign."""
    backend = media.store_config.backend()
    if not backend.supports_presign:
        return None
    return backend.presigned_put(
        media.store_key, settings.MEDIASTORE_PRESIGN_SECONDS, content_type or None, size=media.size
    )


def put_content(
    pid: str,
    stream: BinaryIO,
    *,
    content_type: str,
    size: int | None,
    user,
    conditions: Preconditions = NO_CONDITIONS,
    reason: str = "",
) -> Media:
    """Stream a request body into a fresh object of the media's store and switch the media to it
    (replacing bytes it had). ``size`` is the body's length when the request declared one.
    ``conditions`` are checked before the body is read and again at the switch (412). ``reason``:
    the history row's change reason. The bytes are not counted in ``metrics.BYTES_UPLOADED``: the
    caller that received them from a client does (a tus upload counted them as its PATCHes came)."""
    clean_content_type(content_type or "", "Content-Type")
    media = media_get(pid)
    check_hold(media, "given other bytes")  # before the body is read; switch_bytes checks again
    conditions.check(media)
    precheck_bytes(media, size)
    backend = media.store_config.backend()
    key = fresh_key(media.store_key)
    reader = HashingReader(stream)
    backend.put_stream(key, reader, size)
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
            reason=reason,
        )
    except Exception as exc:
        discard_after(exc, media, backend, key)
        raise


def complete(media: Media, *, user) -> Media:
    """READY media as they are; a PENDING media whose object now exists becomes READY (size and
    checksum read from the store); otherwise Conflict: nothing was uploaded. A PENDING media with a
    size (declared at a presigned upload) becomes READY only when the object has exactly that size;
    otherwise Conflict and it stays PENDING (an empty object from a mistaken POST included).

    In a store with presigned uploads the object is first copied to a fresh key, and the media is
    completed with the copy: the presigned URL's key is never the served key, so a PUT through the
    URL after completion cannot change the bytes clients get (it leaves an unreferenced object
    that ``collect_orphans`` finds). The uploaded object is removed once the media points at its
    copy.
    """
    if media.store_status == StoreStatus.READY:
        return media
    backend = media.store_config.backend()
    key = media.store_key
    try:
        if backend.supports_presign:
            key = fresh_key(media.store_key)
            backend.copy(media.store_key, key)
        size, checksum = hash_object(backend, key)
        if media.size is not None and size != media.size:
            raise Conflict(
                f"the object uploaded for media '{media.pid}' has {size} bytes, but {media.size} were "
                "declared; it stays PENDING: PUT the right bytes to the presigned URL (or with "
                "PUT /api/media/{pid}/content) and complete again"
            )
        return switch_bytes(
            media,
            key=key,
            size=size,
            checksum=checksum,
            etag=backend.etag(key) or "",
            content_type=None,
            user=user,
            same_key=True,
        )
    except ObjectNotFound:
        raise Conflict(f"the bytes of media '{media.pid}' were never stored") from None
    except Conflict:
        if key != media.store_key:
            discard(backend, key)
        current = Media.objects.select_related("store_config__s3cfg").filter(pk=media.pk).first()
        if current is not None and current.store_status == StoreStatus.READY:
            return current  # completed (or replaced) by a concurrent request meanwhile
        raise
    except Exception as exc:
        if key != media.store_key:
            discard_after(exc, media, backend, key)
        raise
