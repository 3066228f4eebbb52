"""S3 configurations and store configurations through HTTP."""

import pytest

from stores.models import S3Config, StoreConfig
from tests.conftest import error_message, media_body

pytestmark = pytest.mark.django_db

S3 = {"url": "http://s3.example.test:9000", "access_key": "AKIA", "secret_key": "very-secret"}


def test_s3cfg_create_never_returns_keys(api):
    response = api.post("/api/s3cfg", S3)
    assert response.status_code == 200
    body = response.json()
    assert body == {"pk": body["pk"], "url": S3["url"], "region": "us-east-1", "addressing_style": "path"}
    for path in ("/api/s3cfgs", f"/api/s3cfg/{body['pk']}"):
        text = api.get(path).content.decode()
        assert "very-secret" not in text and "AKIA" not in text


def test_s3cfg_idempotent_and_conflict(api):
    pk = api.post("/api/s3cfg", S3).json()["pk"]
    assert api.post("/api/s3cfg", S3).json()["pk"] == pk
    response = api.post("/api/s3cfg", {**S3, "secret_key": "other"})
    assert response.status_code == 409
    assert S3Config.objects.get().secret_key == "very-secret"


@pytest.mark.parametrize("url", ["", "s3.example.org", "ftp://x", "http://"])
def test_s3cfg_bad_url_is_422(api, url):
    assert api.post("/api/s3cfg", {**S3, "url": url}).status_code == 422


def test_s3cfg_get_put_delete(api):
    pk = api.post("/api/s3cfg", S3).json()["pk"]
    assert api.get("/api/s3cfg/999999").status_code == 404
    assert api.get("/api/s3cfg/999999").json() == {"detail": "S3Config '999999' not found"}
    response = api.put(f"/api/s3cfg/{pk}", {**S3, "secret_key": "rotated"})
    assert response.status_code == 204 and response.content == b""
    assert S3Config.objects.get(pk=pk).secret_key == "rotated"
    assert api.put("/api/s3cfg/999999", S3).status_code == 404
    other = api.post("/api/s3cfg", {**S3, "url": "http://other.test"}).json()["pk"]
    assert api.put(f"/api/s3cfg/{other}", S3).status_code == 409
    assert api.delete(f"/api/s3cfg/{other}").status_code == 204
    assert api.delete(f"/api/s3cfg/{other}").status_code == 404


def test_s3cfg_delete_refused_while_a_store_uses_it(api):
    pk = api.post("/api/s3cfg", S3).json()["pk"]
    api.post("/api/store?probe=false", {"type": "BucketStore", "bucket": "bkt1", "s3_url": S3["url"]})
    assert api.delete(f"/api/s3cfg/{pk}").status_code == 409
    assert S3Config.objects.filter(pk=pk).exists()


@pytest.mark.parametrize(
    "store_type,bucket",
    [
        ("FilesystemStore", "dir/a"),
        ("HashdirStore", "hashed"),
        ("ZipStore", "z/objects.zip"),
        ("SqliteStore", "db/objects.sqlite"),
        ("DictStore", "ram"),
    ],
)
def test_store_get_or_create_for_local_types(api, store_type, bucket):
    response = api.post("/api/store", {"type": store_type, "bucket": bucket})
    assert response.status_code == 200
    body = response.json()
    assert body == {"pk": body["pk"], "type": store_type, "bucket": bucket, "s3_url": ""}
    again = api.post("/api/store", {"type": store_type, "bucket": bucket, "s3_url": ""})
    assert again.json()["pk"] == body["pk"]
    assert StoreConfig.objects.count() == 1
    assert api.get(f"/api/store/{body['pk']}").json() == {
        **body,
        "default_ttl": None,
    }  # one store: with its lifetime
    assert api.get("/api/stores").json() == [body]


def test_bucket_store_needs_existing_s3cfg(api):
    response = api.post("/api/store", {"type": "BucketStore", "bucket": "b", "s3_url": "http://nowhere.test"})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "error": 'No S3Config with url="http://nowhere.test" found. '
                "Please create S3Config credentials for this url first"
            }
        ]
    }
    api.post("/api/s3cfg", S3)
    response = api.post(  # nothing listens at S3["url"]: not probed
        "/api/store?probe=false", {"type": "BucketStore", "bucket": "/bkt/some/prefix", "s3_url": S3["url"]}
    )
    assert response.status_code == 200
    assert response.json()["bucket"] == "bkt/some/prefix"
    assert response.json()["s3_url"] == S3["url"]


def test_unsupported_type_sentence(api):
    response = api.post("/api/store", {"type": "FtpStore", "bucket": "x"})
    assert response.status_code == 422
    assert response.json() == {"detail": [{"error": 'type "FtpStore" not supported.'}]}


def test_s3_url_on_local_type_is_422(api):
    api.post("/api/s3cfg", S3)
    response = api.post("/api/store", {"type": "FilesystemStore", "bucket": "x", "s3_url": S3["url"]})
    assert response.status_code == 422
    assert not StoreConfig.objects.exists()


def test_leading_slash_is_ignored(api):
    first = api.post("/api/store", {"type": "FilesystemStore", "bucket": "/data/x"}).json()
    second = api.post("/api/store", {"type": "FilesystemStore", "bucket": "data/x"}).json()
    assert first["bucket"] == "data/x" and first["pk"] == second["pk"]


@pytest.mark.parametrize("store_type", ["FilesystemStore", "HashdirStore", "ZipStore", "SqliteStore"])
@pytest.mark.parametrize(
    "bucket", ["../x", "a/../../etc", "/../../etc/passwd", "..", "", "/", "a\x00b", "a\\..\\b"]
)
def test_local_paths_cannot_leave_the_storage_root(api, store_type, bucket):
    response = api.post("/api/store", {"type": store_type, "bucket": bucket})
    assert response.status_code == 422, response.content
    assert not StoreConfig.objects.exists()


def test_symlink_out_of_the_root_is_refused(api, storage_root):
    (storage_root / "escape").symlink_to("/etc")
    response = api.post("/api/store", {"type": "FilesystemStore", "bucket": "escape"})
    assert "outside the storage root" in error_message(response)
    response = api.post("/api/store", {"type": "SqliteStore", "bucket": "escape/passwd"})
    assert response.status_code == 422


def test_store_delete(api, id_types, settings):
    settings.MEDIASTORE_TRASH_DAYS = 0  # with the bin: tests/content/test_trash.py
    pk = api.post("/api/store", {"type": "DictStore", "bucket": "tests"}).json()["pk"]
    api.post("/api/media", media_body("m1"))
    response = api.delete(f"/api/store/{pk}")
    assert response.status_code == 409
    assert api.delete("/api/media/m1").status_code == 204
    assert api.delete(f"/api/store/{pk}").status_code == 204
    assert api.get(f"/api/store/{pk}").status_code == 404
    assert api.get(f"/api/store/{pk}").json() == {"detail": f"StoreConfig '{pk}' not found"}


@pytest.mark.parametrize("url", ["http://[", "http://[::1", "http://a]b", "http://127.0.0.1:99999999"])
def test_malformed_s3_urls_are_422_not_500(api, url):
    """``urlsplit`` raised ValueError (an unclosed IPv6 bracket, a port out of range): a 500."""
    for path, body in [
        ("/api/s3cfg", {"url": url, "access_key": "a", "secret_key": "b"}),
        ("/api/store", {"type": "BucketStore", "bucket": "b", "s3_url": url}),
    ]:
        response = api.post(path, body)
        assert response.status_code == 422, (path, response.content[:200])
