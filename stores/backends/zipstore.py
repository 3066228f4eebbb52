"""ZipStore: every object a member of one zip file.

Concurrency: every read and every modification of the archive happens while holding a
threading lock (threads of this process) and an ``fcntl.flock`` on the sidecar ``<zip>.lock``
(other processes, e.g. gunicorn workers). New keys are appended in place; overwriting or deleting
a key rewrites the archive without the old member into a temporary file that replaces the archive
(``os.replace``), so the old bytes are really gone. Every write ends with an fsync of the archive,
and a replace or a first write also with one of its directory, so a power cut after a write has
returned loses neither the member nor the archive's name. A first write also builds the archive in a
temporary file, and ``put_stream`` spools the client's stream to a temporary file before taking
the lock: a failing client can neither leave a partial member behind nor hold the lock while it
dawdles.

``iter_bytes`` locates the member under the lock and then streams without it. That is safe:
appends only write after the existing members (over the old central directory) and rewrites
create a new file, so the bytes of a located member never change under an open handle.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import shutil
import struct
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mediastore.durable import fsync_directory, make_directories
from mediastore.errors import RuleViolation
from stores.backends.base import ChunkIterator, ObjectNotFound, StoredObject, range_end, ranged_chunks
from stores.backends.local import LocalStore
from stores.paths import validate_store_key

# Members are stored uncompressed: data products are mostly compressed already (images,
# compressed scientific formats), so deflating costs CPU for little gain, and a stored member can
# be read from any offset directly, which ranged downloads need (zipfile's own seek in a member
# reads forward from the start).
COMPRESSION = zipfile.ZIP_STORED
COPY_CHUNK = 1 << 20

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (skipped fields), name length, extra length
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
_ARCHIVE_ERRORS = (OSError, EOFError, struct.error, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error)

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(str(path), threading.Lock())


class ZipStore(LocalStore):
    """Objects as members of the zip file ``path`` (created on the first write)."""

    type_name = "ZipStore"
    kind = "zip store"
    SIDECAR_SUFFIXES = (".lock",)
    failures = _ARCHIVE_ERRORS

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    # -- plumbing -----------------------------------------------------------------------------

    def validate_key(self, key: str) -> None:
        validate_store_key(key)
        if key.endswith("/"):
            raise RuleViolation(f"ZipStore keys must not end with '/' (a zip directory entry): {key!r}")

    def _reason(self, err: BaseException) -> str:
        if isinstance(err, zipfile.BadZipFile | EOFError | struct.error | zlib.error):
            return "the archive is damaged or not a zip file"
        if isinstance(err, OSError):
            return err.strerror or type(err).__name__
        return "the archive is too large"

    @contextlib.contextmanager
    def _locked(self, action: str, key: str) -> Iterator[None]:
        """Exclusive access to the archive for this thread and this process."""
        with _thread_lock(self.path):
            with self._failing(action, key):
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                with self._failing(action, key):
                    fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def _archive_exists(self) -> bool:
        """Whether there is an archive; an empty file (never written by us) counts as none."""
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def _member(self, archive: zipfile.ZipFile, key: str) -> zipfile.ZipInfo:
        try:
            return archive.getinfo(key)
        except KeyError:
            raise ObjectNotFound(key) from None

    # -- writing ------------------------------------------------------------------------------

    @staticmethod
    def _add_member(archive: zipfile.ZipFile, key: str, source: BinaryIO, size: int) -> None:
        info = zipfile.ZipInfo(key, date_time=time.localtime()[:6])
        info.compress_type = COMPRESSION
        info.external_attr = 0o644 << 16
        info.file_size = size  # lets zipfile choose ZIP64 headers up front for big members
        with archive.open(info, "w") as member:
            shutil.copyfileobj(source, member, COPY_CHUNK)

    def _rewrite(self, drop: str, add: tuple[BinaryIO, int] | None) -> None:
        """Replace the archive by a copy without member ``drop``, plus ``add`` under that key."""
        fd, tmp_name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        committed = False
        try:
            with os.fdopen(fd, "w+b") as out:
                with zipfile.ZipFile(out, "w", compression=COMPRESSION) as target:
                    if self._archive_exists():
                        with zipfile.ZipFile(self.path) as current:
                            for info in current.infolist():
                                if info.filename != drop:
                                    self._copy_member(current, info, target)
                    if add is not None:
                        self._add_member(target, drop, *add)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, self.path)
            committed = True
            fsync_directory(self.path.parent)
        finally:
            if not committed:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)

    @staticmethod
    def _copy_member(source: zipfile.ZipFile, info: zipfile.ZipInfo, target: zipfile.ZipFile) -> None:
        copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
        copy.compress_type = info.compress_type
        copy.external_attr = info.external_attr
        copy.comment = info.comment
        copy.file_size = info.file_size
        with source.open(info) as reader, target.open(copy, "w") as writer:
            shutil.copyfileobj(reader, writer, COPY_CHUNK)

    def _append(self, key: str, source: BinaryIO, size: int, end_of_members: int) -> None:
        """Add a member in place. Appending writes over the archive's central directory (which
        starts at ``end_of_members``); if that fails part way (a full disk), the archive is cut
        back and its old end written again, so no partial member is left and the others stay."""
        with open(self.path, "rb") as handle:
            handle.seek(end_of_members)
            old_end = handle.read()
        try:
            with open(self.path, "r+b") as handle:
                with zipfile.ZipFile(handle, "a", compression=COMPRESSION) as archive:
                    self._add_member(archive, key, source, size)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            with open(self.path, "r+b") as handle:
                handle.truncate(end_of_members)
                handle.seek(end_of_members)
                handle.write(old_end)
                handle.flush()
                os.fsync(handle.fileno())
            raise

    def _write(self, key: str, source: BinaryIO, size: int) -> None:
        with self._failing("write", key):
            make_directories(self.path.parent)
        with self._locked("write", key), self._failing("write", key):
            if self._archive_exists():
                # Read-only first: "a" mode would quietly append a new archive to a damaged one.
                with zipfile.ZipFile(self.path) as current:
                    present = key in current.NameToInfo
                    end_of_members = current.start_dir
                if not present:
                    self._append(key, source, size, end_of_members)
                    return
            self._rewrite(key, (source, size))

    def _put(self, key: str, data: bytes) -> None:
        self._write(key, io.BytesIO(data), len(data))

    def _put_stream(self, key: str, stream: BinaryIO, size: int | None) -> int:
        with self._spooled(key, stream) as (spool, size):
            self._write(key, spool, size)
        return size

    def _delete(self, key: str) -> None:
        if not self._archive_exists():
            return
        with self._locked("delete", key), self._failing("delete", key):
            if not self._archive_exists():
                return
            with zipfile.ZipFile(self.path) as current:
                present = key in current.NameToInfo
            if present:
                self._rewrite(key, None)

    # -- reading ------------------------------------------------------------------------------

    def _info(self, key: str) -> zipfile.ZipInfo:
        if not self._archive_exists():
            raise ObjectNotFound(key)
        with self._locked("read", key), self._failing("read", key):
            with zipfile.ZipFile(self.path) as archive:
                return self._member(archive, key)

    def _get(self, key: str) -> bytes:
        if not self._archive_exists():
            raise ObjectNotFound(key)
        with self._locked("read", key), self._failing("read", key):
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(self._member(archive, key))

    def _size(self, key: str) -> int:
        return self._info(key).file_size

    def _iter_range(self, key: str, start: int, length: int | None, chunk_size: int) -> Iterator[bytes]:
        if not self._archive_exists():
            raise ObjectNotFound(key)
        with self._locked("read", key), self._failing("read", key):
            archive = zipfile.ZipFile(self.path)
            try:
                info = self._member(archive, key)
                end = range_end(start, length, info.file_size)
                if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
                    reader: BinaryIO | _MemberView = self._open_stored(info)
                else:  # compressed or encrypted members (archives not written by us): seek reads forward
                    reader = archive.open(info)
            finally:
                archive.close()  # an open member keeps the file itself open
        chunks = ranged_chunks(
            reader,
            start,
            end,
            chunk_size,
            lambda: self._failing("read", key),
            lambda: self._error("read", key, EOFError()),
        )
        return ChunkIterator(chunks, reader.close)

    def _open_stored(self, info: zipfile.ZipInfo) -> _MemberView:
        """The archive file positioned so that offset 0 of the returned view is the member's data."""
        handle = open(self.path, "rb")  # closed by the returned view
        committed = False
        try:
            handle.seek(info.header_offset)
            signature, name_length, extra_length = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
            if signature != _LOCAL_HEADER_SIGNATURE:
                raise zipfile.BadZipFile("bad local file header")
            view = _MemberView(handle, info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
            committed = True
            return view
        finally:
            if not committed:
                handle.close()

    def list_objects(self) -> Iterator[StoredObject]:
        if not self._archive_exists():
            return
        with self._locked("list", "*"), self._failing("list", "*"):
            with zipfile.ZipFile(self.path) as archive:
                infos = [info for info in archive.infolist() if not info.is_dir()]
        for info in infos:
            yield StoredObject(info.filename, info.file_size, time.mktime((*info.date_time, 0, 0, -1)))


class _MemberView:
    """A file handle whose offset 0 is the start of a stored member's data."""

    def __init__(self, handle: BinaryIO, data_offset: int) -> None:
        self._handle = handle
        self._data_offset = data_offset

    def seek(self, offset: int) -> None:
        self._handle.seek(self._data_offset + offset)

    def read(self, size: int) -> bytes:
        return self._handle.read(size)

    def close(self) -> None:
        self._handle.close()
