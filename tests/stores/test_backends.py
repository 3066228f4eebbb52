"""The storage backends, against real media: files, zip and SQLite files, and moto's S3 server."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import random
import sqlite3
import threading
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests

from mediastore.errors import RuleViolation, StorageError
from stores.backends import (
    STORE_TYPES,
    Backend,
    BucketStore,
    ObjectNotFound,
    PresignNotSupported,
    S3Params,
    ZipStore,
    build_backend,
)
from stores.backends.bucket import PART_SIZE, s3_client
from stores.backends.hashdir import encode_filename
from tests.support.ports import free_port
from tests.support.s3 import S3Server

MATRIX = (
    "DictStore",
    "DictStore+ttl",
    "FilesystemStore",
    "HashdirStore",
    "ZipStore",
    "SqliteStore",
    "BucketStore",
    "BucketStore+prefix",
)
LOCAL_BUCKETS = {
    "FilesystemStore": "files",
    "HashdirStore": "hashed",
    "ZipStore": "archives/store.zip",
    "SqliteStore": "db/store.sqlite3",
}
PATTERN = bytes(range(256)) * 40  # 10240 bytes, every offset recognisable modulo 256


def payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


class TrickleStream:
    """A client stream that hands out at most ``step`` bytes per read, then optionally fails."""

    def __init__(self, data: bytes, step: int = 65536, fail_after: int | None = None) -> None:
        self._data = io.BytesIO(data)
        self._step = step
        self._fail_after = fail_after
        self.delivered = 0

    def read(self, size: int = -1) -> bytes:
        if self._fail_after is not None and self.delivered >= self._fail_after:
            raise ConnectionResetError("client went away")
        amount = self._step if size is None or size < 0 else min(size, self._step)
        chunk = self._data.read(amount)
        self.delivered += len(chunk)
        return chunk


@pytest.fixture
def storage_root(settings, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    settings.MEDIASTORE_STORAGE_ROOT = str(root)
    return root


def s3_params(server: S3Server, secret_key: str | None = None, access_key: str | None = None) -> S3Params:
    return S3Params(
        url=server.url, access_key=access_key or server.access_key, secret_key=secret_key or server.secret_key
    )


@pytest.fixture
def ram_dir(settings, tmp_path: Path) -> Path:
    """The RAM store's directory for one test (the server default is a folder under /dev/shm)."""
    settings.MEDIASTORE_RAM_DIR = tmp_path / "ram"
    settings.MEDIASTORE_REDIS_URL = ""
    return tmp_path / "ram"


@pytest.fixture(params=MATRIX)
def backend(request, storage_root: Path) -> Backend:
    kind = request.param
    if kind.startswith("BucketStore"):
        server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        if kind.endswith("+prefix"):
            bucket = f"/{bucket}/some/prefix/"
        return build_backend("BucketStore", bucket, s3_params(server))
    if kind.startswith("DictStore"):
        request.getfixturevalue("ram_dir")
        if kind.endswith("+ttl"):  # long enough never to expire during a test: the expiry checks run
            request.getfixturevalue("settings").MEDIASTORE_RAM_TTL_SECONDS = 3600
        return build_backend("DictStore", f"namespace-{uuid.uuid4().hex}")
    return build_backend(kind, LOCAL_BUCKETS[kind])


# -- the matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "data"),
    [
        ("plain.txt", b"hello, world"),
        ("nested/dir/deep.bin", b"\x00\x01\x02 nested"),
        ("empty", b""),
        ("dir with spaces/ümlaut & co.txt", "ümlaut".encode()),
        ("big.bin", payload(3 << 20)),
    ],
)
def test_put_then_get_returns_the_same_bytes(backend: Backend, key: str, data: bytes) -> None:
    backend.put(key, data)

    assert backend.get(key) == data
    assert backend.exists(key) is True
    assert backend.size(key) == len(data)
    assert b"".join(backend.iter_bytes(key)) == data


def test_put_stream_stores_everything_and_returns_the_size(backend: Backend) -> None:
    data = payload(5 << 20, seed=11)
    stream = TrickleStream(data, step=100_000)

    written = backend.put_stream("streamed/object.bin", stream)

    assert written == len(data)
    assert stream.delivered == len(data)
    assert backend.get("streamed/object.bin") == data
    assert backend.size("streamed/object.bin") == len(data)


def test_put_stream_of_an_empty_stream_stores_an_empty_object(backend: Backend) -> None:
    assert backend.put_stream("nothing", io.BytesIO(b"")) == 0
    assert backend.get("nothing") == b""
    assert backend.exists("nothing") is True


def test_a_failing_stream_leaves_no_object_and_its_error_propagates(backend: Backend) -> None:
    stream = TrickleStream(payload(300_000), step=50_000, fail_after=150_000)

    with pytest.raises(ConnectionResetError, match="client went away"):
        backend.put_stream("half", stream)

    assert backend.exists("half") is False
    with pytest.raises(ObjectNotFound):
        backend.get("half")


def test_a_failing_stream_leaves_the_old_object_untouched(backend: Backend) -> None:
    backend.put("kept", b"old content")

    with pytest.raises(ConnectionResetError):
        backend.put_stream("kept", TrickleStream(payload(100_000), step=10_000, fail_after=30_000))

    assert backend.get("kept") == b"old content"


def test_put_overwrites(backend: Backend) -> None:
    backend.put("key", b"first version, rather long")
    backend.put("key", b"second")
    assert backend.get("key") == b"second"
    assert backend.size("key") == 6

    assert backend.put_stream("key", io.BytesIO(b"third via stream")) == 16
    assert backend.get("key") == b"third via stream"


def test_keys_are_independent(backend: Backend) -> None:
    backend.put("a", b"A")
    backend.put("b", b"B")
    backend.put("c/d", b"CD")

    assert backend.get("a") == b"A"
    assert backend.get("b") == b"B"
    backend.delete("a")
    assert backend.get("b") == b"B"
    assert backend.get("c/d") == b"CD"


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        (0, None, PATTERN),
        (100, None, PATTERN[100:]),
        (100, 50, PATTERN[100:150]),
        (0, 1, PATTERN[:1]),
        (10_000, 1_000, PATTERN[10_000:]),
        (len(PATTERN) - 1, None, PATTERN[-1:]),
        (len(PATTERN), None, b""),
        (len(PATTERN) + 5, 3, b""),
        (5, 0, b""),
    ],
)
def test_iter_bytes_yields_the_requested_range(
    backend: Backend, start: int, length: int | None, expected: bytes
) -> None:
    backend.put("pattern", PATTERN)

    chunks = list(backend.iter_bytes("pattern", start=start, length=length, chunk_size=1000))

    assert b"".join(chunks) == expected
    assert all(0 < len(chunk) <= 1000 for chunk in chunks)


def test_iter_bytes_splits_into_chunks_of_the_given_size(backend: Backend) -> None:
    backend.put("pattern", PATTERN)

    chunks = list(backend.iter_bytes("pattern", start=3, length=2500, chunk_size=1024))

    assert b"".join(chunks) == PATTERN[3:2503]
    assert [len(chunk) for chunk in chunks] == [1024, 1024, 452]


def test_iter_bytes_of_an_empty_object_yields_nothing(backend: Backend) -> None:
    backend.put("empty", b"")
    assert list(backend.iter_bytes("empty")) == []
    assert list(backend.iter_bytes("empty", start=0, length=10)) == []


def test_delete_removes_the_object(backend: Backend) -> None:
    backend.put("doomed", b"bytes")
    backend.put("survivor", b"other bytes")

    backend.delete("doomed")

    assert backend.exists("doomed") is False
    with pytest.raises(ObjectNotFound):
        backend.get("doomed")
    assert backend.get("survivor") == b"other bytes"
    backend.delete("doomed")  # again: no error


@pytest.mark.parametrize("populated", [False, True], ids=["fresh-store", "populated-store"])
def test_absent_keys(backend: Backend, populated: bool) -> None:
    if populated:
        backend.put("someone-else", b"x")

    assert backend.exists("missing") is False
    with pytest.raises(ObjectNotFound):
        backend.get("missing")
    with pytest.raises(ObjectNotFound):
        backend.size("missing")
    with pytest.raises(ObjectNotFound):
        backend.iter_bytes("missing")  # raised when called, before any iteration
    with pytest.raises(ObjectNotFound):
        backend.iter_bytes("missing", start=5, length=0)
    backend.delete("missing")  # no error


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../../x", "a\x00b", ""])
def test_unsafe_keys_are_refused(backend: Backend, key: str, storage_root: Path) -> None:
    with pytest.raises(RuleViolation):
        backend.put(key, b"evil")
    with pytest.raises(RuleViolation):
        backend.get(key)
    with pytest.raises(RuleViolation):
        backend.put_stream(key, io.BytesIO(b"evil"))
    assert not (storage_root.parent / "x").exists()


def test_presign_only_where_supported(backend: Backend) -> None:
    if backend.supports_presign:
        assert backend.presigned_get("k", 60).startswith("http")
        assert backend.presigned_put("k", 60).startswith("http")
    else:
        with pytest.raises(PresignNotSupported):
            backend.presigned_get("k", 60)
        with pytest.raises(PresignNotSupported):
            backend.presigned_put("k", 60, "text/plain")


def test_concurrent_writers_of_different_keys_all_land(backend: Backend) -> None:
    barrier = threading.Barrier(6)

    def write(worker: int) -> None:
        barrier.wait()
        for index in range(4):
            backend.put(f"w{worker}/k{index}", f"{worker}:{index}".encode())

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for worker in range(6):
        for index in range(4):
            assert backend.get(f"w{worker}/k{index}") == f"{worker}:{index}".encode()


# -- build_backend ------------------------------------------------------------------------------


def test_store_types_are_the_six_of_the_contract() -> None:
    assert STORE_TYPES == (
        "BucketStore",
        "FilesystemStore",
        "HashdirStore",
        "ZipStore",
        "SqliteStore",
        "DictStore",
    )


def test_unknown_store_type_is_a_rule_violation(storage_root: Path) -> None:
    with pytest.raises(RuleViolation, match='type "TapeStore" not supported.'):
        build_backend("TapeStore", "x")


@pytest.mark.parametrize("kind", sorted(LOCAL_BUCKETS))
@pytest.mark.parametrize("bucket", ["../outside", "a/../../outside", "a\x00b", ""])
def test_local_store_paths_cannot_escape_the_root(kind: str, bucket: str, storage_root: Path) -> None:
    with pytest.raises(RuleViolation):
        build_backend(kind, bucket)


@pytest.mark.parametrize("kind", sorted(LOCAL_BUCKETS))
def test_local_stores_resolve_inside_the_root_and_build_lazily(kind: str, storage_root: Path) -> None:
    backend = build_backend(kind, "/leading/slash/store")

    assert list(storage_root.iterdir()) == []  # constructing touched nothing
    backend.put("k", b"v")
    assert (storage_root / "leading" / "slash" / "store").exists()
    assert build_backend(kind, "leading/slash/store").get("k") == b"v"


def test_a_symlinked_store_path_leading_out_is_refused(storage_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    storage_root.mkdir()
    (storage_root / "sneaky").symlink_to(outside)

    with pytest.raises(RuleViolation):
        build_backend("FilesystemStore", "sneaky")
    with pytest.raises(RuleViolation):
        build_backend("ZipStore", "sneaky/store.zip")


def test_s3_parameters_belong_to_bucket_stores_only(storage_root: Path) -> None:
    params = S3Params(url="http://127.0.0.1:1", access_key="a", secret_key="s")
    with pytest.raises(RuleViolation):
        build_backend("BucketStore", "bucket")
    with pytest.raises(RuleViolation):
        build_backend("FilesystemStore", "files", params)
    with pytest.raises(RuleViolation):
        build_backend("DictStore", "ns", params)
    with pytest.raises(RuleViolation):
        build_backend("BucketStore", "/", params)


def test_bucket_store_construction_does_no_network_io() -> None:
    # Nothing listens on port 1; building must still succeed (the client is made on first use).
    backend = build_backend("BucketStore", "name/pre/fix", S3Params("http://127.0.0.1:1", "a", "s"))
    assert isinstance(backend, BucketStore)
    assert (backend.bucket, backend.prefix) == ("name", "pre/fix")


def test_s3_params_repr_hides_the_secret() -> None:
    assert "top-secret" not in repr(S3Params(url="http://x", access_key="a", secret_key="top-secret"))


# -- filesystem and hashdir ---------------------------------------------------------------------


def test_filesystem_store_keeps_one_file_per_key(storage_root: Path) -> None:
    backend = build_backend("FilesystemStore", "files")
    backend.put("a/b/c.txt", b"content")
    backend.put_stream("top", io.BytesIO(b"streamed"))

    assert (storage_root / "files" / "a" / "b" / "c.txt").read_bytes() == b"content"
    assert (storage_root / "files" / "top").read_bytes() == b"streamed"
    assert sorted(p.name for p in (storage_root / "files").iterdir()) == ["a", "top"]  # no temp files left


def test_filesystem_store_leaves_no_temp_file_after_a_failed_stream(storage_root: Path) -> None:
    backend = build_backend("FilesystemStore", "files")
    backend.put("dir/other", b"x")

    with pytest.raises(ConnectionResetError):
        backend.put_stream("dir/new", TrickleStream(payload(10_000), step=1000, fail_after=5000))

    assert [p.name for p in (storage_root / "files" / "dir").iterdir()] == ["other"]


def test_filesystem_directory_made_by_a_longer_key_is_no_object(storage_root: Path) -> None:
    backend = build_backend("FilesystemStore", "files")
    backend.put("a/b", b"x")

    assert backend.exists("a") is False
    with pytest.raises(ObjectNotFound):
        backend.get("a")
    with pytest.raises(ObjectNotFound):
        backend.iter_bytes("a")
    backend.delete("a")
    assert backend.get("a/b") == b"x"


@pytest.mark.parametrize("kind", ["FilesystemStore", "HashdirStore"])
def test_symlinks_inside_a_store_are_not_followed_out(kind: str, storage_root: Path) -> None:
    backend = build_backend(kind, "store")
    directory = storage_root / "store"
    directory.mkdir(parents=True)
    (directory / "etc").symlink_to("/etc")
    (directory / "pw").symlink_to("/etc/passwd")

    if kind == "FilesystemStore":
        with pytest.raises(RuleViolation):
            backend.get("etc/passwd")
        with pytest.raises(RuleViolation):
            backend.get("pw")
        with pytest.raises(RuleViolation):
            backend.put("etc/mediastore-evil", b"x")
    else:
        # Hashdir keys never name paths: "etc/passwd" is one encoded file name, not a lookup in /etc.
        with pytest.raises(ObjectNotFound):
            backend.get("etc/passwd")
        # A hash directory replaced by a symlink out of the store is refused.
        digest = hashlib.sha256(b"victim").hexdigest()
        (directory / digest[:2]).symlink_to("/etc")
        with pytest.raises(RuleViolation):
            backend.get("victim")
        with pytest.raises(RuleViolation):
            backend.put("victim", b"x")
    assert not Path("/etc/mediastore-evil").exists()


def test_hashdir_store_spreads_keys_over_hash_directories(storage_root: Path) -> None:
    backend = build_backend("HashdirStore", "hashed")
    keys = [f"product/{index:03d}.fits" for index in range(200)]
    for key in keys:
        backend.put(key, key.encode())

    directory = storage_root / "hashed"
    files = [path for path in directory.rglob("*") if path.is_file()]
    assert len(files) == 200
    assert len({path.relative_to(directory).parts[0] for path in files}) > 100
    for key in keys[:5]:
        digest = hashlib.sha256(key.encode()).hexdigest()
        path = directory / digest[:2] / digest[2:4] / key.replace("/", "%2F")
        assert path.read_bytes() == key.encode()
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        {f.relative_to(directory).parts[0] for f in files}
    )


def test_hashdir_file_names_are_unique_and_safe() -> None:
    digest = "f" * 64
    assert encode_filename("a/b", digest) == "a%2Fb"
    assert encode_filename(".", digest) == "%2E"
    assert encode_filename("..x", digest) == "%2E.x"
    assert encode_filename(".tmp-1", digest) != ".tmp-1"
    long_name = encode_filename("k" * 1000, digest)
    assert len(long_name) <= 200 and long_name.endswith("%%" + digest)
    assert encode_filename("k" * 1000, digest) != encode_filename("k" * 999, "e" * 64)


def test_hashdir_store_keeps_keys_too_long_for_one_file_name(storage_root: Path) -> None:
    backend = build_backend("HashdirStore", "hashed")
    backend.put("k" * 1000, b"long")
    backend.put("k" * 999, b"shorter")

    assert backend.get("k" * 1000) == b"long"
    assert backend.get("k" * 999) == b"shorter"
    with pytest.raises(RuleViolation):
        backend.put(".", b"dot")  # '.' parts are refused for every store type alike


def test_iterator_close_releases_the_file_even_before_iteration(storage_root: Path) -> None:
    backend = build_backend("FilesystemStore", "files")
    backend.put("k", PATTERN)
    before = len(os.listdir("/proc/self/fd"))

    chunks = backend.iter_bytes("k", chunk_size=100)
    assert len(os.listdir("/proc/self/fd")) == before + 1
    chunks.close()

    assert len(os.listdir("/proc/self/fd")) == before
    assert list(chunks) == []


# -- zip ----------------------------------------------------------------------------------------


def _zip_writer(zip_path: str, worker: int, count: int, start: Any) -> None:
    """Runs in a separate process: writes ``count`` keys, overwriting a shared one each time."""
    store = ZipStore(Path(zip_path))
    start.wait()  # all processes write at the same time
    for index in range(count):
        store.put(f"p{worker}/k{index}", f"process {worker} item {index}".encode())
        store.put("shared", f"last writer {worker}".encode())


def _assert_valid_zip(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
    assert len(names) == len(set(names)), "duplicate members"
    return names


def test_zip_store_concurrent_threads_all_land(storage_root: Path) -> None:
    backend = build_backend("ZipStore", "z/threads.zip")
    barrier = threading.Barrier(8)

    def write(worker: int) -> None:
        barrier.wait()
        for index in range(5):
            backend.put(f"t{worker}/k{index}", f"thread {worker} item {index}".encode())
            backend.put("shared", f"last writer {worker}".encode())

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    names = _assert_valid_zip(storage_root / "z" / "threads.zip")
    assert sorted(names) == sorted([f"t{w}/k{i}" for w in range(8) for i in range(5)] + ["shared"])
    for worker in range(8):
        for index in range(5):
            assert backend.get(f"t{worker}/k{index}") == f"thread {worker} item {index}".encode()
    assert backend.get("shared").startswith(b"last writer ")


def test_zip_store_concurrent_processes_all_land(storage_root: Path) -> None:
    zip_path = storage_root / "z" / "processes.zip"
    zip_path.parent.mkdir(parents=True)
    context = multiprocessing.get_context("spawn")  # no fork of a process running threads (moto)
    start = context.Barrier(4)
    processes = [
        context.Process(target=_zip_writer, args=(str(zip_path), worker, 15, start)) for worker in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]

    names = _assert_valid_zip(zip_path)
    assert sorted(names) == sorted([f"p{w}/k{i}" for w in range(4) for i in range(15)] + ["shared"])
    backend = build_backend("ZipStore", "z/processes.zip")
    for worker in range(4):
        for index in range(15):
            assert backend.get(f"p{worker}/k{index}") == f"process {worker} item {index}".encode()


def test_zip_store_delete_and_overwrite_really_remove_the_old_member(storage_root: Path) -> None:
    backend = build_backend("ZipStore", "store.zip")
    path = storage_root / "store.zip"
    backend.put("a", b"SECRET-OLD-A")
    backend.put("b", b"SECRET-OLD-B")
    backend.put("c", b"third")

    backend.delete("a")
    backend.put("b", b"new b")

    assert _assert_valid_zip(path) == ["c", "b"]
    raw = path.read_bytes()
    assert b"SECRET-OLD-A" not in raw
    assert b"SECRET-OLD-B" not in raw
    assert backend.get("b") == b"new b"
    with zipfile.ZipFile(path) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


def test_zip_store_reads_deflated_members_of_foreign_archives(storage_root: Path) -> None:
    path = storage_root / "foreign.zip"
    storage_root.mkdir()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.bin", PATTERN)
    backend = build_backend("ZipStore", "foreign.zip")

    assert backend.get("data.bin") == PATTERN
    assert (
        b"".join(backend.iter_bytes("data.bin", start=5000, length=300, chunk_size=64)) == PATTERN[5000:5300]
    )
    backend.put("new", b"added")
    assert backend.get("data.bin") == PATTERN
    assert sorted(_assert_valid_zip(path)) == ["data.bin", "new"]


def test_zip_store_a_failed_stream_leaves_the_archive_valid(storage_root: Path) -> None:
    backend = build_backend("ZipStore", "store.zip")
    backend.put("a", b"A")

    with pytest.raises(ConnectionResetError):
        backend.put_stream("b", TrickleStream(payload(50_000), step=5000, fail_after=20_000))

    assert _assert_valid_zip(storage_root / "store.zip") == ["a"]
    assert sorted(p.name for p in storage_root.iterdir()) == ["store.zip", "store.zip.lock"]


def test_zip_store_refuses_to_write_into_a_damaged_archive(storage_root: Path) -> None:
    storage_root.mkdir()
    path = storage_root / "broken.zip"
    path.write_bytes(b"this is not a zip file at all")
    backend = build_backend("ZipStore", "broken.zip")

    with pytest.raises(StorageError, match="damaged or not a zip file"):
        backend.get("a")
    with pytest.raises(StorageError, match="damaged or not a zip file"):
        backend.put("a", b"x")
    assert path.read_bytes() == b"this is not a zip file at all"


def test_zip_store_refuses_directory_keys(storage_root: Path) -> None:
    with pytest.raises(RuleViolation):
        build_backend("ZipStore", "store.zip").put("dir/", b"x")


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
    storage_root.mkdir()
    (storage_root / "bad.sqlite3").write_bytes(b"definitely not sqlite" * 100)
    backend = build_backend("SqliteStore", "bad.sqlite3")

    with pytest.raises(StorageError, match="SQLite store 'bad.sqlite3' could not read object 'k'"):
        backend.get("k")


# -- S3 -----------------------------------------------------------------------------------------


def test_bucket_store_puts_keys_under_the_prefix(s3_server: S3Server, s3_bucket: str) -> None:
    backend = build_backend("BucketStore", f"{s3_bucket}/some/prefix", s3_params(s3_server))
    backend.put("dir/key.txt", b"prefixed")

    listing = s3_server.client().list_objects_v2(Bucket=s3_bucket)
    assert [item["Key"] for item in listing["Contents"]] == ["some/prefix/dir/key.txt"]
    body = s3_server.client().get_object(Bucket=s3_bucket, Key="some/prefix/dir/key.txt")["Body"].read()
    assert body == b"prefixed"


def test_bucket_store_etag_is_the_unquoted_s3_etag(s3_server: S3Server, s3_bucket: str) -> None:
    backend = build_backend("BucketStore", s3_bucket, s3_params(s3_server))
    backend.put("k", b"etag me")

    assert backend.etag("k") == hashlib.md5(b"etag me").hexdigest()
    with pytest.raises(ObjectNotFound):
        backend.etag("missing")


def test_bucket_store_put_stream_uses_multipart_for_big_objects(s3_server: S3Server, s3_bucket: str) -> None:
    backend = build_backend("BucketStore", s3_bucket, s3_params(s3_server))
    data = payload(PART_SIZE + 123_457, seed=5)

    written = backend.put_stream("big", TrickleStream(data, step=1 << 20))

    assert written == len(data)
    assert backend.get("big") == data
    assert "-2" in s3_server.client().head_object(Bucket=s3_bucket, Key="big")["ETag"]  # two parts
    assert s3_server.client().list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_bucket_store_presigned_put_then_get(s3_server: S3Server, s3_bucket: str) -> None:
    backend = build_backend("BucketStore", f"{s3_bucket}/pre", s3_params(s3_server))
    data = payload(70_000, seed=3)

    url = backend.presigned_put("upload.bin", 300, "application/octet-stream")
    response = requests.put(url, data=data, headers={"Content-Type": "application/octet-stream"}, timeout=30)

    assert response.status_code == 200
    assert backend.get("upload.bin") == data
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="pre/upload.bin")
    assert head["ContentType"] == "application/octet-stream"


def test_bucket_store_presigned_get_serves_the_bytes(s3_server: S3Server, s3_bucket: str) -> None:
    backend = build_backend("BucketStore", s3_bucket, s3_params(s3_server))
    backend.put("download.bin", b"fetch me over plain HTTP")

    response = requests.get(backend.presigned_get("download.bin", 300), timeout=30)

    assert response.status_code == 200
    assert response.content == b"fetch me over plain HTTP"


def test_bucket_store_missing_bucket_is_a_storage_error(s3_server: S3Server) -> None:
    backend = build_backend("BucketStore", "no-such-bucket-here", s3_params(s3_server))
    expected = f"S3 bucket 'no-such-bucket-here' does not exist at {s3_server.url}"

    for call in (
        lambda: backend.put("k", b"x"),
        lambda: backend.put_stream("k", io.BytesIO(b"x")),
        lambda: backend.get("k"),
        lambda: backend.iter_bytes("k"),
        lambda: backend.exists("k"),
        lambda: backend.size("k"),
        lambda: backend.delete("k"),
    ):
        with pytest.raises(StorageError) as caught:
            call()
        assert caught.value.message == expected


def test_bucket_store_unreachable_endpoint_is_a_storage_error_without_secrets() -> None:
    port = free_port()  # free a moment ago: nobody listens on it
    params = S3Params(url=f"http://127.0.0.1:{port}", access_key="AKIDUNREACHABLE", secret_key="s3cr3t-v4lue")
    backend = build_backend("BucketStore", "bucket", params)

    for call in (
        lambda: backend.put("k", b"x"),
        lambda: backend.get("k"),
        lambda: backend.iter_bytes("k"),
        lambda: backend.exists("k"),
    ):
        with pytest.raises(StorageError) as caught:
            call()
        assert caught.value.message == f"S3 endpoint http://127.0.0.1:{port} is unreachable"
        assert "s3cr3t-v4lue" not in str(caught.value)
        assert "AKIDUNREACHABLE" not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_bucket_store_endpoint_credentials_in_the_url_are_not_shown() -> None:
    port = free_port()
    params = S3Params(url=f"http://user:hunter2@127.0.0.1:{port}", access_key="a", secret_key="b")

    with pytest.raises(StorageError) as caught:
        build_backend("BucketStore", "bucket", params).get("k")

    assert "hunter2" not in str(caught.value)


def test_bucket_store_malformed_endpoint_is_a_storage_error() -> None:
    backend = build_backend("BucketStore", "bucket", S3Params("not a url at all", "a", "secret-b"))

    with pytest.raises(StorageError) as caught:
        backend.get("k")

    assert caught.value.message == "S3 endpoint not a url at all is not a valid URL"


def test_s3_clients_are_made_once_per_endpoint_and_credentials(settings) -> None:
    settings.MEDIASTORE_PROXIES = {}
    params = S3Params("http://127.0.0.1:9", "access", "secret")
    clients: list[object] = []
    barrier = threading.Barrier(4)

    def make() -> None:
        barrier.wait()
        clients.append(s3_client(S3Params("http://127.0.0.1:9", "access", "secret")))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(clients) == 4 and all(client is clients[0] for client in clients)
    assert s3_client(params) is clients[0]
    assert s3_client(S3Params("http://127.0.0.1:9", "access", "other secret")) is not clients[0]
    settings.MEDIASTORE_PROXIES = {"http": "http://proxy.invalid:3128"}
    assert s3_client(params) is not clients[0]  # other proxies, other client


def test_bucket_store_refused_credentials_are_a_storage_error(s3_server: S3Server, s3_bucket: str) -> None:
    """Moto accepts any credentials unless told to check them; ``enforce_auth`` makes it check."""
    access_key, secret_key = s3_server.create_credentials()
    good = build_backend("BucketStore", s3_bucket, s3_params(s3_server, secret_key, access_key))
    wrong_secret = build_backend(
        "BucketStore", s3_bucket, s3_params(s3_server, "wrong-" + secret_key, access_key)
    )
    unknown_key = build_backend(
        "BucketStore", s3_bucket, s3_params(s3_server, secret_key, "AKIAUNKNOWN000000000")
    )
    refused = f"S3 endpoint {s3_server.url} refused the credentials of this store"

    with s3_server.enforce_auth():
        good.put("k", b"authorised")
        assert good.get("k") == b"authorised"
        for backend in (wrong_secret, unknown_key):
            for call in (lambda b=backend: b.put("k", b"x"), lambda b=backend: b.get("k")):
                with pytest.raises(StorageError) as caught:
                    call()
                assert caught.value.message == refused
                assert secret_key not in str(caught.value)


def test_s3_part_size_grows_with_the_size_hint() -> None:
    """S3 allows 10 000 parts: without growing parts, streamed objects stopped at about 78 GiB."""
    from stores.backends.bucket import MAX_PARTS, part_size_for

    assert part_size_for(None) == PART_SIZE == part_size_for(10)
    for size in (PART_SIZE * MAX_PARTS, PART_SIZE * MAX_PARTS + 1, 500 << 30, 5 << 40):
        part = part_size_for(size)
        assert part >= PART_SIZE and part % (1 << 20) == 0
        assert -(-size // part) <= MAX_PARTS
