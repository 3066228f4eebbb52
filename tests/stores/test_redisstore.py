"""RedisDictStore against the real Redis at 127.0.0.1:6379 (database 15).

Each test uses its own namespace and removes its keys afterwards. Without a reachable Redis the
tests skip, except in CI (env ``CI`` set), where they fail.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import uuid

import pytest
import redis

from mediastore.errors import RuleViolation, StorageError
from stores.backends.base import ObjectNotFound, PresignNotSupported
from stores.backends.redisstore import KEY_PREFIX, RedisDictStore, redacted_url

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="module")
def raw_redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"Redis at {REDIS_URL} is unreachable ({exc}); start redis-server to run these tests"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
        pytest.skip(reason)
    return client


def _cleanup(client: redis.Redis, namespace: str) -> None:
    for name in client.scan_iter(match=f"{KEY_PREFIX}{namespace}:*"):
        client.delete(name)


@pytest.fixture
def namespace(raw_redis) -> str:
    name = f"test-{uuid.uuid4().hex}"
    yield name
    _cleanup(raw_redis, name)


@pytest.fixture
def store(namespace) -> RedisDictStore:
    return RedisDictStore(namespace, REDIS_URL, None)


def _partial_keys(client: redis.Redis) -> set[bytes]:
    return set(client.scan_iter(match=f"{KEY_PREFIX}partial:*"))


class FailingStream(io.RawIOBase):
    """Yields some bytes, then fails like a client that hung up."""

    def __init__(self, good: bytes) -> None:
        self.good = good
        self.done = False

    def read(self, n: int = -1) -> bytes:
        if not self.done:
            self.done = True
            return self.good
        raise OSError("client went away")


def test_put_get_exists_size_delete(store):
    assert not store.exists("a/b.bin")
    store.put("a/b.bin", b"hello")
    assert store.exists("a/b.bin")
    assert store.get("a/b.bin") == b"hello"
    assert store.size("a/b.bin") == 5
    store.put("a/b.bin", b"again")
    assert store.get("a/b.bin") == b"again"
    store.delete("a/b.bin")
    assert not store.exists("a/b.bin")
    store.delete("a/b.bin")  # absent: not an error


def test_missing_object_is_object_not_found(store):
    with pytest.raises(ObjectNotFound):
        store.get("nope")
    with pytest.raises(ObjectNotFound):
        store.size("nope")


def test_empty_object_is_an_object(store):
    store.put("empty", b"")
    assert store.exists("empty")
    assert store.size("empty") == 0
    assert store.get("empty") == b""
    assert list(store.iter_bytes("empty")) == []


def test_no_etag_and_no_presign(store):
    store.put("k", b"x")
    assert store.etag("k") is None
    assert store.supports_presign is False
    with pytest.raises(PresignNotSupported):
        store.presigned_get("k", 60)
    with pytest.raises(PresignNotSupported):
        store.presigned_put("k", 60)


def test_keys_live_under_the_documented_prefix(store, raw_redis, namespace):
    store.put("dir/obj", b"bytes")
    assert raw_redis.get(f"mediastore:ram:{namespace}:dir/obj") == b"bytes"


def test_namespaces_never_share_a_key(raw_redis):
    """Without escaping, namespace "a:b" key "c" and namespace "a" key "b:c" were the same Redis key."""
    base = f"test-{uuid.uuid4().hex}"
    one, two = RedisDictStore(f"{base}:b", REDIS_URL, None), RedisDictStore(base, REDIS_URL, None)
    try:
        one.put("c", b"one")
        two.put("b:c", b"two")
        assert one.get("c") == b"one"
        assert two.get("b:c") == b"two"
    finally:
        _cleanup(raw_redis, base)
        _cleanup(raw_redis, f"{base}%3Ab")


def test_objects_are_shared_between_instances(store, namespace):
    """The point of this backend: another worker (another instance) sees what one stored."""
    store.put("shared", b"visible everywhere")
    assert RedisDictStore(namespace, REDIS_URL, None).get("shared") == b"visible everywhere"


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "..", "back\\slash", "nul\x00"])
def test_bad_keys_are_refused(store, key):
    with pytest.raises(RuleViolation):
        store.put(key, b"x")
    with pytest.raises(RuleViolation):
        store.get(key)


DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.mark.parametrize(
    "start,length,chunk_size",
    [
        (0, None, 1 << 20),
        (0, None, 1000),
        (100, 100, 7),
        (10000, None, 64),
        (10240, None, 64),
        (20000, 5, 64),
    ],
)
def test_iter_bytes_ranges(store, start, length, chunk_size):
    store.put("obj", DATA)
    chunks = list(store.iter_bytes("obj", start, length, chunk_size))
    expected = DATA[start:] if length is None else DATA[start : start + length]
    assert b"".join(chunks) == expected
    assert all(0 < len(c) <= chunk_size for c in chunks)


def test_iter_bytes_raises_not_found_before_iterating(store):
    with pytest.raises(ObjectNotFound):
        store.iter_bytes("missing")


def test_iter_bytes_can_be_closed_unstarted(store):
    store.put("obj", DATA)
    chunks = store.iter_bytes("obj")
    chunks.close()
    assert list(chunks) == []


def test_iter_bytes_reports_an_object_deleted_while_read(store):
    store.put("obj", DATA)
    chunks = store.iter_bytes("obj", chunk_size=1024)
    assert next(chunks) == DATA[:1024]
    store.delete("obj")
    with pytest.raises(StorageError, match="changed while it was being read"):
        list(chunks)


def test_put_stream_stores_everything_and_counts(store, raw_redis):
    data = os.urandom(3 * (1 << 20) + 17)
    before = _partial_keys(raw_redis)
    assert store.put_stream("big", io.BytesIO(data)) == len(data)
    assert store.get("big") == data
    assert b"".join(store.iter_bytes("big")) == data
    assert _partial_keys(raw_redis) == before


def test_put_stream_of_nothing_stores_an_empty_object(store):
    assert store.put_stream("empty", io.BytesIO(b"")) == 0
    assert store.exists("empty") and store.get("empty") == b""


def test_failed_put_stream_leaves_the_old_object_and_no_partial(store, raw_redis):
    store.put("k", b"old")
    before = _partial_keys(raw_redis)
    with pytest.raises(OSError, match="client went away"):
        store.put_stream("k", FailingStream(b"new bytes"))
    assert store.get("k") == b"old"
    assert _partial_keys(raw_redis) == before
    with pytest.raises(OSError):
        store.put_stream("fresh", FailingStream(b"new bytes"))
    assert not store.exists("fresh")


def test_ttl_applies_to_put_and_put_stream(namespace, raw_redis):
    store = RedisDictStore(namespace, REDIS_URL, ttl=100)
    store.put("a", b"x")
    store.put_stream("b", io.BytesIO(b"y"))
    for key in ("a", "b"):
        assert 0 < raw_redis.ttl(store.redis_key(key)) <= 100


def test_without_ttl_objects_do_not_expire(store, raw_redis):
    store.put("a", b"x")
    store.put_stream("b", io.BytesIO(b"y"))  # its temporary key had an expiry: it must not stay
    for key in ("a", "b"):
        assert raw_redis.ttl(store.redis_key(key)) == -1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_redis_is_a_storage_error_without_the_password(caplog):
    store = RedisDictStore("ns", f"redis://user:s3cret-pw@127.0.0.1:{_closed_port()}/0", None)
    calls = [
        lambda: store.put("k", b"x"),
        lambda: store.put_stream("k", io.BytesIO(b"x")),
        lambda: store.get("k"),
        lambda: store.iter_bytes("k"),
        lambda: store.exists("k"),
        lambda: store.size("k"),
        lambda: store.delete("k"),
    ]
    with caplog.at_level(logging.WARNING, logger="stores.backends.redisstore"):
        for call in calls:
            with pytest.raises(StorageError, match=r"RAM store \(Redis\) unreachable") as info:
                call()
            assert "s3cret-pw" not in str(info.value)
            assert info.value.status_code == 502
            assert info.value.__cause__ is None and info.value.__suppress_context__
    assert caplog.records, "the failure should be logged for the operator"
    assert "s3cret-pw" not in caplog.text
    assert "user:***@127.0.0.1" in caplog.text


def test_redacted_url():
    assert redacted_url("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert redacted_url("rediss://me:pw@host/1") == "rediss://me:***@host/1"
    assert redacted_url("redis://host:6379/0") == "redis://host:6379/0"


def test_constructor_refuses_nonsense():
    with pytest.raises(ValueError):
        RedisDictStore("ns", "", None)
    with pytest.raises(ValueError):
        RedisDictStore("ns", REDIS_URL, 0)
