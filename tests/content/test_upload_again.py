"""POST /api/upload for a pid that exists: repeats are safe, different mediadata is a conflict.

Regression: the pipeline's client (amplify-storage-utils' ``MediaStore.put``) posts the mediadata
without base64 first, to see whether it gets a presigned URL, and then again with base64; on any
store but a BucketStore the first post was 422 and the client failed.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata

import pytest
import requests

from media.models import Media
from tests.conftest import media_body
from tests.content.test_transfer import LOCAL_TYPES, PAYLOAD, raw_put, sha

pytestmark = pytest.mark.django_db


def post(api, mediadata: dict, data: bytes | None = None, **extra):
    body = {"mediadata": mediadata, **extra}
    if data is not None:
        body["base64"] = base64.b64encode(data).decode()
    return api.post("/api/upload", body)


@pytest.mark.parametrize("store_type", LOCAL_TYPES)
def test_the_pipeline_client_s_two_posts_store_the_bytes(api, id_types, store_for, store_type):
    mediadata = media_body("two-posts", store_config=store_for(store_type))
    first = post(api, mediadata)
    assert first.status_code == 200 and first.json() == {
        "status": "PENDING",
        "presigned_put": None,
        "pid": "two-posts",
    }
    second = post(api, mediadata, PAYLOAD, content_type="application/x-test")
    assert second.status_code == 200, second.content
    assert second.json() == {"status": "READY", "presigned_put": None, "pid": "two-posts"}
    media = api.get("/api/media/two-posts").json()
    assert (media["store_status"], media["size"], media["checksum"]) == ("READY", len(PAYLOAD), sha(PAYLOAD))
    assert media["content_type"] == "application/x-test"
    assert base64.b64decode(api.get("/api/download/two-posts").json()["base64"]) == PAYLOAD
    assert api.get("/api/media/two-posts/verify").json()["ok"] is True
    assert Media.objects.filter(pid="two-posts").count() == 1


def test_the_same_upload_twice_gives_one_media_and_changes_nothing(api, id_types, store_for):
    mediadata = media_body("twice", store_config=store_for("FilesystemStore"), tags=["a"], metadata={"k": 1})
    assert post(api, mediadata, PAYLOAD).status_code == 200
    before = api.get("/api/media/twice").json()
    again = post(api, mediadata, PAYLOAD)
    assert again.status_code == 200 and again.json()["status"] == "READY"
    assert api.get("/api/media/twice").json() == before  # same version, key, mark: nothing changed
    assert len(api.get("/api/media/twice/history").json()) == 1


def test_other_bytes_for_a_ready_media_are_409(api, id_types, store_for):
    mediadata = media_body("other-bytes", store_config=store_for("FilesystemStore"))
    assert post(api, mediadata, PAYLOAD).status_code == 200
    response = post(api, mediadata, PAYLOAD + b"!")
    assert response.status_code == 409
    assert "already has other bytes" in response.json()["detail"][0]["error"]
    # Without bytes: READY, nothing changes (MediaStore.put's first post when it is retried).
    again = post(api, mediadata)
    assert again.status_code == 200 and again.json() == {
        "status": "READY",
        "presigned_put": None,
        "pid": "other-bytes",
    }
    assert base64.b64decode(api.get("/api/download/other-bytes").json()["base64"]) == PAYLOAD


@pytest.mark.parametrize(
    "change, fields",
    [
        ({"metadata": {"k": 2}}, ["metadata"]),
        ({"tags": ["b"]}, ["tags"]),
        ({"pid_type": "doi"}, ["pid_type"]),
        ({"metadata": {}, "tags": []}, ["metadata", "tags"]),
    ],
)
def test_different_mediadata_is_409_naming_the_fields(api, id_types, store_for, change, fields):
    store = store_for("FilesystemStore")
    mediadata = media_body("10.1234/x", pid_type="local", store_config=store, metadata={"k": 1}, tags=["a"])
    assert post(api, mediadata).status_code == 200  # PENDING
    response = post(api, {**mediadata, **change}, PAYLOAD)
    assert response.status_code == 409, response.content
    assert response.json()["detail"][0]["fields"] == fields
    assert api.get("/api/media/10.1234/x").json()["store_status"] == "PENDING"


def test_another_store_is_a_difference(api, id_types, store_for):
    mediadata = media_body("moved-store", store_config=store_for("FilesystemStore"))
    assert post(api, mediadata).status_code == 200
    response = post(api, {**mediadata, "store_config": store_for("HashdirStore", "elsewhere")}, PAYLOAD)
    assert response.status_code == 409 and response.json()["detail"][0]["fields"] == ["store_config"]


def test_a_store_listed_by_the_api_is_accepted_back_unchanged(api, id_types, store_for):
    """storage-utils' MediaStore sends the first entry of GET /api/stores, pk and s3_url included."""
    assert post(api, media_body("listed-0", store_config=store_for("BucketStore"))).status_code == 200
    listed = api.get("/api/stores").json()
    assert listed and {"pk", "type", "bucket", "s3_url"} <= set(listed[0])
    for i, store in enumerate(listed, start=1):
        mediadata = media_body(f"listed-{i}", store_config=store)
        response = post(api, mediadata)
        assert response.status_code == 200, response.content
        if response.json()["presigned_put"] is not None:
            assert raw_put(response.json()["presigned_put"], PAYLOAD).status_code == 200
        else:
            assert post(api, mediadata, PAYLOAD).status_code == 200
        assert base64.b64decode(api.get(f"/api/download/listed-{i}").json()["base64"]) == PAYLOAD
        assert api.get(f"/api/media/listed-{i}").json()["store_config"]["pk"] == store["pk"]


def test_a_pending_bucket_upload_repeated_gets_a_url_again(api, id_types, store_for):
    mediadata = media_body("bucket-again", store_config=store_for("BucketStore"))
    first = post(api, mediadata).json()
    second = post(api, mediadata).json()
    assert first["status"] == second["status"] == "PENDING"
    assert second["presigned_put"] and second["presigned_put"].startswith("http://127.0.0.1")
    assert raw_put(second["presigned_put"], PAYLOAD).status_code == 200
    assert base64.b64decode(api.get("/api/download/bucket-again").json()["base64"]) == PAYLOAD
    assert post(api, mediadata, PAYLOAD).json()["status"] == "READY"  # a repeat with the same bytes


def test_base64_completes_a_pending_bucket_media_and_the_url_cannot_change_it(api, id_types, store_for):
    mediadata = media_body("bucket-b64", store_config=store_for("BucketStore"))
    url = post(api, mediadata).json()["presigned_put"]
    assert post(api, mediadata, PAYLOAD).json()["status"] == "READY"
    assert raw_put(url, b"late").status_code == 200
    fetched = requests.get(api.get("/api/download/url/bucket-b64").json()["presigned_get"], timeout=30)
    assert fetched.content == PAYLOAD


def test_a_declared_size_holds_for_the_second_post(api, id_types, store_for):
    mediadata = media_body("sized", store_config=store_for("FilesystemStore"))
    assert post(api, mediadata, size=len(PAYLOAD)).status_code == 200
    response = post(api, mediadata, PAYLOAD + b"!")
    assert response.status_code == 409 and f"but {len(PAYLOAD)} were declared" in response.content.decode()
    conflict = post(api, mediadata, PAYLOAD, size=5)
    assert conflict.status_code == 422  # base64 and size of the same request disagree
    other = post(api, mediadata, size=len(PAYLOAD) + 1)
    assert other.status_code == 409 and other.json()["detail"][0]["fields"] == ["size"]
    assert post(api, mediadata, PAYLOAD).json()["status"] == "READY"
    assert api.get("/api/media/sized").json()["checksum"] == "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()


def test_a_repeat_that_writes_the_pid_in_nfd_is_a_repeat(api, id_types, store_for):
    # Regression: the pid is stored in NFC, but the repeat was looked up as written, so
    # MediaStore.put of an NFD pid (macOS file names) got 409 "already exists" from its second
    # post on every store but a BucketStore, and a retried put got it on a BucketStore too.
    nfc = "caf\u00e9.roi"
    nfd = unicodedata.normalize("NFD", nfc)
    mediadata = media_body(nfd, store_config=store_for("FilesystemStore"))
    first = post(api, mediadata)
    assert first.status_code == 200 and first.json()["status"] == "PENDING"
    second = post(api, mediadata, PAYLOAD)
    assert second.status_code == 200, second.content
    assert second.json() == {"status": "READY", "presigned_put": None, "pid": nfc}
    again = post(api, mediadata, PAYLOAD)
    assert again.status_code == 200 and again.json()["status"] == "READY"
    assert post(api, mediadata, PAYLOAD + b"!").status_code == 409
    assert [m.pid for m in Media.objects.filter(pid__in=[nfc, nfd])] == [nfc]


@pytest.mark.parametrize(
    "created, repeated", [(1, True), (0, False), ([1], [True]), ({"a": False}, {"a": 0})]
)
def test_true_is_not_1_in_repeated_metadata(api, id_types, store_for, created, repeated):
    # Regression: Python's == takes True for 1, so a repeat with other metadata was answered 200.
    mediadata = media_body("bool-meta", store_config=store_for("FilesystemStore"), metadata={"k": created})
    assert post(api, mediadata, PAYLOAD).status_code == 200
    response = post(api, {**mediadata, "metadata": {"k": repeated}}, PAYLOAD)
    assert response.status_code == 409, response.content
    assert response.json()["detail"][0]["fields"] == ["metadata"]
    # The same number written another way is the same JSON.
    assert post(api, {**mediadata, "metadata": {"k": created}}, PAYLOAD).status_code == 200
