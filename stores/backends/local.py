"""LocalStore: what the stores at a path below the storage root share (filesystem and hashdir
directories, zip and SQLite files): their place on disk, the bucket rules for it, one way of
turning the medium's errors into a sentence that names the bucket and never the server's path,
and spooling a client's stream to learn its size before the write.
"""

from __future__ import annotations

import contextlib
import errno
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, ClassVar

from mediastore.durable import make_directories
from mediastore.errors import InsufficientStorage, RuleViolation, StorageError
from stores.backends.base import Backend, S3Params, read_chunks, write_counted
from stores.paths import normalize_store_path, resolve_store_path


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


class LocalStore(Backend):
    """A store at ``path`` inside the storage root (a directory when ``is_directory``, else a file
    with ``SIDECAR_SUFFIXES`` files beside it).

    ``label`` names the store in error messages (the configured bucket, not the server path).
    Subclasses list the exceptions of their medium in ``failures`` and may refine ``_reason``.
    """

    in_storage_root = True
    is_directory: ClassVar[bool] = False
    # Files kept next to the store's own file, named by appending these to its name.
    SIDECAR_SUFFIXES: ClassVar[tuple[str, ...]] = ()
    failures: ClassVar[tuple[type[BaseException], ...]] = (OSError,)
    # A stream is spooled in memory up to this size, then in a file beside the store (0: a file).
    SPOOL_IN_MEMORY: ClassVar[int] = 0

    def __init__(self, path: Path, *, label: str | None = None) -> None:
        self.path = Path(path)
        self.label = label or self.path.name

    @classmethod
    def normalize_bucket(cls, bucket: str) -> str:
        """A relative path below the storage root (see ``stores.paths.normalize_store_path``)."""
        return normalize_store_path(bucket)

    @classmethod
    def from_config(cls, bucket: str, s3: S3Params | None) -> Backend:
        return cls(resolve_store_path(bucket), label=bucket)

    def local_paths(self) -> tuple[Path, ...]:
        return (self.path, *(self.path.with_name(self.path.name + s) for s in self.SIDECAR_SUFFIXES))

    def check_place(self) -> None:
        check_local_place(self.path, self.label, self.kind, directory=self.is_directory)

    # -- errors -----------------------------------------------------------------------------------

    def _reason(self, err: BaseException) -> str:
        """The failure in a few words. strerror carries no path ("No space left on device"), so
        nothing about the server leaks."""
        if isinstance(err, OSError):
            return err.strerror or type(err).__name__
        return type(err).__name__

    def _is_full(self, err: BaseException) -> bool:
        return out_of_space(err)

    def _error(self, action: str, key: str, err: BaseException) -> StorageError:
        return store_failure(self.kind, self.label, action, key, self._reason(err), full=self._is_full(err))

    @contextlib.contextmanager
    def _failing(self, action: str, key: str) -> Iterator[None]:
        """Translate the medium's errors (``failures``) into this store's StorageError."""
        try:
            yield
        except self.failures as err:
            raise self._error(action, key, err) from None

    # -- streams ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _spooled(self, key: str, stream: BinaryIO) -> Iterator[tuple[IO[bytes], int]]:
        """The whole stream in a temporary file beside the store, rewound, and its size. Media
        that must know the size before writing (a blob, a zip member) take it from here; a client
        that fails half-way leaves nothing behind and holds no lock of the store meanwhile."""
        with self._failing("write", key):
            make_directories(self.path.parent)
            if self.SPOOL_IN_MEMORY:
                spool: IO[bytes] = tempfile.SpooledTemporaryFile(
                    max_size=self.SPOOL_IN_MEMORY, dir=self.path.parent
                )
            else:
                spool = tempfile.TemporaryFile(dir=self.path.parent)
        with spool:
            size = write_counted(read_chunks(stream), spool, lambda: self._failing("write", key))
            with self._failing("write", key):
                spool.seek(0)
            yield spool, size
