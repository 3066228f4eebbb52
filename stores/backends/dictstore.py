"""DictStore: the RAM store for ephemeral intermediate products, shared by every worker of a host.

Without ``MEDIASTORE_REDIS_URL`` (see ``redisstore`` for the Redis variant that spans hosts) the
objects are files in a RAM-backed directory, ``settings.MEDIASTORE_RAM_DIR``: by default a folder
under ``/dev/shm`` (the system temp directory where there is none) whose name is derived from this
deployment's data directory and database, so every gunicorn worker process of the host sees every
object and two deployments on one host never see each other's.

Layout: ``<ram dir>/<encoded namespace>/`` per namespace (the store's bucket), and inside it the
hashed layout of ``HashdirStore``, so any key of any length is one file name. Writes go to a
temporary file that is renamed into place (``FilesystemStore``): a reader sees the old object or
the new one, never a mix, and keeps the version it opened even if it is replaced or deleted while
it reads.

With ``ttl`` (``MEDIASTORE_RAM_TTL_SECONDS``) an object expires ``ttl`` seconds after it was
written, as in Redis: expired objects are never found, are removed when looked up, and a sweep
(at most once a minute per host, run by a write) removes expired objects of every namespace and
temporary files left by workers killed mid-upload. Removal happens under a per-namespace file lock
that the rename of a new object also takes, so a sweep never removes an object written a moment
after it looked.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from mediastore.errors import RuleViolation
from stores.backends.base import Backend, ObjectNotFound, S3Params, name_bucket
from stores.backends.filesystem import TEMP_PREFIX
from stores.backends.hashdir import HashdirStore, encode_filename
from stores.backends.local import store_failure

logger = logging.getLogger(__name__)

LOCK_NAME = ".lock"
SWEEP_STAMP = ".swept"
SWEEP_SECONDS = 60
# A temporary file untouched this long belongs to an upload whose worker died; it is removed.
STALE_TEMP_SECONDS = 6 * 3600


class DictStore(HashdirStore):
    """One namespace of the host-wide RAM store under ``root``. No presigned URLs, no etag.

    Construction does no I/O; the first use creates ``root`` (mode 0700) and refuses it when it
    belongs to another user (``/dev/shm`` is writable by everyone).
    """

    type_name = "DictStore"
    kind = "RAM store"
    in_storage_root = False  # its directory is under MEDIASTORE_RAM_DIR, named by a hash
    durable_names = False  # RAM: a power cut empties it whatever is synced

    def __init__(self, namespace: str, root: Path, ttl: int | None = None) -> None:
        if not namespace:
            raise RuleViolation("a DictStore needs a non-empty namespace (bucket)")
        if ttl is not None and ttl < 1:
            raise ValueError(f"ttl must be at least 1 second or None, got {ttl}")
        self.root = Path(root)
        digest = hashlib.sha256(namespace.encode("utf-8", "surrogatepass")).hexdigest()
        super().__init__(self.root / encode_filename(namespace, digest), label=namespace)
        self.namespace = namespace
        self.ttl = ttl

    @classmethod
    def normalize_bucket(cls, bucket: str) -> str:
        """A namespace name, not a path."""
        return name_bucket(bucket)

    @classmethod
    def from_config(cls, bucket: str, s3: S3Params | None) -> Backend:
        """Redis when ``MEDIASTORE_REDIS_URL`` is set (shared by every worker and replica, across
        hosts), else files in this host's RAM (``MEDIASTORE_RAM_DIR``, shared by its workers)."""
        if settings.MEDIASTORE_REDIS_URL:
            from stores.backends.redisstore import RedisDictStore  # imports redis only when used

            return RedisDictStore.from_config(bucket, s3)
        return cls(bucket, Path(settings.MEDIASTORE_RAM_DIR), ttl=settings.MEDIASTORE_RAM_TTL_SECONDS)

    # -- where objects live ------------------------------------------------------------------

    def _check_root(self, key: str) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.stat(self.root)
        except OSError as err:
            raise self._error("reach", key, err) from None
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            logger.error("RAM store directory %s is not a directory owned by this user", self.root)
            reason = "its directory (MEDIASTORE_RAM_DIR) belongs to another user"
            raise store_failure(self.kind, self.label, "reach", key, reason)

    def _path(self, key: str) -> Path:
        self._check_root(key)
        return super()._path(key)

    @contextlib.contextmanager
    def _locked(self, directory: Path) -> Iterator[None]:
        """The namespace lock of ``directory``: held to rename an object into place or remove it."""
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _commit(self, tmp_name: str, path: Path) -> None:
        with self._locked(self.directory):
            os.replace(tmp_name, path)

    # -- expiry ------------------------------------------------------------------------------

    def _expired(self, info: os.stat_result, now: float | None = None) -> bool:
        return self.ttl is not None and (time.time() if now is None else now) >= info.st_mtime + self.ttl

    def _purge(self, path: Path, directory: Path) -> None:
        """Remove ``path`` if it is still expired once the lock is held. Best effort: a failure
        leaves the file to the next sweep (readers already treat it as absent)."""
        with contextlib.suppress(OSError), self._locked(directory):
            if self._expired(os.stat(path, follow_symlinks=False)):
                os.unlink(path)

    def _open(self, key: str) -> BinaryIO:
        handle = super()._open(key)
        try:
            info = os.fstat(handle.fileno())
        except OSError as err:
            handle.close()
            raise self._error("read", key, err) from None
        if self._expired(info):
            handle.close()
            self._purge(self._path(key), self.directory)
            raise ObjectNotFound(key)
        return handle

    def sweep(self, now: float | None = None) -> None:
        """Remove expired objects of every namespace under ``root`` and stale temporary files."""
        now = time.time() if now is None else now
        try:
            namespaces = [entry for entry in os.scandir(self.root) if entry.is_dir(follow_symlinks=False)]
        except OSError:
            return
        for namespace in namespaces:
            directory = Path(namespace.path)
            for dirpath, _dirs, names in os.walk(directory):
                for name in names:
                    if name == LOCK_NAME:
                        continue
                    path = Path(dirpath) / name
                    try:
                        info = os.stat(path, follow_symlinks=False)
                    except OSError:
                        continue
                    if name.startswith(TEMP_PREFIX):
                        if now - info.st_mtime >= STALE_TEMP_SECONDS:
                            with contextlib.suppress(OSError):
                                os.unlink(path)
                    elif self._expired(info, now):
                        self._purge(path, directory)

    def _maybe_sweep(self) -> None:
        """Sweep when nobody on this host has in the last SWEEP_SECONDS (one sweeper at a time)."""
        try:
            fd = os.open(self.root / SWEEP_STAMP, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            now = time.time()
            if now - os.fstat(fd).st_mtime < SWEEP_SECONDS:  # a new stamp counts as a sweep
                return
            os.utime(fd, (now, now))
            self.sweep(now)
        except OSError:
            return  # another process is sweeping, or the stamp is unusable: skip this round
        finally:
            os.close(fd)

    # -- writing -----------------------------------------------------------------------------

    def _put(self, key: str, data: bytes) -> None:
        super()._put(key, data)
        self._maybe_sweep()

    def _put_stream(self, key: str, stream: BinaryIO, size: int | None) -> int:
        written = super()._put_stream(key, stream, size)
        self._maybe_sweep()
        return written

    # -- reading -----------------------------------------------------------------------------

    def _size(self, key: str) -> int:
        with self._open(key) as handle, self._failing("read", key):
            return os.fstat(handle.fileno()).st_size
