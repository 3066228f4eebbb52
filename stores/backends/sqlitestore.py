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
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mediastore.durable import fsync_directory, make_directories
from stores.backends.base import (
    ChunkIterator,
    ObjectNotFound,
    StoredObject,
    range_end,
    ranged_chunks,
    read_chunks,
)
from stores.backends.local import LocalStore, out_of_space

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


class SqliteStore(LocalStore):
    """Objects as rows in the SQLite file ``path``."""

    type_name = "SqliteStore"
    kind = "SQLite store"
    SIDECAR_SUFFIXES = (".lock", "-wal", "-shm", "-journal")
    failures = (sqlite3.Error, OSError)
    SPOOL_IN_MEMORY = SPOOL_IN_MEMORY

    # -- plumbing -----------------------------------------------------------------------------

    def _reason(self, err: BaseException) -> str:
        return err.strerror if isinstance(err, OSError) and err.strerror else str(err)

    def _is_full(self, err: BaseException) -> bool:
        return out_of_space(err) or getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """``_failing``, and a missing table becomes ``_NoTable`` (every key is absent)."""
        with self._failing(action, key):
            try:
                yield
            except sqlite3.OperationalError as err:
                if str(err).startswith("no such table"):
                    raise _NoTable from None
                raise

    def _connect(self, *, create: bool) -> sqlite3.Connection:
        """A connection in autocommit mode (transactions are explicit).

        Without ``create`` the file must exist (``mode=rw``), so reads never leave empty files.
        ``check_same_thread`` is off because a streaming response may be consumed by another
        thread than the one that built it; each connection still has one user at a time.
        """
        needs_set_up = create and (self.path not in _READY_FILES or not self.path.is_file())
        if create:
            make_directories(self.path.parent)
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
            # SQLite syncs the directory when it creates its WAL file, not the database's own name.
            fsync_directory(self.path.parent)
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

    def _put(self, key: str, data: bytes) -> None:
        with self._errors("write", key):
            connection = self._connect(create=True)
            try:
                connection.execute(_UPSERT.format(value="?"), (key, bytes(data)))
            finally:
                connection.close()

    def _put_stream(self, key: str, stream: BinaryIO, size: int | None) -> int:
        """Spools the stream (small ones in memory) to learn its size, then inserts a zero-filled
        blob of that size and fills it through ``blobopen`` in one transaction, so memory stays
        bounded and a failure leaves the old row as it was."""
        with self._spooled(key, stream) as (spool, size), self._errors("write", key):
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

    def _delete(self, key: str) -> None:
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

    def _column(self, key: str, column: str) -> object:
        """``column`` (an SQL expression of ``data``) of the row of ``key``; ObjectNotFound."""
        with self._reading(key) as connection:
            row = connection.execute(f"SELECT {column} FROM objects WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise ObjectNotFound(key)
        return row[0]

    def _get(self, key: str) -> bytes:
        return bytes(self._column(key, "data"))

    def _size(self, key: str) -> int:
        return int(self._column(key, "length(data)"))

    def list_objects(self) -> Iterator[StoredObject]:
        try:
            with self._reading("*") as connection:
                rows = connection.execute("SELECT key, length(data) FROM objects").fetchall()
        except ObjectNotFound:
            return
        for key, size in rows:
            yield StoredObject(key, int(size), None)

    def _exists(self, key: str) -> bool:
        try:
            with self._reading(key) as connection:
                row = connection.execute("SELECT 1 FROM objects WHERE key = ?", (key,)).fetchone()
        except ObjectNotFound:
            return False
        return row is not None

    def _iter_range(self, key: str, start: int, length: int | None, chunk_size: int) -> Iterator[bytes]:
        """Streams through a blob handle inside one read transaction: the object stays the one
        that existed when this was called, even if it is overwritten while the client reads."""
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

        def release() -> None:
            with contextlib.suppress(sqlite3.Error):
                blob.close()
            connection.close()  # ends the read transaction

        chunks = ranged_chunks(blob, start, end, chunk_size, lambda: self._errors("read", key))
        return ChunkIterator(chunks, release)
