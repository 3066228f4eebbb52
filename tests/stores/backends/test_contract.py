"""The contract every backend keeps, run over the whole matrix of store types (conftest.MATRIX)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from mediastore.errors import RuleViolation
from stores.backends import (
    STORE_TYPES,
    Backend,
    ObjectNotFound,
    PresignNotSupported,
)
from tests.stores.backends.conftest import MATRIX, PATTERN, TrickleStream, assert_absent, payload

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

    assert_absent(backend, "missing")


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


@pytest.mark.parametrize("key", ["../x", "a/../../x", "a\x00b", "", "a//b"])
def test_every_public_method_refuses_an_unsafe_key_before_touching_the_medium(
    backend: Backend, key: str
) -> None:
    """The base checks keys once, for every method; no hook of a backend sees an unchecked key."""
    calls = [
        lambda: backend.put(key, b"x"),
        lambda: backend.put_stream(key, io.BytesIO(b"x")),
        lambda: backend.get(key),
        lambda: backend.iter_bytes(key),
        lambda: backend.exists(key),
        lambda: backend.size(key),
        lambda: backend.delete(key),
        lambda: backend.etag(key),
    ]
    for call in calls:
        with pytest.raises(RuleViolation):
            call()


@pytest.mark.parametrize(("start", "length", "chunk_size"), [(-1, None, 10), (0, -1, 10), (0, None, 0)])
def test_nonsensical_ranges_are_programming_errors(
    backend: Backend, start: int, length: int | None, chunk_size: int
) -> None:
    backend.put("k", b"data")
    with pytest.raises(ValueError):
        backend.iter_bytes("k", start, length, chunk_size)


def test_the_matrix_covers_every_registered_store_type() -> None:
    covered = {name.partition("+")[0] for name in MATRIX} - {"RedisDictStore"}
    assert covered == set(STORE_TYPES)
