"""Storage backends behind one small interface (``base.Backend``), one module per store type.

The rest of the code asks for a backend by store type and bucket through ``build_backend`` and
never branches on the type itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from mediastore.errors import RuleViolation
from stores.backends.base import Backend, ObjectNotFound, PresignNotSupported
from stores.backends.bucket import BucketStore, S3Params
from stores.backends.dictstore import DictStore
from stores.backends.filesystem import FilesystemStore
from stores.backends.hashdir import HashdirStore
from stores.backends.sqlitestore import SqliteStore
from stores.backends.zipstore import ZipStore
from stores.paths import resolve_store_path

__all__ = [
    "STORE_TYPES",
    "Backend",
    "BucketStore",
    "DictStore",
    "FilesystemStore",
    "HashdirStore",
    "ObjectNotFound",
    "PresignNotSupported",
    "S3Params",
    "SqliteStore",
    "ZipStore",
    "build_backend",
]

Constructor = Callable[[str, "S3Params | None"], Backend]


def _bucket_store(bucket: str, s3: S3Params | None) -> Backend:
    if s3 is None:
        raise RuleViolation("BucketStore needs an S3 configuration")
    return BucketStore(s3, bucket)


def _local(cls: type[FilesystemStore] | type[ZipStore] | type[SqliteStore]) -> Constructor:
    """A constructor for a store that lives at a path inside the storage root."""

    def construct(bucket: str, s3: S3Params | None) -> Backend:
        if s3 is not None:
            raise RuleViolation(f"{cls.__name__} does not use an S3 configuration")
        return cls(resolve_store_path(bucket), label=bucket)

    return construct


def _dict_store(bucket: str, s3: S3Params | None) -> Backend:
    if s3 is not None:
        raise RuleViolation("DictStore does not use an S3 configuration")
    if settings.MEDIASTORE_REDIS_URL:  # shared by every worker and replica, across hosts
        from stores.backends.redisstore import RedisDictStore

        ttl = settings.MEDIASTORE_RAM_TTL_SECONDS
        return RedisDictStore(bucket, url=settings.MEDIASTORE_REDIS_URL, ttl=ttl)
    # Files in this host's RAM (MEDIASTORE_RAM_DIR), shared by every worker process of the host.
    return DictStore(bucket, Path(settings.MEDIASTORE_RAM_DIR), ttl=settings.MEDIASTORE_RAM_TTL_SECONDS)


_CONSTRUCTORS: dict[str, Constructor] = {
    "BucketStore": _bucket_store,
    "FilesystemStore": _local(FilesystemStore),
    "HashdirStore": _local(HashdirStore),
    "ZipStore": _local(ZipStore),
    "SqliteStore": _local(SqliteStore),
    "DictStore": _dict_store,
}

STORE_TYPES: tuple[str, ...] = tuple(_CONSTRUCTORS)


def build_backend(store_type: str, bucket: str, s3: S3Params | None = None) -> Backend:
    """The backend for a store of ``store_type`` at ``bucket``. Cheap: no disk or network I/O.

    Raises RuleViolation for an unknown type, a local path escaping the storage root, or S3
    parameters missing (BucketStore) or given where they mean nothing (every other type).
    """
    try:
        construct = _CONSTRUCTORS[store_type]
    except KeyError:
        raise RuleViolation(f'type "{store_type}" not supported.') from None
    return construct(bucket, s3)
