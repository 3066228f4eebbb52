"""FilesystemStore: one file per key below a directory inside the storage root.

Keys may contain ``/`` (sub-directories). Every path goes through ``resolve_key_path``, which
refuses ``..``, absolute keys and symlinks that lead out of the store. Writes go to a temporary file
in the target directory, are fsynced, then renamed over the target: readers see the old object or
the new one, never half of one; then the directory is fsynced too (and the parent of any directory
created on the way), so the new name survives a power cut as well as the bytes do
(``mediastore.durable``). While a large object is written, the kernel is asked every
``WRITEBACK_STEP`` bytes to start writing back what came before (``_write_all``), so the disk
works while the next bytes are read and hashed and the closing fsync has little left to wait for.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from mediastore.durable import fsync_directory, make_directories
from mediastore.errors import RuleViolation
from stores.backends.base import (
    DEFAULT_CHUNK_SIZE,
    ChunkIterator,
    Failures,
    ObjectNotFound,
    StoredObject,
    range_end,
    ranged_chunks,
    read_chunks,
)
from stores.backends.local import LocalStore
from stores.paths import NameTooLong, resolve_key_path

TEMP_PREFIX = ".tmp-"
_MISSING = (FileNotFoundError, NotADirectoryError)
WRITEBACK_STEP = 32 << 20  # bytes written between two requests to start writing them back
_START_WRITEBACK = getattr(os, "POSIX_FADV_DONTNEED", None)  # None where the OS has no fadvise


# As tempfile.mkstemp opens its files: created here or not at all, never through a symlink.
_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_temp_numbers = itertools.count()


def _temp_random() -> str:
    return os.urandom(6).hex()


def _create_temp(directory: Path) -> tuple[int, str]:
    """A new file in ``directory``, open for writing and readable by its owner alone, as
    ``tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX)`` makes one, without its per-call work:
    (its descriptor, its path). Named by the process, a counter of its own and 48 random bits: a
    client may name a media's key itself (``PUT /api/media/update/storekeys``), so a name it could
    guess would let it write, delete or read another client's upload before the rename; a name
    already taken is passed over."""
    while True:
        unique = f"{os.getpid()}-{next(_temp_numbers)}-{_temp_random()}"
        name = os.path.join(directory, f"{TEMP_PREFIX}{unique}")
        try:
            return os.open(name, _TEMP_FLAGS, 0o600), name
        except FileExistsError:
            continue


def _write_all(fd: int, chunks: Iterable[bytes], failures: Failures) -> int:
    """Write every chunk to the open file ``fd`` (unbuffered: no copy on the way); return how many
    bytes. ``failures()`` wraps each write; errors of the chunks' source propagate unchanged.

    Every ``WRITEBACK_STEP`` bytes, ``posix_fadvise(DONTNEED)`` on what was written since the last
    time: on Linux it starts the writeback of those pages without waiting for it (and drops pages
    already clean), so a large object goes to disk while its next chunks are read and hashed
    instead of all at once in the closing fsync, which still makes it durable. A hint only: its
    failure is ignored.
    """
    written = kicked = 0
    for chunk in chunks:
        view = memoryview(chunk)
        with failures():
            while view:
                view = view[os.write(fd, view) :]
        written += len(chunk)
        if _START_WRITEBACK is not None and written - kicked >= WRITEBACK_STEP:
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, kicked, written - kicked, _START_WRITEBACK)
            kicked = written
    return written


class FilesystemStore(LocalStore):
    """Objects as files under ``directory`` (created on the first write)."""

    type_name = "FilesystemStore"
    kind = "filesystem store"
    is_directory = True
    # Whether names are made durable (directory fsync); not for a store that a reboot empties anyway.
    durable_names = True

    @property
    def directory(self) -> Path:
        return self.path

    def _path(self, key: str) -> Path:
        return resolve_key_path(self.directory, key)

    def _write(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        with self._failing("write", key):
            if self.durable_names:
                make_directories(path.parent)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = _create_temp(path.parent)
        committed = closed = False
        try:
            written = _write_all(fd, chunks, lambda: self._failing("write", key))
            with self._failing("write", key):
                os.fsync(fd)
                closed = True
                os.close(fd)
                self._commit(tmp_name, path)
                committed = True
                if self.durable_names:
                    fsync_directory(path.parent)
        finally:
            if not committed:
                if not closed:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
        return written

    def _commit(self, tmp_name: str, path: Path) -> None:
        """Move a complete temporary file into place in one step (readers see old or new)."""
        os.replace(tmp_name, path)

    def _open(self, key: str) -> BinaryIO:
        """An open regular file for ``key``; ObjectNotFound for anything else."""
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except _MISSING:
            raise ObjectNotFound(key) from None
        except OSError as err:
            raise self._error("read", key, err) from None
        try:
            is_file = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError as err:
            os.close(fd)
            raise self._error("read", key, err) from None
        if not is_file:  # a directory made by longer keys ("a" when "a/b" exists) is no object
            os.close(fd)
            raise ObjectNotFound(key)
        return os.fdopen(fd, "rb")

    def _put(self, key: str, data: bytes) -> None:
        # In pieces of a MiB (views, not copies), as a stream is written: one write(2) of a whole
        # 50 MiB base64 upload took 117 ms of its 300, the same bytes in pieces about half that
        # (docs/performance.md, "Base64 in JSON").
        view = memoryview(data)
        self._write(
            key, (view[at : at + DEFAULT_CHUNK_SIZE] for at in range(0, len(view), DEFAULT_CHUNK_SIZE))
        )

    def _put_stream(self, key: str, stream: BinaryIO, size: int | None) -> int:
        return self._write(key, read_chunks(stream))

    def _get(self, key: str) -> bytes:
        with self._open(key) as handle, self._failing("read", key):
            return handle.read()

    def _iter_range(self, key: str, start: int, length: int | None, chunk_size: int) -> Iterator[bytes]:
        handle = self._open(key)
        try:
            end = range_end(start, length, os.fstat(handle.fileno()).st_size)
        except OSError as err:
            handle.close()
            raise self._error("read", key, err) from None
        chunks = ranged_chunks(handle, start, end, chunk_size, lambda: self._failing("read", key))
        return ChunkIterator(chunks, handle.close)

    def _size(self, key: str) -> int:
        path = self._path(key)
        try:
            info = os.stat(path, follow_symlinks=False)
        except _MISSING:
            raise ObjectNotFound(key) from None
        except OSError as err:
            raise self._error("read", key, err) from None
        if not stat.S_ISREG(info.st_mode):
            raise ObjectNotFound(key)
        return info.st_size

    def _delete(self, key: str) -> None:
        try:
            path = self._path(key)
        except NameTooLong:
            return  # no file can have that name
        try:
            os.unlink(path)
        except (*_MISSING, IsADirectoryError):
            return
        except OSError as err:
            raise self._error("delete", key, err) from None

    def _key_of(self, path: Path) -> str | None:
        """The key whose object lives at ``path`` (None for files no key maps to)."""
        return path.relative_to(self.directory).as_posix()

    def key_at(self, path: Path) -> str | None:
        if os.path.islink(path):
            return None
        base = Path(os.path.realpath(self.directory))
        target = Path(os.path.realpath(path))
        if base not in target.parents or target.name.startswith(TEMP_PREFIX):
            return None
        key = self._key_of(self.directory / target.relative_to(base))
        if key is None:
            return None
        try:
            return key if self._path(key) == target else None
        except RuleViolation:
            return None

    def list_objects(self) -> Iterator[StoredObject]:
        if not self.directory.is_dir():
            return
        for root, _dirs, files in os.walk(self.directory):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    continue  # a write in progress, or one a crash interrupted
                path = Path(root, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue  # removed meanwhile
                key = self._key_of(path) if stat.S_ISREG(info.st_mode) else None
                if key is not None:
                    yield StoredObject(key, info.st_size, info.st_mtime)
