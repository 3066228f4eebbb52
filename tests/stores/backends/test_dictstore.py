"""DictStore without Redis: files in a RAM directory, shared by every process of the host.

The backend contract (put, streams, ranges, delete, absent keys) runs in the matrix of
``test_backends.py``; here are what only this store has: namespaces as folders, sharing between
processes, expiry, the sweep, the directory's owner check, and readers racing writers.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import random
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from mediastore.errors import StorageError
from stores.backends import build_backend
from stores.backends.dictstore import STALE_TEMP_SECONDS, SWEEP_STAMP, DictStore
from stores.backends.filesystem import TEMP_PREFIX
from tests.stores.backends.conftest import assert_absent


def object_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look written ``seconds`` ago (instead of waiting: no timing in tests)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_build_backend_without_redis_gives_the_shared_store(settings, tmp_path: Path) -> None:
    settings.MEDIASTORE_REDIS_URL = ""
    settings.MEDIASTORE_RAM_DIR = tmp_path / "ram"
    settings.MEDIASTORE_RAM_TTL_SECONDS = 120

    backend = build_backend("DictStore", "products")

    assert isinstance(backend, DictStore)
    assert (backend.root, backend.namespace, backend.ttl) == (tmp_path / "ram", "products", 120)
    assert not (tmp_path / "ram").exists()  # building does no I/O
    backend.put("k", b"v")
    assert stat.S_IMODE((tmp_path / "ram").stat().st_mode) == 0o700


def test_namespaces_are_folders_that_never_share_objects(tmp_path: Path) -> None:
    names = ["a", "a/b", "a%2Fb", ".lock", "..", "ä b", "x" * 500]
    stores = [DictStore(name, tmp_path) for name in names]
    for store in stores:
        store.put("same/key", store.namespace.encode())

    for store in stores:
        assert store.get("same/key") == store.namespace.encode()
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) == len(names)
    assert all(p.parent == tmp_path for p in folders)  # no namespace reaches outside its folder
    stores[0].delete("same/key")
    assert [s.exists("same/key") for s in stores] == [False] + [True] * (len(names) - 1)


def test_a_key_and_a_longer_key_below_it_are_both_objects(tmp_path: Path) -> None:
    """The earlier in-process dict held "a" and "a/b" side by side; so does the shared store."""
    store = DictStore("ns", tmp_path)
    store.put("a", b"A")
    store.put("a/b", b"AB")
    assert (store.get("a"), store.get("a/b")) == (b"A", b"AB")


def _write_one(root: str, namespace: str, key: str, data: bytes) -> None:
    DictStore(namespace, Path(root)).put(key, data)


def test_an_object_written_by_another_process_is_found(tmp_path: Path) -> None:
    """The bug this store fixes: each gunicorn worker had its own dict, so another worker's upload
    was not found (the published client's upload/download round trip answered 502)."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=_write_one, args=(str(tmp_path), "shared", "k", b"from elsewhere"))
    process.start()
    process.join(timeout=60)
    assert process.exitcode == 0

    store = DictStore("shared", tmp_path)
    assert store.get("k") == b"from elsewhere"
    store.delete("k")
    assert not store.exists("k")


def test_expired_objects_are_not_found_and_are_removed(tmp_path: Path) -> None:
    store = DictStore("ns", tmp_path, ttl=60)
    store.put("old", b"stale bytes")
    store.put("new", b"fresh bytes")
    (old_file,) = [p for p in object_files(tmp_path) if p.read_bytes() == b"stale bytes"]
    age(old_file, 61)

    assert_absent(store, "old")
    assert not old_file.exists()  # purged when looked up
    assert store.get("new") == b"fresh bytes"

    store.put("old", b"written again")  # a rewrite starts a new lifetime
    assert store.get("old") == b"written again"


def test_without_ttl_objects_never_expire(tmp_path: Path) -> None:
    store = DictStore("ns", tmp_path)
    store.put("k", b"kept")
    (path,) = object_files(tmp_path)
    age(path, 10 * 365 * 86400)
    store.sweep()
    assert store.get("k") == b"kept"


def test_the_sweep_removes_expired_objects_of_every_namespace_and_stale_temp_files(tmp_path: Path) -> None:
    one, two = DictStore("one", tmp_path, ttl=60), DictStore("two", tmp_path, ttl=60)
    one.put("expired", b"1")
    two.put("expired", b"2")
    two.put("fresh", b"3")
    for path in object_files(tmp_path):
        if path.read_bytes() in (b"1", b"2"):
            age(path, 120)
    object_dir = object_files(tmp_path)[0].parent
    stale, live = object_dir / f"{TEMP_PREFIX}dead-worker", object_dir / f"{TEMP_PREFIX}uploading"
    stale.write_bytes(b"half an upload")
    live.write_bytes(b"an upload in progress")
    age(stale, STALE_TEMP_SECONDS + 1)

    one.sweep()

    assert [p.read_bytes() for p in object_files(tmp_path)] == [b"3"]
    assert not stale.exists() and live.exists()
    assert two.get("fresh") == b"3"


def test_a_write_sweeps_at_most_once_a_minute(tmp_path: Path) -> None:
    store = DictStore("ns", tmp_path, ttl=60)
    store.put("victim", b"old")
    (victim,) = object_files(tmp_path)
    age(victim, 120)

    store.put("other", b"x")  # the stamp is new: this counts as a sweep a moment ago
    assert victim.exists()

    age(tmp_path / SWEEP_STAMP, 61)
    store.put("other", b"y")
    assert not victim.exists()
    assert time.time() - (tmp_path / SWEEP_STAMP).stat().st_mtime < 60


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory to another user")
def test_a_ram_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    """/dev/shm is writable by everyone: another user could prepare the folder to read or plant objects."""
    root = tmp_path / "ram"
    root.mkdir(mode=0o777)
    os.chown(root, 65534, 65534)
    store = DictStore("ns", root)

    for call in (lambda: store.put("k", b"x"), lambda: store.get("k"), lambda: store.exists("k")):
        with pytest.raises(StorageError, match="belongs to another user"):
            call()
    assert list(root.iterdir()) == []


def test_a_ram_directory_that_is_a_file_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "ram").write_bytes(b"not a directory")
    with pytest.raises(StorageError, match="RAM store 'ns' could not reach object 'k'"):
        DictStore("ns", tmp_path / "ram").put("k", b"x")


# -- readers racing writers across processes -------------------------------------------------


def _version(writer: int, index: int) -> bytes:
    """A self-checking object: 32-byte digest of the body, then the body (64 KB to 1.5 MB)."""
    rng = random.Random(writer * 1000 + index)
    body = rng.randbytes(rng.randrange(64 << 10, 1536 << 10))
    return hashlib.sha256(body).digest() + body


def _intact(data: bytes) -> bool:
    return len(data) > 32 and hashlib.sha256(data[32:]).digest() == data[:32]


def _race(root: str, role: str, worker: int, rounds: int, start: Any, results: Any) -> None:
    store = DictStore("race", Path(root), ttl=3600)
    start.wait()
    torn = reads = 0
    rng = random.Random(worker)
    for index in range(rounds):
        if role == "writer":
            data = _version(worker, index)
            if index % 2:
                store.put("same", data)
            else:
                store.put_stream("same", io.BytesIO(data))
            continue
        whole = store.get("same")
        streamed = b"".join(store.iter_bytes("same", chunk_size=rng.choice([1000, 65536, 1 << 20])))
        reads += 2
        torn += (not _intact(whole)) + (not _intact(streamed))
    results.put((role, worker, reads, torn))


def test_concurrent_writers_and_readers_of_one_key_never_see_a_torn_object(tmp_path: Path) -> None:
    DictStore("race", tmp_path, ttl=3600).put("same", _version(99, 0))
    context = multiprocessing.get_context("spawn")
    roles = [("writer", w, 25) for w in range(3)] + [("reader", r, 40) for r in range(3)]
    start = context.Barrier(len(roles))
    results = context.Queue()
    processes = [
        context.Process(target=_race, args=(str(tmp_path), role, worker, rounds, start, results))
        for role, worker, rounds in roles
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)

    assert [process.exitcode for process in processes] == [0] * len(roles)
    reads = [report for report in reports if report[0] == "reader"]
    assert sum(report[2] for report in reads) == 3 * 40 * 2
    assert [report[3] for report in reads] == [0, 0, 0], "a reader saw a torn or mixed object"
    final = DictStore("race", tmp_path).get("same")
    assert final in {_version(w, i) for w in range(3) for i in range(25)}
    assert not [p for p in tmp_path.rglob(f"{TEMP_PREFIX}*")], "temporary files left behind"
