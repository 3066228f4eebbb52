"""Bytes through HTTP for every store type: base64, streaming, presigned URLs, integrity, moves.

S3 is moto's server on a loopback port; presigned URLs are fetched with a real HTTP client.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from media.models import Media
from stores.backends import PRESIGN_STORE_TYPES, STORE_TYPES
from tests.conftest import media_body

pytestmark = pytest.mark.django_db

# Every store type, and those that keep bytes on this server (no presigned URLs).
ALL_TYPES = list(STORE_TYPES)
LOCAL_TYPES = [t for t in STORE_TYPES if t not in PRESIGN_STORE_TYPES]
PAYLOAD = os.urandom(300_000) + b"tail"


def upload(api, pid, store, data=PAYLOAD, **extra):
    body = {
        "mediadata": media_body(pid, store_config=store),
        "base64": base64.b64encode(data).decode(),
        **extra,
    }
    return api.post("/api/upload", body)


def backend_of(pid):
    media = Media.objects.select_related("store_config__s3cfg").get(pid=pid)
    return media.store_config.backend(), media.store_key


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("store_type", ALL_TYPES)
def test_base64_round_trip_and_delete(api, id_types, store_for, store_type, settings):
    settings.MEDIASTORE_TRASH_DAYS = 0  # deletes are final (tests/content/test_trash.py: the bin)
    response = upload(api, "10.1234/p.1", store_for(store_type), content_type="image/png")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "READY", "presigned_put": None, "pid": "10.1234/p.1"}
    media = api.get("/api/media/10.1234/p.1").json()
    assert media["store_status"] == "READY" and media["version"] == "1"
    assert media["size"] == len(PAYLOAD) and media["checksum"] == sha(PAYLOAD)
    assert media["content_type"] == "image/png"

    download = api.get("/api/download/10.1234/p.1").json()
    assert base64.b64decode(download["base64"]) == PAYLOAD
    assert download["mediadata"]["pid"] == "10.1234/p.1" and download["presigned_get"] == ""

    content = api.get("/api/media/10.1234/p.1/content")
    assert content.status_code == 200
    assert b"".join(content.streaming_content) == PAYLOAD
    assert content["Content-Length"] == str(len(PAYLOAD))
    assert content["Content-Type"] == "image/png"
    assert content["ETag"] == f'"{hashlib.sha256(PAYLOAD).hexdigest()}"'

    assert api.get("/api/media/10.1234/p.1/verify").json()["ok"] is True

    backend, key = backend_of("10.1234/p.1")
    assert backend.get(key) == PAYLOAD
    assert api.delete("/api/media/10.1234/p.1").status_code == 204
    assert not backend.exists(key)


@pytest.mark.parametrize("store_type", ALL_TYPES)
def test_streaming_upload_round_trip(api, id_types, store_for, store_type):
    assert api.post("/api/media", media_body("s1", store_config=store_for(store_type))).status_code == 200
    response = api.client.put(
        "/api/media/s1/content",
        data=PAYLOAD,
        content_type="application/x-netcdf",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (
        body["store_status"] == "READY" and body["size"] == len(PAYLOAD) and body["checksum"] == sha(PAYLOAD)
    )
    assert body["version"] == "2"
    content = api.get("/api/media/s1/content")
    assert b"".join(content.streaming_content) == PAYLOAD
    assert content["Content-Type"] == "application/x-netcdf"
    # replacing the bytes
    api.client.put(
        "/api/media/s1/content",
        data=b"short",
        content_type="text/plain",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert base64.b64decode(api.get("/api/download/s1").json()["base64"]) == b"short"


@pytest.mark.parametrize("store_type", ["FilesystemStore", "ZipStore", "BucketStore"])
@pytest.mark.parametrize(
    "header,status,expected",
    [
        ("bytes=100-199", 206, PAYLOAD[100:200]),
        ("bytes=299990-", 206, PAYLOAD[299990:]),
        ("bytes=-4", 206, b"tail"),
        ("bytes=0-0", 206, PAYLOAD[:1]),
        ("bytes=299000-999999999", 206, PAYLOAD[299000:]),
        ("bytes=0-1,5-6", 200, PAYLOAD),
        ("items=0-1", 200, PAYLOAD),
    ],
    # Named by the header, not the random bytes: pytest-xdist's workers must collect the same ids.
    ids=lambda value: value if isinstance(value, str) else str(value) if isinstance(value, int) else "bytes",
)
def test_range_requests(api, id_types, store_for, store_type, header, status, expected):
    upload(api, "r1", store_for(store_type))
    response = api.get("/api/media/r1/content", headers={"Range": header})
    assert response.status_code == status
    assert b"".join(response.streaming_content) == expected
    assert response["Content-Length"] == str(len(expected))
    if status == 206:
        first = (
            len(PAYLOAD) - len(expected) if header.startswith("bytes=-") else int(header[6:].split("-")[0])
        )
        assert response["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(PAYLOAD)}"


def test_range_past_the_end_is_416(api, id_types, store_for):
    upload(api, "r1", store_for("FilesystemStore"))
    response = api.get("/api/media/r1/content", headers={"Range": f"bytes={len(PAYLOAD)}-"})
    assert response.status_code == 416
    assert "is outside the" in response.json()["detail"]
    assert response["Content-Range"] == f"bytes */{len(PAYLOAD)}"


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-" + "9" * 5000,
        "bytes=" + "1" * 5000 + "-",
        "bytes=-" + "9" * 5000,
        "bytes=0-" + "0" * 21,
    ],
    ids=["last-5000-digits", "first-5000-digits", "suffix-5000-digits", "21-digits"],
)
def test_absurd_range_positions_are_416(api, id_types, store_for, header):
    """Regression: `Range: bytes=0-<5,000 digits>` was a 500 (Python's integer string conversion
    limit); positions longer than any size could need are refused like ranges past the end."""
    upload(api, "r1", store_for("FilesystemStore"))
    response = api.get("/api/media/r1/content", headers={"Range": header})
    assert response.status_code == 416
    assert "is outside the" in response.json()["detail"]
    assert response["Content-Range"] == f"bytes */{len(PAYLOAD)}"


def test_a_last_position_of_20_digits_is_clipped_to_the_end(api, id_types, store_for):
    """The digit bound leaves every 64-bit position usable (fails if the bound were below 20)."""
    upload(api, "r1", store_for("FilesystemStore"))
    response = api.get("/api/media/r1/content", headers={"Range": "bytes=299000-" + "9" * 20})
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == PAYLOAD[299000:]
    assert response["Content-Range"] == f"bytes 299000-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"


def test_suffix_range_of_empty_content_is_416(api, id_types, store_for):
    """Regression: `bytes=-5` on an empty object answered 206 with `Content-Range: bytes 0--1/0`."""
    created = api.post("/api/media", media_body("r0", store_config=store_for("FilesystemStore")))
    assert created.status_code == 200
    headers = {"Authorization": f"Bearer {api.token}"}
    stored = api.client.put("/api/media/r0/content", data=b"", CONTENT_LENGTH="0", headers=headers)
    assert stored.status_code == 200, stored.content
    response = api.get("/api/media/r0/content", headers={"Range": "bytes=-5"})
    assert response.status_code == 416
    assert "is outside the" in response.json()["detail"]
    assert response["Content-Range"] == "bytes */0"


def test_if_none_match_is_304(api, id_types, store_for):
    upload(api, "e1", store_for("FilesystemStore"))
    etag = api.get("/api/media/e1/content")["ETag"]
    assert api.get("/api/media/e1/content", headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize(
    ("header", "status"),
    [('"other", {etag}', 304), ("W/{etag}", 304), ("*", 304), ('"other"', 200), ('W/"other", "x"', 200)],
)
def test_if_none_match_takes_lists_weak_tags_and_star(api, id_types, store_for, header, status):
    """Regression: the header was compared with the ETag as one string, so a list of tags or a weak
    tag never matched."""
    upload(api, "e2", store_for("FilesystemStore"))
    etag = api.get("/api/media/e2/content")["ETag"]
    response = api.get("/api/media/e2/content", headers={"If-None-Match": header.format(etag=etag)})
    assert response.status_code == status


@pytest.mark.parametrize("bad", ["abc", "ab!c", "YWJj\n", "YWJj====", "  YWJj", "é"])
def test_invalid_base64_is_422_and_creates_nothing(api, id_types, store_for, bad):
    body = {"mediadata": media_body("b1", store_config=store_for("FilesystemStore")), "base64": bad}
    response = api.post("/api/upload", body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["error"].startswith("base64 is invalid")
    assert not Media.objects.exists()


def test_backend_failure_is_502_and_creates_nothing(api, id_types, s3cfg):
    store = {"type": "BucketStore", "bucket": "no-such-bucket-here", "s3_url": s3cfg.url}
    response = upload(api, "f1", store)
    assert response.status_code == 502
    assert "does not exist" in response.json()["detail"]
    assert s3cfg.secret_key not in response.content.decode()
    assert not Media.objects.exists()


def test_unreachable_endpoint_is_502_without_secrets(api, id_types):
    from tests.support.ports import free_port

    url = f"http://127.0.0.1:{free_port()}"
    api.post("/api/s3cfg", {"url": url, "access_key": "AK", "secret_key": "s3cr3t-value"})
    response = upload(api, "f1", {"type": "BucketStore", "bucket": "bkt", "s3_url": url})
    assert response.status_code == 502
    assert "unreachable" in response.json()["detail"] and "s3cr3t-value" not in response.content.decode()
    assert not Media.objects.exists()


def test_presigned_put_then_complete(api, id_types, store_for):
    store = store_for("BucketStore")
    response = api.post("/api/upload", {"mediadata": media_body("p1", store_config=store)})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "PENDING" and body["presigned_put"].startswith("http://127.0.0.1")
    assert api.post("/api/upload/p1/complete").status_code == 409  # nothing uploaded yet
    assert api.get("/api/download/p1").status_code == 409
    assert requests.put(body["presigned_put"], data=PAYLOAD, timeout=30).status_code == 200
    completed = api.post("/api/upload/p1/complete").json()
    assert completed["store_status"] == "READY" and completed["checksum"] == sha(PAYLOAD)
    assert completed["size"] == len(PAYLOAD)
    url = api.get("/api/download/url/p1").json()["presigned_get"]
    fetched = requests.get(url, timeout=30)
    assert fetched.status_code == 200 and fetched.content == PAYLOAD


def presigned_upload(api, pid, store, **extra):
    response = api.post("/api/upload", {"mediadata": media_body(pid, store_config=store), **extra})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "PENDING"
    return response.json()["presigned_put"]


def raw_put(url: str, data: bytes) -> requests.Response:
    """A plain HTTP PUT, as curl -T would send it (no proxies from the environment)."""
    with requests.Session() as session:
        session.trust_env = False
        return session.put(url, data=data, timeout=30)


@pytest.mark.parametrize("completion", ["complete", "download"])
def test_a_presigned_url_cannot_change_the_bytes_after_completion(api, id_types, store_for, completion):
    """Regression: the URL kept working after completion and overwrote the READY bytes in place:
    the media kept its first checksum, downloads returned the other bytes, verify failed."""
    url = presigned_upload(api, f"fin-{completion}", store_for("BucketStore"))
    pid = f"fin-{completion}"
    assert raw_put(url, PAYLOAD).status_code == 200
    if completion == "complete":
        assert api.post(f"/api/upload/{pid}/complete").status_code == 200
    else:  # the pipeline never calls complete: the first download completes it
        assert base64.b64decode(api.get(f"/api/download/{pid}").json()["base64"]) == PAYLOAD
    served_key = Media.objects.get(pid=pid).store_key
    assert served_key not in urlsplit(url).path  # the URL's key is not the served one

    assert raw_put(url, b"overwritten after completion").status_code == 200  # S3 still takes it
    media = api.get(f"/api/media/{pid}").json()
    assert (media["size"], media["checksum"]) == (len(PAYLOAD), sha(PAYLOAD))
    assert base64.b64decode(api.get(f"/api/download/{pid}").json()["base64"]) == PAYLOAD
    fetched = requests.get(api.get(f"/api/download/url/{pid}").json()["presigned_get"], timeout=30)
    assert fetched.content == PAYLOAD
    assert api.get(f"/api/media/{pid}/verify").json()["ok"] is True


def test_presigned_upload_into_a_missing_bucket_is_502_and_creates_nothing(api, id_types, s3cfg):
    """Regression: the URL was handed out (PENDING) although the bucket did not exist, so no PUT
    to it could ever work."""
    store = {"type": "BucketStore", "bucket": "no-such-bucket-here/sub", "s3_url": s3cfg.url}
    response = api.post("/api/upload", {"mediadata": media_body("nb1", store_config=store)})
    assert response.status_code == 502
    assert response.json()["detail"] == f"S3 bucket 'no-such-bucket-here' does not exist at {s3cfg.url}"
    assert not Media.objects.filter(pid="nb1").exists()
    assert api.get("/api/media/nb1").status_code == 404


def test_declared_size_is_signed_into_the_url_and_checked_at_complete(api, id_types, store_for):
    """Regression: complete accepted an object of any size; now a declared size must be met."""
    url = presigned_upload(api, "ds1", store_for("BucketStore"), size=len(PAYLOAD))
    # S3 itself refuses a PUT of another length: Content-Length is a signed header of the URL.
    signed = parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0].split(";")
    assert "content-length" in signed
    pending = api.get("/api/media/ds1").json()
    assert pending["store_status"] == "PENDING" and pending["size"] == len(PAYLOAD)

    # moto does not check signatures: a wrong-sized object arrives, and complete refuses it.
    assert raw_put(url, PAYLOAD + b"!").status_code == 200
    response = api.post("/api/upload/ds1/complete")
    assert response.status_code == 409
    assert response.json()["detail"][0]["error"].startswith(
        f"the object uploaded for media 'ds1' has {len(PAYLOAD) + 1} bytes, but {len(PAYLOAD)} were declared"
    )
    assert api.get("/api/download/ds1").status_code == 409  # a download does not complete it either
    assert api.get("/api/media/ds1").json()["store_status"] == "PENDING"

    assert raw_put(url, PAYLOAD).status_code == 200
    completed = api.post("/api/upload/ds1/complete").json()
    assert completed["store_status"] == "READY"
    assert completed["size"] == len(PAYLOAD) and completed["checksum"] == sha(PAYLOAD)
    fetched = requests.get(api.get("/api/download/url/ds1").json()["presigned_get"], timeout=30)
    assert fetched.content == PAYLOAD


def test_an_empty_object_does_not_complete_a_declared_upload(api, id_types, store_for):
    """Regression: an upload gone wrong (an empty body) became READY with size 0."""
    url = presigned_upload(api, "ds2", store_for("BucketStore"), size=5)
    assert raw_put(url, b"").status_code == 200
    response = api.post("/api/upload/ds2/complete")
    assert response.status_code == 409 and "has 0 bytes, but 5 were declared" in response.content.decode()
    assert api.get("/api/media/ds2").json()["store_status"] == "PENDING"
    # Without a declared size an empty object is a legitimate empty file.
    url = presigned_upload(api, "ds3", store_for("BucketStore"))
    assert "content-length" not in parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0]
    assert raw_put(url, b"").status_code == 200
    completed = api.post("/api/upload/ds3/complete").json()
    assert completed["store_status"] == "READY" and completed["size"] == 0


def test_declared_size_with_base64_must_match(api, id_types, store_for):
    response = upload(api, "ds4", store_for("FilesystemStore"), data=b"hello", size=6)
    assert response.status_code == 422
    assert response.json()["detail"][0]["error"] == (
        "base64 decodes to 5 bytes, but size says 6; nothing was stored"
    )
    assert not Media.objects.filter(pid="ds4").exists()
    assert upload(api, "ds4", store_for("FilesystemStore"), data=b"hello", size=5).status_code == 200
    assert api.get("/api/media/ds4").json()["size"] == 5


def test_declared_size_must_be_a_whole_number_of_bytes(api, id_types, store_for):
    body = {"mediadata": media_body("ds5", store_config=store_for("BucketStore")), "size": -1}
    assert api.post("/api/upload", body).status_code == 422
    assert not Media.objects.filter(pid="ds5").exists()


def test_download_of_pending_completes_it(api, id_types, store_for):
    body = api.post(
        "/api/upload", {"mediadata": media_body("p2", store_config=store_for("BucketStore"))}
    ).json()
    requests.put(body["presigned_put"], data=b"hello", timeout=30)
    assert base64.b64decode(api.get("/api/download/p2").json()["base64"]) == b"hello"
    assert api.get("/api/media/p2").json()["store_status"] == "READY"


@pytest.mark.parametrize("store_type", LOCAL_TYPES)
def test_presigned_urls_on_non_s3_stores(api, id_types, store_for, store_type):
    """An upload without base64 creates the media PENDING with no URL (the pipeline's client then
    sends the bytes as base64); a presigned download URL is 422."""
    response = api.post("/api/upload", {"mediadata": media_body("n1", store_config=store_for(store_type))})
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "PENDING", "presigned_put": None, "pid": "n1"}
    assert api.get("/api/media/n1").json()["store_status"] == "PENDING"
    upload(api, "n2", store_for(store_type))
    response = api.get("/api/download/url/n2")
    assert response.status_code == 422
    assert "only available for BucketStore" in response.json()["detail"][0]["error"]


def test_bulk_download_urls(api, id_types, store_for):
    upload(api, "s3a", store_for("BucketStore"))
    upload(api, "loc", store_for("FilesystemStore"))
    api.post("/api/media", media_body("pend", store_config=store_for("BucketStore")))
    results = api.post("/api/download/urls", ["s3a", "loc", "missing", "pend"]).json()
    assert requests.get(results[0]["presigned_get"], timeout=30).content == PAYLOAD
    assert [r.get("error") for r in results[1:]] == ["ValidationError", "NotFound", "Conflict"]
    assert results[2] == {"pid": "missing", "error": "NotFound", "msg": "Media 'missing' not found"}
    assert api.post("/api/download/urls").json() == []


def test_bytes_never_stored_are_409(api, id_types, store_for):
    api.post("/api/media", media_body("x1", store_config=store_for("FilesystemStore")))
    for path in (
        "/api/download/x1",
        "/api/media/x1/content",
        "/api/media/x1/verify",
        "/api/upload/x1/complete",
    ):
        response = api.request("POST" if path.endswith("complete") else "GET", path)
        assert response.status_code == 409, path
    assert api.get("/api/download/nope").status_code == 404
    assert api.get("/api/media/nope/content").status_code == 404


def test_verify_detects_changed_and_missing_bytes(api, id_types, store_for):
    upload(api, "v1", store_for("FilesystemStore"))
    backend, key = backend_of("v1")
    backend.put(key, PAYLOAD[:-1] + b"X")
    result = api.get("/api/media/v1/verify").json()
    assert result["ok"] is False and result["checksum"] != result["expected_checksum"]
    backend.delete(key)
    result = api.get("/api/media/v1/verify").json()
    assert result == {**result, "ok": False, "missing": True}
    assert api.get("/api/download/v1").status_code == 502


def test_json_body_over_the_limit_is_413(api, id_types, store_for, settings):
    settings.MEDIASTORE_MAX_UPLOAD_MB = 1
    response = upload(api, "big", store_for("FilesystemStore"), data=os.urandom(1_000_000))
    assert response.status_code == 413
    assert "MEDIASTORE_MAX_UPLOAD_MB" in response.json()["detail"]
    assert not Media.objects.exists()


def test_more_than_django_default_limit_is_accepted(api, id_types, store_for):
    data = os.urandom(4 * 1024 * 1024)  # base64 of this is over Django's 2.5 MB default
    assert upload(api, "big", store_for("FilesystemStore"), data=data).status_code == 200
    assert base64.b64decode(api.get("/api/download/big").json()["base64"]) == data


def test_delete_with_failing_backend_deletes_the_row_and_logs(
    api, id_types, store_for, s3cfg, s3_bucket, caplog, settings
):
    """Bytes were deleted first inside the row's transaction: a crash between the two left a
    READY row without bytes. Now the row goes first; bytes the store cannot remove are logged
    (collect_orphans finds them later)."""
    settings.MEDIASTORE_TRASH_DAYS = 0  # deletes are final (the bin's purge: tests/content/test_trash.py)
    upload(api, "d1", store_for("BucketStore"))
    client = s3cfg.client()
    for obj in client.list_objects_v2(Bucket=s3_bucket).get("Contents", []):
        client.delete_object(Bucket=s3_bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=s3_bucket)
    response = api.delete("/api/media/d1")
    assert response.status_code == 204
    assert not Media.objects.filter(pid="d1").exists()
    assert "could not be removed" in caplog.text


@pytest.mark.parametrize("source,target", [("FilesystemStore", "BucketStore"), ("BucketStore", "ZipStore")])
def test_moving_a_ready_media_copies_verifies_and_removes_the_old_copy(
    api, id_types, store_for, source, target
):
    upload(api, "m1", store_for(source))
    old_backend, old_key = backend_of("m1")
    new_store = store_for(target, "moved")
    assert api.patch("/api/media/m1", {"store_config": new_store}).status_code == 204
    media = api.get("/api/media/m1").json()
    assert media["store_config"]["type"] == target and media["checksum"] == sha(PAYLOAD)
    assert base64.b64decode(api.get("/api/download/m1").json()["base64"]) == PAYLOAD
    assert not old_backend.exists(old_key)
    assert api.get("/api/media/m1/verify").json()["ok"] is True


def test_failed_move_changes_nothing(api, id_types, store_for, s3cfg):
    upload(api, "m1", store_for("FilesystemStore"))
    backend, key = backend_of("m1")
    broken = {"type": "BucketStore", "bucket": "no-such-bucket-here", "s3_url": s3cfg.url}
    response = api.patch("/api/media/m1", {"store_config": broken})
    assert response.status_code == 502
    media = Media.objects.get(pid="m1")
    assert media.store_config.type == "FilesystemStore" and media.store_key == key and media.version == 1
    assert backend.get(key) == PAYLOAD
    bulk = api.patch("/api/media/update", {"pids": ["m1"], "medias": [{"store_config": broken}]}).json()
    assert bulk["failures"][0]["error"] == "StorageError"


def test_upload_with_existing_pid_is_409_and_writes_no_bytes(api, id_types, store_for):
    store = store_for("FilesystemStore")
    upload(api, "dup", store)
    response = upload(api, "dup", store, data=b"other")
    assert response.status_code == 409
    assert base64.b64decode(api.get("/api/download/dup").json()["base64"]) == PAYLOAD
    assert Media.objects.count() == 1


# --- nothing outside the storage root can be read --------------------------------------------


@pytest.mark.parametrize("store_type", ["FilesystemStore", "HashdirStore", "ZipStore", "SqliteStore"])
def test_no_door_reads_files_outside_the_storage_root(api, id_types, store_type, settings, tmp_path):
    """Tries /etc/passwd and a database file beside the storage root (where the SQLite database
    lives by default: $MEDIASTORE_DATA_DIR/db.sqlite3 next to $MEDIASTORE_DATA_DIR/stores)."""
    from stores.paths import resolve_store_path

    settings.MEDIASTORE_STORAGE_ROOT = str(tmp_path / "stores")
    root = (tmp_path / "stores").resolve()
    database = tmp_path / "db.sqlite3"
    database.write_bytes(b"SQLite format 3\x00 secret rows")
    targets = [Path("/etc/passwd"), database]
    secrets = [t.read_bytes()[:64] for t in targets]
    for n, target in enumerate(targets):
        for bucket in (
            str(target),
            str(target.parent),
            "../" * 12 + str(target).lstrip("/"),
            "../db.sqlite3",
        ):
            response = api.post("/api/store", {"type": store_type, "bucket": bucket})
            if response.status_code == 422:
                continue
            assert response.status_code == 200
            store = response.json()
            assert resolve_store_path(store["bucket"]).is_relative_to(root)  # a leading '/' is ignored
            pid = f"t{n}-{store['pk']}"
            api.post("/api/media", media_body(pid, store_config={"type": store_type, "bucket": bucket}))
            api.put("/api/media/update/storekeys", [{"pid": pid, "store_key": target.name}])
            response = api.get(f"/api/download/{pid}")
            assert response.status_code in (409, 502), response.content[:200]
            assert not any(secret in response.content for secret in secrets)
    api.post("/api/media", media_body("k1", store_config={"type": store_type, "bucket": "escape-test"}))
    for key in ("../../../../../../etc/passwd", "/etc/passwd", "a/../../../etc/passwd", "./x", "a//b"):
        result = api.put("/api/media/update/storekeys", [{"pid": "k1", "store_key": key}]).json()
        assert result["failures"][0]["error"] == "ValidationError", key


def test_symlink_planted_in_a_store_is_not_followed(api, id_types, store_for, settings):
    store = store_for("FilesystemStore")
    upload(api, "l1", store)
    directory = Path(settings.MEDIASTORE_STORAGE_ROOT) / store["bucket"]
    (directory / "link").symlink_to("/etc/passwd")
    api.post("/api/media", media_body("l2", store_config=store))
    assert api.put("/api/media/update/storekeys", [{"pid": "l2", "store_key": "link"}]).json()["successes"]
    response = api.get("/api/download/l2")
    assert response.status_code == 422
    assert "root:" not in response.content.decode()


def test_streaming_upload_without_a_length_is_411(api, id_types, store_for):
    """A chunked body Django cannot see was stored as 0 bytes with a 200 before."""
    api.post("/api/media", media_body("c1", store_config=store_for("FilesystemStore")))
    headers = {"Authorization": f"Bearer {api.token}"}
    response = api.client.put("/api/media/c1/content", data=b"abc", headers=headers, CONTENT_LENGTH="")
    assert response.status_code == 411
    assert Media.objects.get(pid="c1").store_status == "PENDING"


def test_streaming_upload_without_length_or_chunking_is_411_under_gunicorn(api, id_types, store_for):
    """gunicorn sets wsgi.input_terminated on every request: a PUT with neither Content-Length nor
    Transfer-Encoding was taken for an empty chunked body and erased the stored bytes with a 200."""
    store = store_for("FilesystemStore")
    assert upload(api, "c4", store, data=b"keep me").status_code == 200
    headers = {"Authorization": f"Bearer {api.token}"}
    gunicorn = {"CONTENT_LENGTH": "", "wsgi.input_terminated": True}
    response = api.client.put("/api/media/c4/content", data=b"", headers=headers, **gunicorn)
    assert response.status_code == 411
    assert b"".join(api.get("/api/media/c4/content").streaming_content) == b"keep me"
    assert api.get("/api/media/c4/verify").json()["ok"] is True


def test_streaming_upload_of_a_chunked_body(api, id_types, store_for):
    """A chunked body is read from wsgi.input when the server marks its end; otherwise 411."""
    api.post("/api/media", media_body("c5", store_config=store_for("FilesystemStore")))
    headers = {"Authorization": f"Bearer {api.token}", "Transfer-Encoding": "chunked"}
    response = api.client.put("/api/media/c5/content", data=b"abc", headers=headers, CONTENT_LENGTH="")
    assert response.status_code == 411
    assert Media.objects.get(pid="c5").store_status == "PENDING"
    gunicorn = {"wsgi.input": io.BytesIO(b"abc"), "wsgi.input_terminated": True}  # reads end at the end
    response = api.client.put("/api/media/c5/content", headers=headers, CONTENT_LENGTH="", **gunicorn)
    assert response.status_code == 200
    assert response.json()["size"] == 3
    assert b"".join(api.get("/api/media/c5/content").streaming_content) == b"abc"


def test_streaming_upload_of_an_empty_body_stores_an_empty_object(api, id_types, store_for):
    api.post("/api/media", media_body("c2", store_config=store_for("FilesystemStore")))
    headers = {"Authorization": f"Bearer {api.token}"}
    response = api.client.put("/api/media/c2/content", data=b"", headers=headers, CONTENT_LENGTH="0")
    assert response.status_code == 200
    assert response.json()["size"] == 0
    assert b"".join(api.get("/api/media/c2/content").streaming_content) == b""


def test_null_base64_from_the_published_client_means_presigned(api, id_types, store_for):
    body = {"mediadata": media_body("z1", store_config=store_for("BucketStore")), "base64": None}
    assert api.post("/api/upload", body).json()["status"] == "PENDING"


@pytest.mark.parametrize("size", [1, 2, 3, 4, 3 * (1 << 20) + 1])
def test_streamed_base64_download_is_exact(api, id_types, store_for, size):
    """The download is encoded piecewise: every length must come out whole, with a true Content-Length."""
    data = os.urandom(size)
    assert upload(api, f"z{size}", store_for("FilesystemStore"), data=data).status_code == 200
    response = api.get(f"/api/download/z{size}")
    raw = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(raw)
    body = json.loads(raw)
    assert base64.b64decode(body["base64"]) == data
    assert body["mediadata"]["pid"] == f"z{size}" and body["presigned_get"] == ""


def test_streamed_download_shows_mediadata_exactly_as_get_does(api, id_types, store_for):
    upload(api, "same", store_for("FilesystemStore"))
    assert api.get("/api/download/same").json()["mediadata"] == api.get("/api/media/same").json()


def test_streaming_upload_with_a_bad_length_is_411(api, id_types, store_for):
    api.post("/api/media", media_body("c3", store_config=store_for("FilesystemStore")))
    headers = {"Authorization": f"Bearer {api.token}"}
    for bad in ("abc", "-5"):
        response = api.client.put("/api/media/c3/content", data=b"abc", headers=headers, CONTENT_LENGTH=bad)
        assert response.status_code == 411, bad
    assert Media.objects.get(pid="c3").store_status == "PENDING"
