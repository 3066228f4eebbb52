"""A queue in front of SQLite's single write lock, for the threads and processes of one host.

SQLite lets one connection write at a time. A writer that finds the lock taken does not wait in
line: its busy handler sleeps in growing steps (up to 100 ms) and tries again, and a newcomer that
arrives while it sleeps takes the lock first. Under many concurrent writers (gunicorn's gthread
workers, 32 requests at once) an unlucky one loses that race again and again, which made the
writes' p95 many times their median (docs/performance.md, issue 34 section, "SQLite writers in line").

Here a writer waits in line instead: first for its process's turn (a lock of the process, taken by
one thread at a time, handed to the longest waiter), then, as the one thread of its process that
asks, for an advisory ``flock`` on a file beside the database, which every process writing this
database on this host takes. Only then does it send ``BEGIN IMMEDIATE``, which finds SQLite's lock
free, unless a process that does not use this queue (the ``sqlite3`` shell, a backup) holds it, in
which case SQLite's own busy handler waits as before. Readers take no part: in WAL mode they go
on while a write is in progress.

The lock is advisory and only ever shortens waits: a process that ignores it is still kept
correct by SQLite's own locking.
"""

from __future__ import annotations

import collections
import fcntl
import os
import threading
import time
from pathlib import Path

#: Longest pause between two tries of the file lock by a process's waiting thread.
POLL_S = 0.001


class WriterQueueTimeout(Exception):
    """The writer waited its whole timeout for its turn."""


class HandOffLock:
    """A lock of one process that, when released, passes straight to the thread that has waited
    longest (``threading.Lock`` lets whichever thread runs next take it, so a thread may wait
    through many turns)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: collections.deque[threading.Lock] = collections.deque()

    def acquire(self, timeout: float) -> bool:
        """True once this thread holds the lock; False when ``timeout`` seconds passed first."""
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        if turn.acquire(timeout=max(timeout, 0)):
            return True
        with self._mutex:
            try:
                self._waiters.remove(turn)
            except ValueError:
                return True  # handed over between the timeout and here: ours after all
        return False

    @property
    def waiting(self) -> int:
        """How many threads wait for the lock now."""
        return len(self._waiters)

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # stays held, by the waiter now
            else:
                self._held = False


class WriterQueue:
    """The queue of the writers of one database file in this process."""

    def __init__(self, lock_path: Path) -> None:
        self.lock_path = lock_path
        self._turn = HandOffLock()
        self._fd: int | None = None
        self._pid = os.getpid()

    @property
    def waiting(self) -> int:
        """How many threads of this process wait in line now (the one holding its turn aside)."""
        return self._turn.waiting

    def _file(self) -> int:
        # flock() belongs to an open file: one opened before a fork would be shared by the
        # children, so each process opens its own.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self, timeout: float) -> None:
        """Wait for this writer's turn; raises ``WriterQueueTimeout`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        if not self._turn.acquire(timeout):
            raise WriterQueueTimeout(f"no turn to write within {timeout:g} s")
        try:
            fd = self._file()
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise WriterQueueTimeout(
                            f"another process held the write lock for {timeout:g} s"
                        ) from None
                    time.sleep(min(POLL_S, left))
        except BaseException:
            self._turn.release()
            raise

    def release(self) -> None:
        try:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._turn.release()


_queues: dict[str, WriterQueue] = {}
_queues_lock = threading.Lock()


def queue_for(database: Path) -> WriterQueue:
    """The one queue of this process for the database file ``database``."""
    lock_path = database.with_name(database.name + "-writers")
    key = str(lock_path)
    with _queues_lock:
        queue = _queues.get(key)
        if queue is None:
            queue = _queues[key] = WriterQueue(lock_path)
        return queue
