"""DictStore: objects in this process's memory, for ephemeral intermediate products.

Each gunicorn worker has its own dict, so objects are visible only to the worker that wrote them
and vanish on restart. A shared variant (Redis) can sit beside this class with the same methods.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import BinaryIO

from stores.backends.base import (
    DEFAULT_CHUNK_SIZE,
    Backend,
    ChunkIterator,
    ObjectNotFound,
    check_range,
    range_end,
    read_chunks,
)
from stores.paths import validate_store_key

_NAMESPACES: dict[str, dict[str, bytes]] = {}
_LOCK = threading.Lock()


class DictStore(Backend):
    """One namespace of the process-wide dict ``namespace -> {key: bytes}``."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def _lookup(self, key: str) -> bytes:
        validate_store_key(key)
        with _LOCK:
            try:
                return _NAMESPACES[self.namespace][key]
            except KeyError:
                raise ObjectNotFound(key) from None

    def put(self, key: str, data: bytes) -> None:
        validate_store_key(key)
        value = bytes(data)
        with _LOCK:
            _NAMESPACES.setdefault(self.namespace, {})[key] = value

    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> int:
        """Reads the whole stream first (the medium is memory anyway), then stores it at once."""
        validate_store_key(key)
        data = b"".join(read_chunks(stream))
        self.put(key, data)
        return len(data)

    def get(self, key: str) -> bytes:
        return self._lookup(key)

    def iter_bytes(
        self, key: str, start: int = 0, length: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        check_range(start, length, chunk_size)
        data = self._lookup(key)
        end = range_end(start, length, len(data))
        chunks = (data[pos : min(pos + chunk_size, end)] for pos in range(start, end, chunk_size))
        return ChunkIterator(chunks, lambda: None)

    def size(self, key: str) -> int:
        return len(self._lookup(key))

    def delete(self, key: str) -> None:
        validate_store_key(key)
        with _LOCK:
            namespace = _NAMESPACES.get(self.namespace)
            if namespace is not None:
                namespace.pop(key, None)
                if not namespace:
                    del _NAMESPACES[self.namespace]
