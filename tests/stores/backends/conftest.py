"""The backend matrix (every store type, the Redis variant of DictStore included) and the
helpers the backend tests share."""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stores.backends import (
    Backend,
    ObjectNotFound,
    S3Params,
    build_backend,
)
from stores.backends.redisstore import KEY_PREFIX
from tests.support.s3 import S3Server
from tests.support.servers import REDIS_URL, require_redis

MATRIX = (
    "DictStore",
    "DictStore+ttl",
    "RedisDictStore",
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
    if kind == "RedisDictStore":  # DictStore with MEDIASTORE_REDIS_URL set
        settings = request.getfixturevalue("settings")
        settings.MEDIASTORE_REDIS_URL = request.getfixturevalue("redis_url")
        settings.MEDIASTORE_RAM_TTL_SECONDS = None
        return build_backend("DictStore", request.getfixturevalue("redis_namespace"))
    if kind.startswith("DictStore"):
        request.getfixturevalue("ram_dir")
        if kind.endswith("+ttl"):  # long enough never to expire during a test: the expiry checks run
            request.getfixturevalue("settings").MEDIASTORE_RAM_TTL_SECONDS = 3600
        return build_backend("DictStore", f"namespace-{uuid.uuid4().hex}")
    return build_backend(kind, LOCAL_BUCKETS[kind])


def assert_absent(store: Backend, key: str) -> None:
    """``key`` is absent the way the contract says: ``exists`` is False; ``get``, ``size`` and
    ``iter_bytes`` raise ObjectNotFound (the last when called, before any iteration); ``delete``
    is no error."""
    assert store.exists(key) is False
    for call in (store.get, store.size, store.iter_bytes):
        with pytest.raises(ObjectNotFound):
            call(key)
    with pytest.raises(ObjectNotFound):
        store.iter_bytes(key, start=5, length=0)
    store.delete(key)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis database; skips (fails in CI) when Redis does not answer."""
    require_redis(REDIS_URL)
    return REDIS_URL


@pytest.fixture(scope="session")
def raw_redis(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, socket_connect_timeout=2)


@pytest.fixture
def redis_namespace(raw_redis: redis.Redis) -> Iterator[str]:
    """A fresh RAM store namespace; its keys are removed afterwards."""
    name = f"test-{uuid.uuid4().hex}"
    yield name
    for key in raw_redis.scan_iter(match=f"{KEY_PREFIX}{name}:*"):
        raw_redis.delete(key)
