"""The one small interface every storage backend implements.

A backend stores opaque bytes under string keys. It translates its own failures at the boundary:
a missing key becomes ``ObjectNotFound`` (callers decide whether that is a 404 or a 409), anything
else becomes ``mediastore.errors.StorageError`` with a sentence that is safe to show a client.
"""

from __future__ import annotations

import abc
import errno
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from mediastore.errors import InsufficientStorage, RuleViolation, StorageError

DEFAULT_CHUNK_SIZE = 1 << 20


class ObjectNotFound(Exception):
    """No object is stored under ``key``. Not an HTTP error: callers map it."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object stored under key {key!r}")
        self.key = key


class StoredObject(NamedTuple):
    """One object as a store lists it."""

    key: str
    size: int
    modified: float | None  # POSIX time of the last write; None where the medium keeps none


class ListingNotSupported(Exception):
    """The backend cannot enumerate its objects (RAM stores)."""


class PresignNotSupported(Exception):
    """The backend cannot hand out presigned URLs (only S3 can)."""


def store_failure(
    kind: str, label: str, action: str, key: str, reason: str, *, full: bool = False
) -> StorageError:
    """The one sentence local stores use for a failure; names the bucket, never the server path.
    ``full``: the failure was a full disk or quota, which is InsufficientStorage (507)."""
    if full:
        return InsufficientStorage(
            f"{kind} '{label}' could not {action} object '{key}': {reason}; the server's storage is full"
        )
    return StorageError(f"{kind} '{label}' could not {action} object '{key}': {reason}")


def out_of_space(err: BaseException) -> bool:
    """Whether an OS error says the disk or the user's quota is full."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def check_local_place(path: Path, label: str, kind: str, *, directory: bool) -> None:
    """Refuse a local store at ``path`` when something in the way is of the wrong kind: a file
    among its parent directories, or at ``path`` itself a file where a directory must be (or the
    other way round). Nothing there yet is fine: the first write creates it."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            raise RuleViolation(f"{kind} '{label}' cannot be created: a parent of its path is a file")
    if not path.exists():
        return
    if directory and not path.is_dir():
        raise RuleViolation(f"{kind} '{label}' cannot be created: its path is a file, not a directory")
    if not directory and not path.is_file():
        raise RuleViolation(f"{kind} '{label}' cannot be created: its path is a directory, not a file")


class Backend(abc.ABC):
    """Bytes under keys. Subclasses implement every abstract method.

    Keys are checked with ``stores.paths.validate_store_key`` by every backend, so the same key is
    accepted or refused (``RuleViolation``) whatever the store type.
    """

    supports_presign: bool = False

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Create or overwrite the object under ``key``."""

    @abc.abstractmethod
    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> int:
        """Store everything ``stream.read(n)`` yields until ``b""``; return the number of bytes.

        ``size``, when the caller knows it (a request's Content-Length), lets a backend plan the
        write (S3 sizes its multipart parts by it); it is a hint, not a check.

        Memory stays bounded where the medium allows. If anything fails (the stream too), no
        partial object is left under ``key``: an existing object stays as it was. Errors raised by
        the stream itself propagate unchanged.
        """

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object. Raises ObjectNotFound."""

    @abc.abstractmethod
    def iter_bytes(
        self, key: str, start: int = 0, length: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Bytes ``[start, start + length)`` (to the end when ``length`` is None) in chunks.

        Raises ObjectNotFound when called, before the iterator is returned, so a caller can answer
        before streaming starts. A range past the end yields nothing. The iterator has ``close()``,
        which releases files and connections even if iteration never started.
        """

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key`` (by default: whether ``size`` finds one)."""
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Size of the object in bytes. Raises ObjectNotFound."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; an absent key is not an error."""

    def list_objects(self) -> Iterator[StoredObject]:
        """Every object in the store, in no particular order (for audits such as
        ``collect_orphans``). Objects being written may or may not appear. Raises
        ListingNotSupported where the medium cannot enumerate."""
        raise ListingNotSupported(f"{type(self).__name__} cannot list its objects")

    def local_paths(self) -> tuple[Path, ...]:
        """What this store owns on the server's disk: first its directory or file, then the files
        it keeps beside it (a lock file, SQLite's journals). Empty for remote or in-memory stores.
        No two store configurations may share any of these, or have one inside another."""
        return ()

    def key_at(self, path: Path) -> str | None:
        """The key under which this store already holds the file at ``path``, or None when the
        file is no object of this store (outside its directory, a symlink, a temporary file, or a
        store that keeps no files). Lets ``manage.py ingest --in-place`` register existing files."""
        return None

    def check_place(self) -> None:
        """Refuse (RuleViolation) a store whose place on disk cannot hold it, e.g. a directory where
        a zip file must go. Called once, when the store configuration is created."""
        return None

    def etag(self, key: str) -> str | None:
        """An opaque version tag of the object where the medium has one (S3), else None."""
        return None

    def presigned_put(
        self, key: str, expires: int, content_type: str | None = None, size: int | None = None
    ) -> str:
        """A URL a client can PUT the object's bytes to for ``expires`` seconds; with ``size``, a
        PUT of any other length is refused by the store (where it checks signed headers)."""
        raise PresignNotSupported(f"{type(self).__name__} cannot presign uploads")

    def presigned_get(self, key: str, expires: int) -> str:
        """A URL a client can GET the object's bytes from for ``expires`` seconds."""
        raise PresignNotSupported(f"{type(self).__name__} cannot presign downloads")


def check_range(start: int, length: int | None, chunk_size: int) -> None:
    """Refuse nonsensical ranges; they are programming errors, not client input."""
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    if length is not None and length < 0:
        raise ValueError(f"length must be >= 0 or None, got {length}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, got {chunk_size}")


def range_end(start: int, length: int | None, size: int) -> int:
    """The exclusive end of ``[start, start + length)`` clipped to an object of ``size`` bytes.

    When it is not above ``start`` the range is empty.
    """
    return size if length is None else min(size, start + length)


def read_chunks(stream: BinaryIO, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    """``stream.read(chunk_size)`` until it returns ``b""``."""
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            return
        yield chunk


class ChunkIterator(Iterator[bytes]):
    """An iterator over chunks that owns a resource (file, connection, HTTP body).

    ``close()`` releases the resource whether or not iteration started, and iteration releases it
    when exhausted. A plain generator cannot do the former: closing a generator that never ran
    skips its ``finally``. Django's streaming responses call ``close()`` when they are done.
    """

    def __init__(self, chunks: Iterator[bytes], release: Callable[[], None]) -> None:
        self._chunks = chunks
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> ChunkIterator:
        return self

    def __next__(self) -> bytes:
        if self._release is None:
            raise StopIteration
        produced = False
        try:
            chunk = next(self._chunks)
            produced = True
            return chunk
        finally:
            if not produced:  # exhausted or failed: release now
                self.close()

    def close(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        try:
            close_chunks = getattr(self._chunks, "close", None)
            if close_chunks is not None:
                close_chunks()
        finally:
            release()
