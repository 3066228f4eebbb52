"""The cache that holds login-failure counters when there is no Redis: files shared by every worker.

Django's ``LocMemCache`` lives inside one process, so with several gunicorn workers each would count
on its own. ``FileBasedCache`` under ``MEDIASTORE_DATA_DIR`` is seen by every worker on the host,
but its ``add`` is check-then-write and its ``incr`` read-then-write, so two workers counting the
same key at the same moment could both write the same number. ``FileCache`` takes an exclusive
``flock`` on one lock file around those two operations, which makes counting exact between
processes (and threads) on one host.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache

LOCK_NAME = "counters.lock"  # not a *.djcache file, so clear() and culling leave it alone


class FileCache(FileBasedCache):
    """``FileBasedCache`` whose ``add`` and ``incr`` are atomic between processes."""

    def __init__(self, location: str, params: dict) -> None:
        super().__init__(location, params)
        self.lock_path = os.path.join(os.path.abspath(location), LOCK_NAME)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        # The directory as FileBasedCache makes it (mode 0700), also when a clear() removed it.
        os.makedirs(os.path.dirname(self.lock_path), mode=0o700, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        with self.exclusive():
            return super().add(key, value, timeout, version)

    def incr(self, key, delta=1, version=None) -> int:
        with self.exclusive():
            return super().incr(key, delta, version)
