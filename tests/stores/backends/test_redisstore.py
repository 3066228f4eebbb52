"""RedisDictStore's own behaviour against the real Redis at 127.0.0.1:6379 (database 15); what it
shares with every backend is in test_contract.py (the matrix runs it as "RedisDictStore").

Each test uses its own namespace and removes its keys afterwards. Without a reachable Redis the
tests skip, except in CI (env ``CI`` set), where they fail.
"""

from __future__ import annotations

import io
import logging
import os
import uuid

import pytest
import redis

from mediastore.errors import StorageError
from stores.backends.redisstore import KEY_PREFIX, RedisDictStore, redacted_url
from tests.support.ports import free_port


def _cleanup(client: redis.Redis, namespace: str) -> None:
    for name in client.scan_iter(match=f"{KEY_PREFIX}{namespace}:*"):
        client.delete(name)


@pytest.fixture
def store(redis_namespace: str, redis_url: str) -> RedisDictStore:
    return RedisDictStore(redis_namespace, redis_url, None)


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


def test_keys_live_under_the_documented_prefix(store, raw_redis, redis_namespace):
    store.put("dir/obj", b"bytes")
    assert raw_redis.get(f"mediastore:ram:{redis_namespace}:dir/obj") == b"bytes"


def test_namespaces_never_share_a_key(raw_redis, redis_url):
    """Without escaping, namespace "a:b" key "c" and namespace "a" key "b:c" were the same Redis key."""
    base = f"test-{uuid.uuid4().hex}"
    one, two = RedisDictStore(f"{base}:b", redis_url, None), RedisDictStore(base, redis_url, None)
    try:
        one.put("c", b"one")
        two.put("b:c", b"two")
        assert one.get("c") == b"one"
        assert two.get("b:c") == b"two"
    finally:
        _cleanup(raw_redis, base)
        _cleanup(raw_redis, f"{base}%3Ab")


def test_objects_are_shared_between_instances(store, redis_namespace, redis_url):
    """The point of this backend: another worker (another instance) sees what one stored."""
    store.put("shared", b"visible everywhere")
    assert RedisDictStore(redis_namespace, redis_url, None).get("shared") == b"visible everywhere"


DATA = bytes(range(256)) * 40  # 10240 bytes


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


def test_ttl_applies_to_put_and_put_stream(redis_namespace, redis_url, raw_redis):
    store = RedisDictStore(redis_namespace, redis_url, ttl=100)
    store.put("a", b"x")
    store.put_stream("b", io.BytesIO(b"y"))
    for key in ("a", "b"):
        assert 0 < raw_redis.ttl(store.redis_key(key)) <= 100


def test_without_ttl_objects_do_not_expire(store, raw_redis):
    store.put("a", b"x")
    store.put_stream("b", io.BytesIO(b"y"))  # its temporary key had an expiry: it must not stay
    for key in ("a", "b"):
        assert raw_redis.ttl(store.redis_key(key)) == -1


def test_unreachable_redis_is_a_storage_error_without_the_password(caplog):
    store = RedisDictStore("ns", f"redis://user:s3cret-pw@127.0.0.1:{free_port()}/0", None)
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
        RedisDictStore("ns", "redis://127.0.0.1:1/0", 0)
