"""Resumable uploads (tus 1.0): creating them, receiving their bytes, completing and removing them.

Where the bytes wait: every PATCH appends what it receives to the upload's staging file under
``MEDIASTORE_TUS_DIR`` (``<id>.part``) and fsyncs it before the new offset is committed to the
database, so an offset a client is told is always on disk. For stores that take parts (S3), the
staging file is sent as the next part of the upload's multipart upload whenever it holds a part's
worth (``part_size``, at least S3's 5 MiB minimum) and then emptied: the server's disk holds at
most a part (plus the PATCH being received) per upload. For every other store the staging file is
the whole upload and is streamed into the store once the last byte has arrived.

A PATCH cut short (the client went away, the body stopped arriving) keeps the bytes that arrived
and advances the offset by them (the tus protocol allows it): the client's HEAD then says where to
resume. A PATCH with ``Upload-Checksum`` is all or nothing: a mismatch (460) or a cut keeps none of
its bytes.

At each PATCH's start the staging file is cut back to what the database says it holds, so bytes
written by a PATCH whose commit never happened (a killed worker) are dropped, never counted twice.

One PATCH at a time per upload: a PATCH takes the upload's lease (a conditional UPDATE of
``lease_until``, which never waits for another transaction's row lock) and renews it while bytes
come; a second PATCH meanwhile is 409. A lease left by a killed worker lapses after
``LEASE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from content.services import (
    DEFAULT_CONTENT_TYPE,
    Preconditions,
    discard_after,
    fresh_key,
    hash_object,
    insert_ready,
    put_content,
    switch_bytes,
    upload_stream,
)
from media.lifecycle import check_hold, not_expired_q
from media.models import Media
from media.rules import clean_content_type
from media.schemas import MediaIn
from media.selectors import media_get
from media.services import prepared_media
from media.usage import precheck_bytes
from mediastore import metrics
from mediastore.durable import fsync_directory, make_directories
from mediastore.errors import Conflict, InsufficientStorage, MediastoreError, StorageError
from stores.backends.bucket import part_size_for
from tus import digest
from tus.headers import CHECKSUMS, TusError
from tus.models import TusUpload

log = logging.getLogger(__name__)

PIECE = 1 << 20  # bytes read from a request body (and written) at a time
# How long a PATCH holds its upload without renewing (a PATCH renews it every third of this while
# bytes come, so only a killed worker's lease ever runs out).
LEASE_SECONDS = 2 * settings.MEDIASTORE_BODY_TIMEOUT_S + 60


def max_size() -> int:
    return settings.MEDIASTORE_TUS_MAX_SIZE_GB << 30


def staging_path(upload_id: str) -> Path:
    return Path(settings.MEDIASTORE_TUS_DIR) / f"{upload_id}.part"


def new_expiry() -> datetime:
    return timezone.now() + timedelta(hours=settings.MEDIASTORE_TUS_EXPIRY_HOURS)


# ---------------------------------------------------------------------------------------------
# Creation


def upload_create(
    *,
    user,
    length: int | None,
    metadata_header: str,
    item: MediaIn | None,
    pid: str,
    etag: str,
    content_type: str,
) -> TusUpload:
    """A new upload of ``length`` bytes (None: declared later) that creates the media ``item``
    (or, when ``item`` is None, replaces the bytes of media ``pid`` if they still have ``etag``).

    Everything is checked now, before a byte is sent: the media's rules and pattern checks (422),
    a pid already taken (409), the replaced media's existence (404) and ETag (412), the size (413).
    For an S3 store the multipart upload is begun (502 when the store fails)."""
    if length is not None and length > max_size():
        raise TusError(
            413, f"Upload-Length {length} is more than the {max_size()} bytes allowed (Tus-Max-Size)"
        )
    clean_content_type(content_type, "Upload-Metadata 'content_type'")
    open_uploads = TusUpload.objects.filter(user=user, media_pid="", expires__gt=timezone.now())
    if open_uploads.count() >= settings.MEDIASTORE_TUS_MAX_OPEN:
        raise TusError(
            429,
            f"you have {settings.MEDIASTORE_TUS_MAX_OPEN} unfinished uploads, as many as one user may have "
            "(MEDIASTORE_TUS_MAX_OPEN): finish or terminate (DELETE) one first",
        )
    with prepared_media([] if item is None else [item], user=user, name_items=False) as prepared:
        # A store configuration made for ``item`` is deleted again when anything below fails.
        if item is None:
            media = media_get(pid)
            check_hold(media, "given other bytes")  # refused before any byte is sent (423)
            Preconditions(if_match=etag or None).check(media)
            precheck_bytes(media, length)
            store, key, mediadata = media.store_config, fresh_key(media.store_key), {"pid": media.pid}
        else:
            [media] = prepared
            _check_pid_free(media.pid)
            precheck_bytes(media, length, new=True)
            store, key = media.store_config, media.store_key
            # Only what was given: an absent expires_at is the store's default_ttl, a null one never.
            mediadata = item.model_dump(mode="json", exclude_unset=True) | {"pid": media.pid}
        upload = TusUpload(
            id=secrets.token_hex(16),
            user=user,
            expires=new_expiry(),
            length=length,
            metadata_header=metadata_header,
            mediadata=mediadata,
            content_type=content_type,
            replace=item is None,
            if_match=etag,
            store_config=store,
            store_key=key,
        )
        backend = store.backend()
        _disk(make_directories, settings.MEDIASTORE_TUS_DIR)
        if not backend.supports_multipart:
            upload.save()
            return upload
        upload.part_size = part_size_for(length if length is not None else max_size())
        upload.multipart_id = backend.multipart_start(key)
        if digest.available():
            upload.sha256_state = digest.ResumableSha256().state
        try:
            upload.save()
        except Exception:
            with contextlib.suppress(StorageError):
                backend.multipart_abort(key, upload.multipart_id)
            raise
        return upload


def _check_pid_free(pid: str) -> None:
    """409 for a new media's pid that a media has, or that another unfinished upload will create
    (checked again when the upload completes: the media's insert is the final word). An expired
    media has no pid any more: the completion retires it (``media.services.media_insert``)."""
    if Media.objects.filter(not_expired_q(timezone.now()), pid=pid).exists():
        raise Conflict(f"media '{pid}' exists already")
    claimed = TusUpload.objects.filter(replace=False, media_pid="", expires__gt=timezone.now())
    if claimed.filter(mediadata__pid=pid).exists():
        raise Conflict(
            f"another unfinished upload will create media '{pid}'; finish or terminate it, "
            "or choose another pid"
        )


def upload_find(upload_id: str, *, user) -> TusUpload:
    """The live upload ``upload_id`` of ``user``; 404 for another user's, an expired or unknown one."""
    found = (
        TusUpload.objects.select_related("store_config__s3cfg")
        .filter(pk=upload_id[:32], user=user, expires__gt=timezone.now())
        .first()
    )
    if found is None:
        raise TusError(404, f"upload '{upload_id[:40]}' not found (never created, expired or terminated)")
    return found


# ---------------------------------------------------------------------------------------------
# The lease: one PATCH (or DELETE) at a time


class Lease:
    """The right to change one upload, held until ``release`` (renewed by ``renew_if_due``)."""

    def __init__(self, upload_id: str, *, user) -> None:
        self.upload_id = upload_id[:32]
        self.token = secrets.token_hex(16)
        now = timezone.now()
        taken = (
            TusUpload.objects.filter(pk=self.upload_id, user=user, expires__gt=now)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(lease_until=now + timedelta(seconds=LEASE_SECONDS), lease_token=self.token)
        )
        if not taken:
            upload_find(upload_id, user=user)  # 404 when it is not there at all
            raise TusError(409, f"upload '{self.upload_id}' is locked: another request is sending its bytes")
        self.renewed = time.monotonic()

    def mine(self) -> Q:
        return Q(pk=self.upload_id, lease_token=self.token)

    def renew_if_due(self) -> None:
        if time.monotonic() - self.renewed < LEASE_SECONDS / 3:
            return
        until = timezone.now() + timedelta(seconds=LEASE_SECONDS)
        if not TusUpload.objects.filter(self.mine()).update(lease_until=until):
            raise TusError(409, f"upload '{self.upload_id}' was taken over by another request")
        self.renewed = time.monotonic()

    def save(self, upload: TusUpload, *fields: str) -> None:
        """Write ``fields`` of ``upload`` while this lease holds it; 409 when it lapsed."""
        values = {name: getattr(upload, name) for name in fields}
        if not TusUpload.objects.filter(self.mine()).update(**values):
            raise TusError(409, f"upload '{self.upload_id}' was taken over by another request")

    def release(self) -> None:
        TusUpload.objects.filter(self.mine()).update(lease_until=None, lease_token="")


class LeasedReader:
    """``read(n)`` of ``stream`` that keeps the lease while a long completion reads it."""

    def __init__(self, stream: BinaryIO, lease: Lease) -> None:
        self.stream = stream
        self.lease = lease

    def read(self, size: int = -1) -> bytes:
        self.lease.renew_if_due()
        return self.stream.read(size)


# ---------------------------------------------------------------------------------------------
# PATCH


def upload_patch(
    upload_id: str,
    *,
    user,
    offset: int,
    length: int | None,
    checksum: tuple[str, bytes] | None,
    body: BinaryIO,
    body_length: int | None,
) -> TusUpload:
    """Append ``body`` at ``offset`` (which must be the upload's offset: else 409); ``length``
    declares a deferred length. When the last byte is there, the media is created (or its bytes
    replaced). Returns the upload as it now is."""
    lease = Lease(upload_id, user=user)
    try:
        upload = upload_find(upload_id, user=user)
        if offset != upload.offset:
            raise TusError(
                409,
                f"Upload-Offset {offset} does not match the upload's offset {upload.offset}: ask with "
                "HEAD and send from there",
                {"Upload-Offset": str(upload.offset)},
            )
        if length is not None:
            if upload.length is not None and length != upload.length:
                raise TusError(400, f"Upload-Length is {upload.length} already; it cannot change")
            if length < upload.offset:
                raise TusError(400, f"Upload-Length {length} is less than the bytes already received")
            if length > max_size():
                raise TusError(413, f"Upload-Length {length} is more than the {max_size()} bytes allowed")
            if upload.length is None:
                upload.length = length
                lease.save(upload, "length")
        if upload.done:
            if body_length:
                raise TusError(400, "the upload is complete; it takes no more bytes")
            return upload
        if body_length is not None and upload.length is not None and offset + body_length > upload.length:
            raise TusError(
                413, f"{body_length} bytes at offset {offset} go past the Upload-Length {upload.length}"
            )
        if body_length is not None and upload.length is None and offset + body_length > max_size():
            raise TusError(
                413,
                f"{body_length} bytes at offset {offset} go past the {max_size()} bytes an upload may have "
                "(Tus-Max-Size)",
            )
        _receive(upload, lease, body, checksum)
        if upload.length is not None and upload.offset == upload.length:
            _complete(upload, lease, user=user)
        return upload
    finally:
        lease.release()


def _receive(upload: TusUpload, lease: Lease, body: BinaryIO, checksum: tuple[str, bytes] | None) -> None:
    """Append what ``body`` yields to the staging file and commit the new offset (see the module
    for what is kept of a body cut short or failing its checksum)."""
    backend = upload.store_config.backend()
    flush_parts = backend.supports_multipart and checksum is None
    running = digest.ResumableSha256(bytes(upload.sha256_state)) if upload.sha256_state else None
    check = CHECKSUMS[checksum[0]]() if checksum else None
    # A deferred length is bounded by Tus-Max-Size: bytes past it are never written.
    limit = (max_size() if upload.length is None else upload.length) - upload.offset
    path = staging_path(upload.id)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise _disk_error(exc) from None
    try:
        staged = upload.offset - upload.flushed
        _disk(os.ftruncate, fd, staged)
        os.lseek(fd, staged, os.SEEK_SET)
        received = 0  # since the last commit
        failure: MediastoreError | None = None
        while received < limit:
            try:
                piece = body.read(min(PIECE, limit - received))
            except MediastoreError as exc:  # the body broke off or stopped arriving
                failure = exc
                break
            if not piece:
                break
            _write(fd, piece)
            received += len(piece)
            if running is not None:
                running.update(piece)
            if check is not None:
                check.update(piece)
            lease.renew_if_due()
            if flush_parts and upload.offset + received - upload.flushed >= upload.part_size:
                _commit(upload, lease, fd, received, running)
                limit -= received
                received = 0
                _flush(upload, lease, backend, fd)
        if failure is None and received == limit and body.read(1):
            end = (
                f"the Upload-Length {upload.length}"
                if upload.length is not None
                else f"the {max_size()} bytes an upload may have (Tus-Max-Size)"
            )
            failure = TusError(
                413,
                f"the body goes past {end}; the bytes before that were kept",
                {"Upload-Offset": str(upload.offset + received)},
            )
        mismatch = check is not None and not hmac.compare_digest(check.digest(), checksum[1])
        if check is not None and (failure is not None or mismatch):
            _disk(os.ftruncate, fd, upload.offset - upload.flushed)  # none of this PATCH is kept
            if failure is not None:
                raise failure
            raise TusError(
                460,
                f"Upload-Checksum ({checksum[0]}) does not match the {received} bytes received; none of them "
                f"were kept, the offset is still {upload.offset}",
            )
        _commit(upload, lease, fd, received, running)
        if backend.supports_multipart and upload.offset - upload.flushed >= upload.part_size:
            _flush(upload, lease, backend, fd)
        if isinstance(failure, TusError) and failure.status_code == 413:
            raise failure
        if failure is not None:
            raise TusError(
                failure.status_code,
                f"the request body broke off ({type(failure).__name__}); the bytes that arrived were kept: "
                f"the upload's offset is now {upload.offset}, send the rest from there",
                {"Upload-Offset": str(upload.offset)},
            )
    finally:
        os.close(fd)


def _write(fd: int, piece: bytes) -> None:
    view = memoryview(piece)
    while view:
        view = view[_disk(os.write, fd, view) :]


def _disk(call, *args):
    try:
        return call(*args)
    except OSError as exc:
        raise _disk_error(exc) from None


def _disk_error(exc: OSError) -> StorageError:
    log.warning("tus staging directory %s: %s", settings.MEDIASTORE_TUS_DIR, exc)
    if exc.errno == 28:  # ENOSPC
        return InsufficientStorage(
            "the disk of resumable uploads (MEDIASTORE_TUS_DIR) is full; try again later"
        )
    return StorageError("the staging area of resumable uploads (MEDIASTORE_TUS_DIR) failed; try again later")


def _commit(
    upload: TusUpload, lease: Lease, fd: int, received: int, running: digest.ResumableSha256 | None
) -> None:
    """Make the ``received`` bytes durable, then count them: the offset and the running SHA-256.

    When the staging file held no committed bytes before (it may have just been created, or
    re-created after a flush emptied it and a crash lost it), its directory is fsynced too, so
    that its name survives a power cut as well as its bytes."""
    if not received:
        return
    _disk(os.fsync, fd)
    if upload.offset == upload.flushed:
        _disk(fsync_directory, settings.MEDIASTORE_TUS_DIR)
    upload.offset += received
    upload.expires = new_expiry()
    fields = ["offset", "expires"]
    if running is not None:
        upload.sha256_state = running.state
        fields.append("sha256_state")
    lease.save(upload, *fields)
    metrics.BYTES_UPLOADED.inc(received)


def _flush(upload: TusUpload, lease: Lease, backend, fd: int) -> None:
    """Send the staging file as the multipart upload's next part and empty it."""
    size = upload.offset - upload.flushed
    number = len(upload.parts) + 1
    with open(staging_path(upload.id), "rb") as staged:
        etag = backend.multipart_part(upload.store_key, upload.multipart_id, number, staged, size)
    upload.parts = [*upload.parts, [number, etag]]
    upload.flushed = upload.offset
    lease.save(upload, "parts", "flushed")
    _disk(os.ftruncate, fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)


# ---------------------------------------------------------------------------------------------
# Completion


def _complete(upload: TusUpload, lease: Lease, *, user) -> None:
    """All bytes are there: create the media READY (or switch its bytes), with history and the
    outbox event, then drop the staging file. The upload stays (``media_pid`` set, answering HEAD)
    until it expires."""
    backend = upload.store_config.backend()
    reason = f"tus upload {upload.id}"
    content_type = upload.content_type
    if backend.supports_multipart:
        media = _complete_parts(upload, lease, backend, content_type, reason, user=user)
    else:
        with open(staging_path(upload.id), "rb") as staged:
            stream = LeasedReader(staged, lease)
            if upload.replace:
                media = put_content(
                    upload.mediadata["pid"],
                    stream,
                    content_type=content_type or None,
                    size=upload.length,
                    user=user,
                    conditions=Preconditions(if_match=upload.if_match or None),
                    reason=reason,
                )
            else:
                media = upload_stream(
                    MediaIn(**upload.mediadata),
                    stream,
                    content_type=content_type or DEFAULT_CONTENT_TYPE,
                    size=upload.length,
                    user=user,
                    reason=reason,
                )
    upload.media_pid = media.pid
    lease.save(upload, "media_pid")
    with contextlib.suppress(FileNotFoundError):
        staging_path(upload.id).unlink()


def _complete_parts(upload: TusUpload, lease: Lease, backend, content_type: str, reason: str, *, user):
    """Complete the multipart upload and point the media at it. What can refuse the media (a pid
    taken meanwhile, an ETag that changed) is checked first, while the upload can still wait for a
    retry; once the parts are joined a failure removes the object and the upload (it is then 404)."""
    conditions = Preconditions(if_match=upload.if_match or None)
    key = upload.store_key
    with prepared_media([] if upload.replace else [MediaIn(**upload.mediadata)], user=user) as prepared:
        if upload.replace:
            media = media_get(upload.mediadata["pid"])
            check_hold(media, "given other bytes")  # before the parts are joined: the upload can wait
            conditions.check(media)
            if media.store_config_id != upload.store_config_id:
                raise Conflict(
                    f"media '{media.pid}' was moved to another store during the upload; upload again"
                )
        else:
            [media] = prepared
            media.store_key = key
        if upload.offset > upload.flushed or not upload.parts:
            _flush_last(upload, lease, backend)
        backend.multipart_complete(key, upload.multipart_id, [(n, etag) for n, etag in upload.parts])
        try:
            if upload.sha256_state:
                checksum = "sha256:" + digest.ResumableSha256(bytes(upload.sha256_state)).hexdigest()
            else:
                _, checksum = hash_object(backend, key)
            if upload.replace:
                return switch_bytes(
                    media,
                    key=key,
                    size=upload.length,
                    checksum=checksum,
                    etag=backend.etag(key) or "",
                    content_type=content_type or None,
                    user=user,
                    conditions=conditions,
                    reason=reason,
                )
            return insert_ready(
                media,
                backend,
                size=upload.length,
                checksum=checksum,
                content_type=content_type or DEFAULT_CONTENT_TYPE,
                user=user,
                reason=reason,
            )
        except Exception as exc:
            discard_after(exc, media, backend, key)
            TusUpload.objects.filter(lease.mine()).delete()
            raise


def _flush_last(upload: TusUpload, lease: Lease, backend) -> None:
    path = staging_path(upload.id)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        _disk(os.ftruncate, fd, upload.offset - upload.flushed)
        _flush(upload, lease, backend, fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Termination and expiry


def upload_terminate(upload_id: str, *, user) -> None:
    """Remove the upload and every byte it received (DELETE; 409 while a PATCH is sending)."""
    lease = Lease(upload_id, user=user)
    try:
        _remove(upload_find(upload_id, user=user))
    finally:
        lease.release()  # a no-op once the row is gone


def _remove(upload: TusUpload) -> None:
    """Drop the staging file and (unless the media has its bytes) the multipart upload, then the row."""
    if upload.multipart_id and not upload.done:
        upload.store_config.backend().multipart_abort(upload.store_key, upload.multipart_id)
    with contextlib.suppress(FileNotFoundError):
        staging_path(upload.id).unlink()
    upload.delete()


def expire_uploads(*, now: datetime | None = None) -> tuple[int, int]:
    """Remove the uploads past their expiry that no request holds, and staging files no upload
    owns (older than the expiry). Returns (uploads removed, stray files removed). A store that
    fails is logged and its upload kept for the next run."""
    now = now or timezone.now()
    removed = strays = 0
    expired = TusUpload.objects.select_related("store_config__s3cfg").filter(expires__lte=now)
    for upload in expired.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now)):
        try:
            _remove(upload)
        except StorageError as exc:
            log.warning("expired upload %s kept: %s", upload.id, exc.message)
            continue
        removed += 1
    directory = Path(settings.MEDIASTORE_TUS_DIR)
    if directory.is_dir():
        known = set(TusUpload.objects.values_list("id", flat=True))
        oldest = now.timestamp() - settings.MEDIASTORE_TUS_EXPIRY_HOURS * 3600
        for path in directory.glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                if path.stem not in known and path.stat().st_mtime < oldest:
                    path.unlink()
                    strays += 1
    return removed, strays
