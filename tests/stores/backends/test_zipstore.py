"""ZipStore: one archive shared by threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest

from mediastore.errors import RuleViolation, StorageError
from stores.backends import (
    ZipStore,
    build_backend,
)
from tests.stores.backends.conftest import PATTERN, TrickleStream, payload

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
