"""ZipStore: every object a member of one zip file.

Concurrency: every read and every modification of the archive happens while holding a
threading lock (threads of this process) and an ``fcntl.flock`` on the sidecar ``<zip>.lock``
(other processes, e.g. gunicorn workers). New keys are appended in place; overwriting or deleting
a key rewrites the archive without the old member into a temporary file that replaces the archive
(``os.replace``), so the old bytes are really gone. A first write also builds the archive in a
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

from mediastore.errors import RuleViolation, StorageError
from stores.backends.base import (
    DEFAULT_CHUNK_SIZE,
    Backend,
    ChunkIterator,
    ObjectNotFound,
    StoredObject,
    check_local_place,
    check_range,
    out_of_space,
    range_end,
    read_chunks,
    store_failure,
)
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


class ZipStore(Backend):
    """Objects as members of the zip file ``zip_path`` (created on the first write).

    ``label`` names the store in error messages (the configured bucket, not the server path).
    """

    kind = "zip store"
    # Files kept next to the store's own file, named by appending these to its name.
    SIDECAR_SUFFIXES: tuple[str, ...] = (".lock",)

    def __init__(self, zip_path: Path, *, label: str | None = None) -> None:
        self.path = Path(zip_path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.label = label or self.path.name

    def local_paths(self) -> tuple[Path, ...]:
        return (self.path, *(self.path.with_name(self.path.name + s) for s in self.SIDECAR_SUFFIXES))

    def check_place(self) -> None:
        check_local_place(self.path, self.label, self.kind, directory=False)

    # -- plumbing -----------------------------------------------------------------------------

    @staticmethod
    def _check_key(key: str) -> None:
        validate_store_key(key)
        if key.endswith("/"):
            raise RuleViolation(f"ZipStore keys must not end with '/' (a zip directory entry): {key!r}")

    def _error(self, action: str, key: str, err: Exception) -> StorageError:
        if isinstance(err, zipfile.BadZipFile | EOFError | struct.error | zlib.error):
            reason = "the archive is damaged or not a zip file"
        elif isinstance(err, OSError):
            reason = err.strerror or type(err).__name__
        else:
            reason = "the archive is too large"
        return store_failure(self.kind, self.label, action, key, reason, full=out_of_space(err))

    @contextlib.contextmanager
    def _archive_errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except _ARCHIVE_ERRORS as err:
            raise self._error(action, key, err) from None

    @contextlib.contextmanager
    def _locked(self, action: str, key: str) -> Iterator[None]:
        """Exclusive access to the archive for this thread and this process."""
        with _thread_lock(self.path):
            with self._archive_errors(action, key):
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                with self._archive_errors(action, key):
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
            with zipfile.ZipFile(self.path, "a", compression=COMPRESSION) as archive:
                self._add_member(archive, key, source, size)
        except BaseException:
            with open(self.path, "r+b") as handle:
                handle.truncate(end_of_members)
                handle.seek(end_of_members)
                handle.write(old_end)
                handle.flush()
                os.fsync(handle.fileno())
            raise

    def _write(self, key: str, source: BinaryIO, size: int) -> None:
        with self._archive_errors("write", key):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked("write", key), self._archive_errors("write", key):
            if self._archive_exists():
                # Read-only first: "a" mode would quietly append a new archive to a damaged one.
                with zipfile.ZipFile(self.path) as current:
                    present = key in current.NameToInfo
                    end_of_members = current.start_dir
                if not present:
                    self._append(key, source, size, end_of_members)
                    return
            self._rewrite(key, (source, size))

    def put(self, key: str, data: bytes) -> None:
        self._check_key(key)
        self._write(key, io.BytesIO(data), len(data))

    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> int:
        self._check_key(key)
        with self._archive_errors("write", key):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            spool = tempfile.TemporaryFile(dir=self.path.parent)
        with spool:
            size = 0
            for chunk in read_chunks(stream):  # errors of a client's stream propagate unchanged
                with self._archive_errors("write", key):
                    spool.write(chunk)
                size += len(chunk)
            with self._archive_errors("write", key):
                spool.seek(0)
            self._write(key, spool, size)
        return size

    def delete(self, key: str) -> None:
        self._check_key(key)
        if not self._archive_exists():
            return
        with self._locked("delete", key), self._archive_errors("delete", key):
            if not self._archive_exists():
                return
            with zipfile.ZipFile(self.path) as current:
                present = key in current.NameToInfo
            if present:
                self._rewrite(key, None)

    # -- reading ------------------------------------------------------------------------------

    def _info(self, key: str) -> zipfile.ZipInfo:
        self._check_key(key)
        if not self._archive_exists():
            raise ObjectNotFound(key)
        with self._locked("read", key), self._archive_errors("read", key):
            with zipfile.ZipFile(self.path) as archive:
                return self._member(archive, key)

    def get(self, key: str) -> bytes:
        self._check_key(key)
        if not self._archive_exists():
            raise ObjectNotFound(key)
        with self._locked("read", key), self._archive_errors("read", key):
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(self._member(archive, key))

    def size(self, key: str) -> int:
        return self._info(key).file_size

    def iter_bytes(
        self, key: str, start: int = 0, length: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        check_range(start, length, chunk_size)
        self._check_key(key)
        if not self._archive_exists():
            raise ObjectNotFound(key)
        with self._locked("read", key), self._archive_errors("read", key):
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

        def chunks() -> Iterator[bytes]:
            with self._archive_errors("read", key):
                reader.seek(start)
            position = start
            while position < end:
                with self._archive_errors("read", key):
                    chunk = reader.read(min(chunk_size, end - position))
                if not chunk:
                    raise self._error("read", key, EOFError())
                position += len(chunk)
                yield chunk

        return ChunkIterator(chunks(), reader.close)

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
        with self._locked("list", "*"), self._archive_errors("list", "*"):
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
