"""The registry of store types: which exist, how a configuration becomes a backend, and the rules
for buckets and S3 parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediastore.errors import RuleViolation
from stores.backends import (
    LOCAL_STORE_TYPES,
    PRESIGN_STORE_TYPES,
    S3_STORE_TYPES,
    STORE_TYPES,
    BucketStore,
    S3Params,
    backend_class,
    build_backend,
)
from stores.models import StoreType
from tests.stores.backends.conftest import LOCAL_BUCKETS

# -- build_backend ------------------------------------------------------------------------------


def test_store_types_are_the_six_of_the_contract() -> None:
    assert STORE_TYPES == (
        "BucketStore",
        "FilesystemStore",
        "HashdirStore",
        "ZipStore",
        "SqliteStore",
        "DictStore",
    )


def test_unknown_store_type_is_a_rule_violation(storage_root: Path) -> None:
    with pytest.raises(RuleViolation, match='type "TapeStore" not supported.'):
        build_backend("TapeStore", "x")


@pytest.mark.parametrize("kind", sorted(LOCAL_BUCKETS))
@pytest.mark.parametrize("bucket", ["../outside", "a/../../outside", "a\x00b", ""])
def test_local_store_paths_cannot_escape_the_root(kind: str, bucket: str, storage_root: Path) -> None:
    with pytest.raises(RuleViolation):
        build_backend(kind, bucket)


@pytest.mark.parametrize("kind", sorted(LOCAL_BUCKETS))
def test_local_stores_resolve_inside_the_root_and_build_lazily(kind: str, storage_root: Path) -> None:
    backend = build_backend(kind, "/leading/slash/store")

    assert list(storage_root.iterdir()) == []  # constructing touched nothing
    backend.put("k", b"v")
    assert (storage_root / "leading" / "slash" / "store").exists()
    assert build_backend(kind, "leading/slash/store").get("k") == b"v"


def test_a_symlinked_store_path_leading_out_is_refused(storage_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (storage_root / "sneaky").symlink_to(outside)

    with pytest.raises(RuleViolation):
        build_backend("FilesystemStore", "sneaky")
    with pytest.raises(RuleViolation):
        build_backend("ZipStore", "sneaky/store.zip")


def test_s3_parameters_belong_to_bucket_stores_only(storage_root: Path) -> None:
    params = S3Params(url="http://127.0.0.1:1", access_key="a", secret_key="s")
    with pytest.raises(RuleViolation):
        build_backend("BucketStore", "bucket")
    with pytest.raises(RuleViolation):
        build_backend("FilesystemStore", "files", params)
    with pytest.raises(RuleViolation):
        build_backend("DictStore", "ns", params)
    with pytest.raises(RuleViolation):
        build_backend("BucketStore", "/", params)


def test_bucket_store_construction_does_no_network_io() -> None:
    # Nothing listens on port 1; building must still succeed (the client is made on first use).
    backend = build_backend("BucketStore", "name/pre/fix", S3Params("http://127.0.0.1:1", "a", "s"))
    assert isinstance(backend, BucketStore)
    assert (backend.bucket, backend.prefix) == ("name", "pre/fix")


def test_s3_params_repr_hides_the_secret() -> None:
    assert "top-secret" not in repr(S3Params(url="http://x", access_key="a", secret_key="top-secret"))


def test_model_choices_keep_the_database_values_and_labels() -> None:
    """The values are what the database holds and the API accepts; the labels are those of the
    migrations (a change would need a migration)."""
    assert StoreType.choices == [
        ("BucketStore", "Bucket"),
        ("FilesystemStore", "Filesystem"),
        ("HashdirStore", "Hashdir"),
        ("ZipStore", "Zip"),
        ("SqliteStore", "Sqlite"),
        ("DictStore", "Dict"),
    ]
    assert StoreType.BUCKET == "BucketStore" and StoreType.DICT == "DictStore"


def test_each_type_is_declared_by_its_backend_class() -> None:
    for store_type in STORE_TYPES:
        assert backend_class(store_type).type_name == store_type
    assert LOCAL_STORE_TYPES == ("FilesystemStore", "HashdirStore", "ZipStore", "SqliteStore")
    assert S3_STORE_TYPES == PRESIGN_STORE_TYPES == ("BucketStore",)


@pytest.mark.parametrize("name", ["TapeStore", "bucketstore", "", "RedisDictStore", "LocalStore"])
def test_one_sentence_for_an_unsupported_type(name: str) -> None:
    """Only registered type names are store types: not a variant (Redis), not a base class."""
    with pytest.raises(RuleViolation) as info:
        backend_class(name)
    assert info.value.message == f'type "{name}" not supported.'


@pytest.mark.parametrize(
    ("store_type", "bucket", "expected"),
    [
        ("FilesystemStore", "/a/./b/", "a/b"),
        ("ZipStore", "z/store.zip", "z/store.zip"),
        ("DictStore", "/ns/x", "ns/x"),
        ("BucketStore", "/my-bucket/pre/fix/", "my-bucket/pre/fix"),
    ],
)
def test_each_backend_normalises_its_bucket(
    store_type: str, bucket: str, expected: str, storage_root
) -> None:
    assert backend_class(store_type).normalize_bucket(bucket) == expected


@pytest.mark.parametrize(
    ("store_type", "bucket"), [("BucketStore", "x"), ("BucketStore", "-bad/p"), ("DictStore", "a\x00b")]
)
def test_bucket_rules_refuse(store_type: str, bucket: str) -> None:
    with pytest.raises(RuleViolation):
        backend_class(store_type).normalize_bucket(bucket)
