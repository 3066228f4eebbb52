"""SqliteStore: objects as rows of one SQLite file, ``objects(key TEXT PRIMARY KEY, data BLOB NOT NULL)``.

One connection per call (so any thread may use the store), a 30 s busy timeout, WAL journal (readers
never block the writer). The file and table are created on the first write; reads never create
them. Large objects are streamed in and out through incremental blob I/O (``blobopen``).

SQLite limits one value to SQLITE_MAX_LENGTH (1 000 000 000 bytes in a default build); bigger
objects fail with a StorageError.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mediastore.errors import StorageError
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

BUSY_TIMEOUT = 30
SPOOL_IN_MEMORY = 8 << 20
# Files this process has set up (WAL mode, table). Setting up a new file from several connections at
# once can fail with "database is locked" (journal_mode changes do not wait on the busy timeout),
# so set-up runs once per file, under a thread lock and a file lock for other processes.
_READY_FILES: set[Path] = set()
_SETUP_LOCK = threading.Lock()

_SCHEMA = "CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, data BLOB NOT NULL)"
_UPSERT = (
    "INSERT INTO objects (key, data) VALUES (?, {value}) ON CONFLICT (key) DO UPDATE SET data = excluded.data"
)


class _NoTable(Exception):
    """The file exists but holds no ``objects`` table yet: every key is absent."""


class SqliteStore(Backend):
    """Objects as rows in the SQLite file ``db_path``.

    ``label`` names the store in error messages (the configured bucket, not the server path).
    """

    kind = "SQLite store"
    # Files kept next to the store's own file, named by appending these to its name.
    SIDECAR_SUFFIXES: tuple[str, ...] = (".lock", "-wal", "-shm", "-journal")

    def __init__(self, db_path: Path, *, label: str | None = None) -> None:
        self.path = Path(db_path)
        self.label = label or self.path.name

    def local_paths(self) -> tuple[Path, ...]:
        return (self.path, *(self.path.with_name(self.path.name + s) for s in self.SIDECAR_SUFFIXES))

    def check_place(self) -> None:
        check_local_place(self.path, self.label, self.kind, directory=False)

    # -- plumbing -----------------------------------------------------------------------------

    def _error(self, action: str, key: str, err: Exception) -> StorageError:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        full = out_of_space(err) or getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        return store_failure(self.kind, self.label, action, key, reason, full=full)

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as err:
            if str(err).startswith("no such table"):
                raise _NoTable from None
            raise self._error(action, key, err) from None
        except (sqlite3.Error, OSError) as err:
            raise self._error(action, key, err) from None

    def _connect(self, *, create: bool) -> sqlite3.Connection:
        """A connection in autocommit mode (transactions are explicit).

        Without ``create`` the file must exist (``mode=rw``), so reads never leave empty files.
        ``check_same_thread`` is off because a streaming response may be consumed by another
        thread than the one that built it; each connection still has one user at a time.
        """
        needs_set_up = create and (self.path not in _READY_FILES or not self.path.is_file())
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target, uri = str(self.path), False
        else:
            target, uri = self.path.absolute().as_uri() + "?mode=rw", True
        connection = sqlite3.connect(
            target, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False, uri=uri
        )
        if needs_set_up:
            try:
                self._set_up(connection)
            except (sqlite3.Error, OSError):
                connection.close()
                raise
        return connection

    def _set_up(self, connection: sqlite3.Connection) -> None:
        with _SETUP_LOCK, open(f"{self.path}.lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)
            _READY_FILES.add(self.path)

    @contextlib.contextmanager
    def _reading(self, key: str) -> Iterator[sqlite3.Connection]:
        """A connection for reading; ObjectNotFound when there is no file or no table."""
        if not self.path.is_file():
            raise ObjectNotFound(key)
        try:
            with self._errors("read", key):
                connection = self._connect(create=False)
                try:
                    yield connection
                finally:
                    connection.close()
        except _NoTable:
            raise ObjectNotFound(key) from None

    # -- writing ------------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        validate_store_key(key)
        with self._errors("write", key):
            connection = self._connect(create=True)
            try:
                connection.execute(_UPSERT.format(value="?"), (key, bytes(data)))
            finally:
                connection.close()

    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> int:
        """Spools the stream to a temporary file (small ones in memory) to learn its size, then
        inserts a zero-filled blob of that size and fills it through ``blobopen`` in one
        transaction, so memory stays bounded and a failure leaves the old row as it was."""
        validate_store_key(key)
        with self._errors("write", key):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=self.path.parent) as spool:
            size = 0
            for chunk in read_chunks(stream):  # errors of a client's stream propagate unchanged
                with self._errors("write", key):
                    spool.write(chunk)
                size += len(chunk)
            with self._errors("write", key):
                spool.seek(0)
                connection = self._connect(create=True)
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    try:
                        connection.execute(_UPSERT.format(value="zeroblob(?)"), (key, size))
                        if size:
                            (rowid,) = connection.execute(
                                "SELECT rowid FROM objects WHERE key = ?", (key,)
                            ).fetchone()
                            with connection.blobopen("objects", "data", rowid) as blob:
                                for chunk in read_chunks(spool):
                                    blob.write(chunk)
                    except (sqlite3.Error, OSError):
                        if connection.in_transaction:  # SQLite may have rolled back already (disk full)
                            with contextlib.suppress(sqlite3.Error):
                                connection.execute("ROLLBACK")
                        raise
                    connection.execute("COMMIT")
                finally:
                    connection.close()
        return size

    def delete(self, key: str) -> None:
        validate_store_key(key)
        if not self.path.is_file():
            return
        try:
            with self._errors("delete", key):
                connection = self._connect(create=False)
                try:
                    connection.execute("DELETE FROM objects WHERE key = ?", (key,))
                finally:
                    connection.close()
        except _NoTable:
            return

    # -- reading ------------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        validate_store_key(key)
        with self._reading(key) as connection:
            row = connection.execute("SELECT data FROM objects WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise ObjectNotFound(key)
        return bytes(row[0])

    def size(self, key: str) -> int:
        validate_store_key(key)
        with self._reading(key) as connection:
            row = connection.execute("SELECT length(data) FROM objects WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise ObjectNotFound(key)
        return int(row[0])

    def list_objects(self) -> Iterator[StoredObject]:
        try:
            with self._reading("*") as connection:
                rows = connection.execute("SELECT key, length(data) FROM objects").fetchall()
        except ObjectNotFound:
            return
        for key, size in rows:
            yield StoredObject(key, int(size), None)

    def exists(self, key: str) -> bool:
        validate_store_key(key)
        try:
            with self._reading(key) as connection:
                row = connection.execute("SELECT 1 FROM objects WHERE key = ?", (key,)).fetchone()
        except ObjectNotFound:
            return False
        return row is not None

    def iter_bytes(
        self, key: str, start: int = 0, length: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Streams through a blob handle inside one read transaction: the object stays the one
        that existed when this was called, even if it is overwritten while the client reads."""
        check_range(start, length, chunk_size)
        validate_store_key(key)
        if not self.path.is_file():
            raise ObjectNotFound(key)
        try:
            with self._errors("read", key):
                connection = self._connect(create=False)
                opened = False
                try:
                    connection.execute("BEGIN")
                    row = connection.execute("SELECT rowid FROM objects WHERE key = ?", (key,)).fetchone()
                    if row is None:
                        raise ObjectNotFound(key)
                    blob = connection.blobopen("objects", "data", row[0], readonly=True)
                    opened = True
                finally:
                    if not opened:
                        connection.close()
        except _NoTable:
            raise ObjectNotFound(key) from None
        end = range_end(start, length, len(blob))

        def chunks() -> Iterator[bytes]:
            if start >= end:
                return
            position = start
            with self._errors("read", key):
                blob.seek(start)
            while position < end:
                with self._errors("read", key):
                    chunk = blob.read(min(chunk_size, end - position))
                if not chunk:
                    return
                position += len(chunk)
                yield chunk

        def release() -> None:
            with contextlib.suppress(sqlite3.Error):
                blob.close()
            connection.close()  # ends the read transaction

        return ChunkIterator(chunks(), release)
