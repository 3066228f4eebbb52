"""The one small interface every storage backend implements, and the pieces backends share.

A backend stores opaque bytes under string keys. It translates its own failures at the boundary:
a missing key becomes ``ObjectNotFound`` (callers decide whether that is a 404 or a 409), anything
else becomes ``mediastore.errors.StorageError`` with a sentence that is safe to show a client.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ClassVar, NamedTuple, Protocol

from mediastore.errors import RuleViolation
from stores.paths import validate_store_key

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


@dataclass(frozen=True)
class S3Params:
    """Where an S3 endpoint is and the credentials to use there (``Backend.from_config`` gets them
    for the store types that use S3). Empty keys: boto3's standard credential chain (``AWS_*``
    environment, shared profiles, instance or container roles) supplies them."""

    url: str
    access_key: str
    secret_key: str = field(repr=False)  # kept out of logs and tracebacks
    region: str = "us-east-1"
    addressing_style: str = "path"  # "auto", "path" or "virtual", as botocore takes it


class MultipartUpload(NamedTuple):
    """An unfinished multipart upload as a store lists it."""

    key: str
    upload_id: str
    initiated: float  # POSIX time


class ListingNotSupported(Exception):
    """The backend cannot enumerate its objects (RAM stores)."""


class PresignNotSupported(Exception):
    """The backend cannot hand out presigned URLs (only S3 can)."""


def name_bucket(bucket: str) -> str:
    """A bucket that is a plain name: no NUL; a leading ``/`` is dropped."""
    if "\x00" in bucket:
        raise RuleViolation("bucket must not contain NUL characters")
    return bucket.lstrip("/")


class Backend(abc.ABC):
    """Bytes under keys, template-method style (as Django's ``Storage.save`` calls ``_save``).

    The public methods check the key (``validate_key``) and the range once, here, and then call
    the hook a subclass implements: ``_put``, ``_put_stream``, ``_get``, ``_iter_range``,
    ``_size``, ``_delete`` (abstract), and ``_exists``, ``_etag``, ``_presigned_put``,
    ``_presigned_get`` where the medium has them. So the same key is accepted or refused
    (``RuleViolation``) whatever the store type, and no hook sees an unchecked key.

    Each concrete backend declares its store type (``type_name``, the value of
    ``StoreConfig.type`` and of the API's ``type``) and its bucket rules (``normalize_bucket``,
    ``from_config``); the registry in ``stores.backends`` derives the type choices from them.
    """

    type_name: ClassVar[str] = ""  # empty: not a store type of its own (a base or a variant)
    kind: ClassVar[str] = "store"  # how error sentences name the medium
    uses_s3: ClassVar[bool] = False  # whether a configuration needs an S3 endpoint and credentials
    in_storage_root: ClassVar[bool] = False  # a directory or file below MEDIASTORE_STORAGE_ROOT
    supports_presign: ClassVar[bool] = False
    # Whether bytes can be sent in parts that the store joins into one object (S3 multipart
    # uploads): the ``multipart_*`` methods. Resumable uploads stream into such stores part by part.
    supports_multipart: ClassVar[bool] = False

    # -- bucket rules (class level: no backend exists yet) ----------------------------------------

    @classmethod
    def normalize_bucket(cls, bucket: str) -> str:
        """The canonical form of a configuration's ``bucket``; RuleViolation when it is unusable.
        By default a name (``name_bucket``)."""
        return name_bucket(bucket)

    @classmethod
    @abc.abstractmethod
    def from_config(cls, bucket: str, s3: S3Params | None) -> Backend:
        """The backend for a configuration of this type (``s3`` is given exactly when ``uses_s3``).
        Cheap: no disk or network I/O."""

    # -- keys -------------------------------------------------------------------------------------

    def validate_key(self, key: str) -> None:
        """Refuse (RuleViolation) a key this store cannot hold; every public method calls it."""
        validate_store_key(key)

    # -- the interface ----------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        """Create or overwrite the object under ``key``."""
        self.validate_key(key)
        self._put(key, data)

    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> int:
        """Store everything ``stream.read(n)`` yields until ``b""``; return the number of bytes.

        ``size``, when the caller knows it (a request's Content-Length), lets a backend plan the
        write (S3 sizes its multipart parts by it); it is a hint, not a check.

        Memory stays bounded where the medium allows. If anything fails (the stream too), no
        partial object is left under ``key``: an existing object stays as it was. Errors raised by
        the stream itself propagate unchanged.
        """
        self.validate_key(key)
        return self._put_stream(key, stream, size)

    def get(self, key: str) -> bytes:
        """The whole object. Raises ObjectNotFound."""
        self.validate_key(key)
        return self._get(key)

    def iter_bytes(
        self, key: str, start: int = 0, length: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Bytes ``[start, start + length)`` (to the end when ``length`` is None) in chunks.

        Raises ObjectNotFound when called, before the iterator is returned, so a caller can answer
        before streaming starts. A range past the end yields nothing. The iterator has ``close()``,
        which releases files and connections even if iteration never started. A negative start or
        length, or a chunk size below 1, is a programming error (ValueError).
        """
        check_range(start, length, chunk_size)
        self.validate_key(key)
        return self._iter_range(key, start, length, chunk_size)

    def copy(self, source: str, target: str) -> None:
        """Store a copy of the object under ``source`` as ``target`` (replacing what was there).
        Raises ObjectNotFound when ``source`` is missing; a failure leaves no partial ``target``.
        Stores that can copy inside themselves (S3) send no bytes through this server."""
        self.validate_key(source)
        self.validate_key(target)
        self._copy(source, target)

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        self.validate_key(key)
        return self._exists(key)

    def size(self, key: str) -> int:
        """Size of the object in bytes. Raises ObjectNotFound."""
        self.validate_key(key)
        return self._size(key)

    def delete(self, key: str) -> None:
        """Remove the object; an absent key is not an error."""
        self.validate_key(key)
        self._delete(key)

    def etag(self, key: str) -> str | None:
        """An opaque version tag of the object where the medium has one (S3), else None."""
        self.validate_key(key)
        return self._etag(key)

    def presigned_put(
        self, key: str, expires: int, content_type: str | None = None, size: int | None = None
    ) -> str:
        """A URL a client can PUT the object's bytes to for ``expires`` seconds; with ``size``, a
        PUT of any other length is refused by the store (where it checks signed headers).
        PresignNotSupported where the medium has no such URLs."""
        if not self.supports_presign:
            raise PresignNotSupported(f"{type(self).__name__} cannot presign uploads")
        self.validate_key(key)
        return self._presigned_put(key, expires, content_type, size)

    def presigned_get(self, key: str, expires: int) -> str:
        """A URL a client can GET the object's bytes from for ``expires`` seconds."""
        if not self.supports_presign:
            raise PresignNotSupported(f"{type(self).__name__} cannot presign downloads")
        self.validate_key(key)
        return self._presigned_get(key, expires)

    # -- multipart uploads (where ``supports_multipart``) ------------------------------------------

    def multipart_start(self, key: str) -> str:
        """Begin an object under ``key`` sent in parts; return the upload's id."""
        self.validate_key(key)
        return self._multipart_start(key)

    def multipart_part(self, key: str, upload_id: str, number: int, stream: BinaryIO, size: int) -> str:
        """Store part ``number`` (1, 2, ...) of ``size`` bytes read from ``stream``; return its
        ETag, which ``multipart_complete`` needs. Every part but the last must have at least the
        store's minimum size (S3: 5 MiB)."""
        self.validate_key(key)
        return self._multipart_part(key, upload_id, number, stream, size)

    def multipart_complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Join the ``(number, etag)`` parts into the object under ``key``."""
        self.validate_key(key)
        self._multipart_complete(key, upload_id, parts)

    def multipart_abort(self, key: str, upload_id: str) -> None:
        """Drop the upload and every part stored for it; an upload already gone is no error."""
        self.validate_key(key)
        self._multipart_abort(key, upload_id)

    def multipart_part_url(self, key: str, upload_id: str, number: int, expires: int, size: int) -> str:
        """A URL a client can PUT part ``number`` (of exactly ``size`` bytes) to for ``expires`` seconds."""
        self.validate_key(key)
        return self._multipart_part_url(key, upload_id, number, expires, size)

    def multipart_list(self, key: str | None = None) -> list[MultipartUpload]:
        """The unfinished multipart uploads of the store (only those of ``key`` when given)."""
        if key is not None:
            self.validate_key(key)
        return self._multipart_list(key)

    def _multipart_start(self, key: str) -> str:
        raise NotImplementedError

    def _multipart_part_url(self, key: str, upload_id: str, number: int, expires: int, size: int) -> str:
        raise NotImplementedError

    def _multipart_list(self, key: str | None) -> list[MultipartUpload]:
        raise NotImplementedError

    def _multipart_part(self, key: str, upload_id: str, number: int, stream: BinaryIO, size: int) -> str:
        raise NotImplementedError

    def _multipart_complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        raise NotImplementedError

    def _multipart_abort(self, key: str, upload_id: str) -> None:
        raise NotImplementedError

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

    # -- what subclasses implement (keys and ranges are checked already) --------------------------

    @abc.abstractmethod
    def _put(self, key: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def _put_stream(self, key: str, stream: BinaryIO, size: int | None) -> int: ...

    @abc.abstractmethod
    def _get(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def _iter_range(self, key: str, start: int, length: int | None, chunk_size: int) -> Iterator[bytes]: ...

    @abc.abstractmethod
    def _size(self, key: str) -> int: ...

    @abc.abstractmethod
    def _delete(self, key: str) -> None: ...

    def _copy(self, source: str, target: str) -> None:
        chunks = self._iter_range(source, 0, None, DEFAULT_CHUNK_SIZE)
        try:
            self._put_stream(target, ChunkReader(chunks), None)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _exists(self, key: str) -> bool:
        try:
            self._size(key)
        except ObjectNotFound:
            return False
        return True

    def _etag(self, key: str) -> str | None:
        return None

    def _presigned_put(self, key: str, expires: int, content_type: str | None, size: int | None) -> str:
        raise NotImplementedError

    def _presigned_get(self, key: str, expires: int) -> str:
        raise NotImplementedError


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


def read_chunks(stream: BinaryIO, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    """``stream.read(chunk_size)`` until it returns ``b""``."""
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            return
        yield chunk


Failures = Callable[[], AbstractContextManager[object]]


def write_counted(chunks: Iterable[bytes], out: BinaryIO, failures: Failures) -> int:
    """Write every chunk to ``out``; return how many bytes. ``failures()`` wraps each write (it
    translates the medium's errors); errors of the chunks' source, a client's stream, propagate
    unchanged."""
    written = 0
    for chunk in chunks:
        with failures():
            out.write(chunk)
        written += len(chunk)
    return written


class Seekable(Protocol):
    def seek(self, offset: int, /) -> object: ...

    def read(self, size: int, /) -> bytes: ...


def ranged_chunks(
    reader: Seekable,
    start: int,
    end: int,
    chunk_size: int,
    failures: Failures,
    short: Callable[[], Exception] | None = None,
) -> Iterator[bytes]:
    """Bytes ``[start, end)`` of ``reader`` (a file, a blob, a zip member) in chunks of at most
    ``chunk_size``. ``failures()`` wraps each seek and read. When the reader ends early (the
    object was truncated under us) the iteration stops, or raises ``short()`` when given."""
    if start >= end:
        return
    with failures():
        reader.seek(start)
    position = start
    while position < end:
        with failures():
            chunk = reader.read(min(chunk_size, end - position))
        if not chunk:
            if short is None:
                return
            raise short()
        position += len(chunk)
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
