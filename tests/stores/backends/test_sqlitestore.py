"""SqliteStore: rows of one SQLite file."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from mediastore.errors import StorageError
from stores.backends import (
    ObjectNotFound,
    build_backend,
)
from tests.stores.backends.conftest import payload

# -- sqlite -------------------------------------------------------------------------------------


def test_sqlite_store_keeps_rows_in_the_objects_table(storage_root: Path) -> None:
    backend = build_backend("SqliteStore", "db/store.sqlite3")
    backend.put("a", b"alpha")
    backend.put_stream("b", io.BytesIO(b"beta" * 1000))
    backend.put("a", b"alpha 2")

    connection = sqlite3.connect(storage_root / "db" / "store.sqlite3")
    try:
        rows = connection.execute("SELECT key, data FROM objects ORDER BY key").fetchall()
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        columns = [
            (row[1], row[2], row[3], row[5]) for row in connection.execute("PRAGMA table_info(objects)")
        ]
    finally:
        connection.close()
    assert rows == [("a", b"alpha 2"), ("b", b"beta" * 1000)]
    assert mode == "wal"
    assert columns == [("key", "TEXT", 0, 1), ("data", "BLOB", 1, 0)]


def test_sqlite_store_reads_never_create_the_file(storage_root: Path) -> None:
    backend = build_backend("SqliteStore", "db/never.sqlite3")

    assert backend.exists("k") is False
    with pytest.raises(ObjectNotFound):
        backend.get("k")
    backend.delete("k")

    assert not (storage_root / "db").exists()


def test_sqlite_store_streams_a_snapshot_while_the_object_is_overwritten(storage_root: Path) -> None:
    backend = build_backend("SqliteStore", "store.sqlite3")
    old = payload(200_000, seed=1)
    backend.put("k", old)

    chunks = backend.iter_bytes("k", chunk_size=50_000)
    first = next(chunks)
    backend.put("k", payload(200_000, seed=2))
    rest = b"".join(chunks)

    assert first + rest == old
    assert backend.get("k") == payload(200_000, seed=2)


def test_sqlite_store_reports_a_file_that_is_not_a_database(storage_root: Path) -> None:
    (storage_root / "bad.sqlite3").write_bytes(b"definitely not sqlite" * 100)
    backend = build_backend("SqliteStore", "bad.sqlite3")

    with pytest.raises(StorageError, match="SQLite store 'bad.sqlite3' could not read object 'k'"):
        backend.get("k")
