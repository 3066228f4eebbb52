"""Fixtures of the content tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def ingest_stores(api, user, settings, tmp_path, s3_server, s3_bucket):
    """Identifier types, an S3 configuration and the stores; returns {store type: --store args}."""
    settings.MEDIASTORE_STORAGE_ROOT = str(tmp_path / "root")
    for name in ("local", "filename", "ext"):
        assert api.post("/api/identifier", {"name": name, "pattern": ""}).status_code == 200
    keys = {"url": s3_server.url, "access_key": s3_server.access_key, "secret_key": s3_server.secret_key}
    assert api.post("/api/s3cfg", keys).status_code == 200
    stores = {
        "FilesystemStore": {"type": "FilesystemStore", "bucket": "products"},
        "BucketStore": {"type": "BucketStore", "bucket": f"{s3_bucket}/in", "s3_url": s3_server.url},
    }
    for body in stores.values():
        assert api.post("/api/store", body).status_code == 200
    return {
        "FilesystemStore": ["--store", "FilesystemStore:products"],
        "BucketStore": ["--store", f"BucketStore:{s3_bucket}/in", "--s3-url", s3_server.url],
    }


@pytest.fixture
def s3cfg(api, s3_server):
    body = {"url": s3_server.url, "access_key": s3_server.access_key, "secret_key": s3_server.secret_key}
    assert api.post("/api/s3cfg", body).status_code == 200
    return s3_server


@pytest.fixture
def store_for(api, s3cfg, s3_bucket, storage_root, tmp_path):
    """store_for(type) -> a StoreConfigCreate body for a fresh store of that type."""

    def make(store_type: str, name: str = "products") -> dict:
        if store_type == "BucketStore":
            return {"type": store_type, "bucket": f"{s3_bucket}/{name}", "s3_url": s3cfg.url}
        if store_type == "ZipStore":
            return {"type": store_type, "bucket": f"{name}.zip"}
        if store_type == "SqliteStore":
            return {"type": store_type, "bucket": f"{name}.sqlite"}
        return {"type": store_type, "bucket": f"{name}-{tmp_path.name}"}

    return make
