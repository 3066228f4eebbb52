"""An operation that fails leaves nothing behind: no media, no bytes, and no store configuration
that it created on the fly.

Regression: a 502 upload to a missing bucket created no media but left its store configuration,
which then showed red on /status/.
"""

from __future__ import annotations

import base64

import pytest

from media.models import Media
from stores.models import StoreConfig
from tests.conftest import media_body

pytestmark = pytest.mark.django_db


def stores_named(bucket: str) -> int:
    return StoreConfig.objects.filter(bucket__startswith=bucket.split("/")[0]).count()


@pytest.mark.parametrize("with_bytes", [True, False], ids=["base64", "presigned"])
def test_an_upload_to_a_missing_bucket_leaves_no_store(api, id_types, s3cfg, with_bytes):
    store = {"type": "BucketStore", "bucket": "no-such-bucket-x/sub", "s3_url": s3cfg.url}
    body = {"mediadata": media_body("gone-1", store_config=store)}
    if with_bytes:
        body["base64"] = base64.b64encode(b"bytes").decode()
    response = api.post("/api/upload", body)
    assert response.status_code == 502, response.content
    assert not Media.objects.filter(pid="gone-1").exists()
    assert stores_named("no-such-bucket-x") == 0
    assert all(s["bucket"] != "no-such-bucket-x/sub" for s in api.get("/api/stores").json())


def test_a_refused_create_leaves_no_store(api, id_types, store_for):
    assert (
        api.post("/api/media", media_body("taken", store_config=store_for("FilesystemStore"))).status_code
        == 200
    )
    fresh = store_for("HashdirStore", "made-for-a-conflict")
    response = api.post("/api/media", media_body("taken", store_config=fresh))
    assert response.status_code == 409
    assert stores_named(fresh["bucket"]) == 0
    bulk = api.post(
        "/api/media/create",
        [
            media_body("ok-1", store_config=fresh),
            media_body("bad", pid_type="no-such-type", store_config=fresh),
        ],
    )
    assert bulk.status_code == 422
    assert stores_named(fresh["bucket"]) == 0 and not Media.objects.filter(pid="ok-1").exists()


def test_a_store_that_existed_before_stays(api, id_types, s3cfg):
    store = {"type": "BucketStore", "bucket": "no-such-bucket-y", "s3_url": s3cfg.url}
    assert api.post("/api/store?probe=false", store).status_code == 200  # made on purpose, by an admin
    body = {"mediadata": media_body("gone-2", store_config=store), "base64": base64.b64encode(b"x").decode()}
    assert api.post("/api/upload", body).status_code == 502
    assert stores_named("no-such-bucket-y") == 1
