"""Storage backends behind one small template-method base (``base.Backend``), one module per
store type, and the registry of store types.

Each backend class declares its type name (``type_name``), whether it needs an S3 endpoint
(``uses_s3``), whether it lives below the storage root (``in_storage_root``) and its bucket rules
(``normalize_bucket``, ``from_config``). Everything else that knows the store types is derived
from ``BACKENDS``: the model's choices (``type_choices``), the validation and the one "not
supported" sentence (``backend_class``), and ``build_backend``. The rest of the code asks for a
backend through ``build_backend`` (or ``StoreConfig.backend()``) and never branches on the type.
"""

from __future__ import annotations

from mediastore.errors import RuleViolation
from stores.backends.base import Backend, ObjectNotFound, PresignNotSupported, S3Params
from stores.backends.bucket import BucketStore
from stores.backends.dictstore import DictStore
from stores.backends.filesystem import FilesystemStore
from stores.backends.hashdir import HashdirStore
from stores.backends.local import LocalStore
from stores.backends.sqlitestore import SqliteStore
from stores.backends.zipstore import ZipStore

__all__ = [
    "BACKENDS",
    "LOCAL_STORE_TYPES",
    "PRESIGN_STORE_TYPES",
    "S3_STORE_TYPES",
    "STORE_TYPES",
    "Backend",
    "BucketStore",
    "DictStore",
    "FilesystemStore",
    "HashdirStore",
    "LocalStore",
    "ObjectNotFound",
    "PresignNotSupported",
    "S3Params",
    "SqliteStore",
    "ZipStore",
    "backend_class",
    "build_backend",
    "type_choices",
]

# In the order the choices have always had (the model's migrations list them so).
BACKENDS: tuple[type[Backend], ...] = (
    BucketStore,
    FilesystemStore,
    HashdirStore,
    ZipStore,
    SqliteStore,
    DictStore,
)
_BY_TYPE: dict[str, type[Backend]] = {cls.type_name: cls for cls in BACKENDS}

STORE_TYPES: tuple[str, ...] = tuple(_BY_TYPE)
# Stores at a path below the storage root, which no two configurations may share.
LOCAL_STORE_TYPES: tuple[str, ...] = tuple(t for t, cls in _BY_TYPE.items() if cls.in_storage_root)
S3_STORE_TYPES: tuple[str, ...] = tuple(t for t, cls in _BY_TYPE.items() if cls.uses_s3)
PRESIGN_STORE_TYPES: tuple[str, ...] = tuple(t for t, cls in _BY_TYPE.items() if cls.supports_presign)


def type_choices() -> list[tuple[str, str]]:
    """``(value, label)`` for the model field: ``("BucketStore", "Bucket")``, ..."""
    return [(name, name.removesuffix("Store")) for name in STORE_TYPES]


def backend_class(store_type: str) -> type[Backend]:
    """The backend class of ``store_type``; RuleViolation (the one "not supported" sentence) for
    any other name."""
    try:
        return _BY_TYPE[store_type]
    except KeyError:
        raise RuleViolation(f'type "{store_type}" not supported.') from None


def build_backend(store_type: str, bucket: str, s3: S3Params | None = None) -> Backend:
    """The backend for a store of ``store_type`` at ``bucket``. Cheap: no disk or network I/O.

    Raises RuleViolation for an unknown type, a local path escaping the storage root, or S3
    parameters missing (BucketStore) or given where they mean nothing (every other type).
    """
    cls = backend_class(store_type)
    if cls.uses_s3 and s3 is None:
        raise RuleViolation(f"{store_type} needs an S3 configuration")
    if not cls.uses_s3 and s3 is not None:
        raise RuleViolation(f"{store_type} does not use an S3 configuration")
    return cls.from_config(bucket, s3)
