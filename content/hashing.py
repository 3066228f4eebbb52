"""SHA-256 of the bytes that stream through a reader, computed beside what the caller does with them.

``HashingReader`` wraps a stream a backend reads: every chunk it hands out is hashed and counted.
A chunk of ``OVERLAP_MIN`` bytes or more is hashed on a helper thread while the caller writes it
(hashlib releases the GIL for large buffers, and so does ``os.write``), so a large upload costs
about the longer of hashing and writing instead of their sum. At most one chunk is in flight: the
next ``read`` and ``checksum`` wait for it, so the digest sees the chunks in order and the
checksum is that of exactly the bytes handed out. Chunks are ``bytes`` (immutable), so the
caller cannot change what is being hashed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

OVERLAP_MIN = 256 << 10  # smaller chunks are hashed in line: a hand-off costs more than it saves

_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None  # (process id, helpers): a fork gets its own


def _helpers() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="sha256"))
        return _pool[1]


def checksum_label(digest: hashlib._Hash) -> str:
    return f"sha256:{digest.hexdigest()}"


class HashingReader:
    """A read-only stream that hashes and counts what passes through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0
        self._pending: Future[None] | None = None

    def read(self, size: int = -1) -> bytes:
        self._wait()
        chunk = self.stream.read(size)
        self.size += len(chunk)
        if len(chunk) >= OVERLAP_MIN:
            self._pending = _helpers().submit(self.digest.update, chunk)
        else:
            self.digest.update(chunk)
        return chunk

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    @property
    def checksum(self) -> str:
        self._wait()
        return checksum_label(self.digest)
