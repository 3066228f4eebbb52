"""RedisDictStore: DictStore objects kept in Redis, shared by every worker process and replica.

The in-process ``DictStore`` gives each gunicorn worker its own dict, so with more than one worker
a download can land on a worker that never saw the upload. This backend has the same behaviour
with the bytes in Redis under ``mediastore:ram:<namespace>:<key>`` (``%`` and ``:`` in the
namespace are percent-encoded, so two namespaces can never share a key). Objects expire after
``ttl`` seconds when it is set (``MEDIASTORE_RAM_TTL_SECONDS``).

A Redis string holds at most 512 MB, the largest object this store can keep.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO
from urllib.parse import urlsplit, urlunsplit

import redis
from django.conf import settings

from mediastore.errors import StorageError
from stores.backends.base import Backend, ChunkIterator, ObjectNotFound, S3Params, range_end, read_chunks
from stores.paths import validate_store_key

logger = logging.getLogger(__name__)

KEY_PREFIX = "mediastore:ram:"
# An upload in progress is appended to a temporary key, renamed into place when complete. A worker
# killed half-way leaves the temporary key behind; it expires after this many seconds.
PARTIAL_UPLOAD_SECONDS = 6 * 3600
CONNECT_TIMEOUT_SECONDS = 5
# Generous: one SET of a few hundred MB must fit in it.
SOCKET_TIMEOUT_SECONDS = 300

_CLIENTS: dict[str, redis.Redis] = {}
_CLIENTS_LOCK = threading.Lock()


def redacted_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo = f"{parts.username or ''}:***"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def _client(url: str) -> redis.Redis:
    """One client (and connection pool) per URL and process; creating it does no network I/O.

    redis-py's pool notices a fork and opens new connections in the child, so a client made in
    the gunicorn master is still safe in the workers.
    """
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                socket_timeout=SOCKET_TIMEOUT_SECONDS,
                health_check_interval=30,
            )
            _CLIENTS[url] = client
        return client


class RedisDictStore(Backend):
    """One DictStore namespace in Redis. Same contract as ``DictStore``; no presigned URLs.

    Not a store type of its own: ``DictStore.from_config`` chooses it when Redis is configured.
    """

    @classmethod
    def from_config(cls, bucket: str, s3: S3Params | None) -> Backend:
        ttl = settings.MEDIASTORE_RAM_TTL_SECONDS
        return cls(bucket, url=settings.MEDIASTORE_REDIS_URL, ttl=ttl)

    def __init__(self, namespace: str, url: str, ttl: int | None = None) -> None:
        if not url:
            raise ValueError("RedisDictStore needs a Redis URL (MEDIASTORE_REDIS_URL)")
        if ttl is not None and ttl < 1:
            raise ValueError(f"ttl must be at least 1 second or None, got {ttl}")
        self.namespace = namespace
        self.url = url
        self.ttl = ttl
        self._prefix = KEY_PREFIX + namespace.replace("%", "%25").replace(":", "%3A") + ":"

    def redis_key(self, key: str) -> str:
        """The Redis key holding the object stored under ``key``. Raises RuleViolation for bad keys."""
        validate_store_key(key)  # a public helper (tests, audits): checks like the interface does
        return self._prefix + key

    @property
    def _redis(self) -> redis.Redis:
        return _client(self.url)

    @contextmanager
    def _translated(self):
        """Turn redis-py errors into StorageError with a sentence safe for clients (no URL)."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            logger.warning("RAM store (Redis) at %s unreachable: %s", redacted_url(self.url), exc)
            raise StorageError(
                "RAM store (Redis) unreachable; check MEDIASTORE_REDIS_URL and that Redis is running"
            ) from None
        except redis.RedisError as exc:
            logger.warning("RAM store (Redis) at %s failed: %s", redacted_url(self.url), exc)
            raise StorageError(f"RAM store (Redis) failed: {type(exc).__name__}") from None

    def _put(self, key: str, data: bytes) -> None:
        name = self.redis_key(key)
        with self._translated():
            self._redis.set(name, bytes(data), ex=self.ttl)

    def _put_stream(self, key: str, stream: BinaryIO, size: int | None) -> int:
        """Appends chunk by chunk to a temporary key, then renames it into place in one step, so
        memory stays bounded and no partial object is ever visible under ``key``."""
        name = self.redis_key(key)
        partial = f"{KEY_PREFIX}partial:{uuid.uuid4().hex}"
        client = self._redis
        total = 0
        complete = False
        try:
            with self._translated():
                client.set(partial, b"", ex=PARTIAL_UPLOAD_SECONDS)
            for chunk in read_chunks(stream):  # errors of the stream itself propagate unchanged
                with self._translated():
                    client.append(partial, chunk)
                total += len(chunk)
            with self._translated():
                pipe = client.pipeline(transaction=True)
                pipe.rename(partial, name)
                if self.ttl is None:
                    pipe.persist(name)
                else:
                    pipe.expire(name, self.ttl)
                pipe.execute()
            complete = True
        finally:
            if not complete:
                try:
                    client.delete(partial)
                except redis.RedisError:
                    pass  # it expires on its own; the original error is the one to report
        return total

    def _get(self, key: str) -> bytes:
        name = self.redis_key(key)
        with self._translated():
            data = self._redis.get(name)
        if data is None:
            raise ObjectNotFound(key)
        return data

    def _iter_range(self, key: str, start: int, length: int | None, chunk_size: int) -> Iterator[bytes]:
        """Reads the range with GETRANGE a chunk at a time, so a large object is never held whole.

        An object deleted or shortened while it is being read ends the iteration with StorageError
        rather than silently short.
        """
        end = range_end(start, length, self._size(key))
        name = self.redis_key(key)

        def chunks() -> Iterator[bytes]:
            for pos in range(start, end, chunk_size):
                want = min(chunk_size, end - pos)
                with self._translated():
                    chunk = self._redis.getrange(name, pos, pos + want - 1)
                if len(chunk) != want:
                    raise StorageError(f"RAM store object {key!r} changed while it was being read")
                yield chunk

        return ChunkIterator(chunks(), lambda: None)

    def _exists(self, key: str) -> bool:
        name = self.redis_key(key)
        with self._translated():
            return bool(self._redis.exists(name))

    def _size(self, key: str) -> int:
        name = self.redis_key(key)
        with self._translated():
            pipe = self._redis.pipeline(transaction=True)
            pipe.exists(name)
            pipe.strlen(name)
            present, size = pipe.execute()
        if not present:
            raise ObjectNotFound(key)
        return int(size)

    def _delete(self, key: str) -> None:
        name = self.redis_key(key)
        with self._translated():
            self._redis.delete(name)
