"""S3 direct multipart uploads: `POST /api/upload` with `multipart`, parts PUT to presigned URLs
with plain HTTP (requests, no boto on the client's side) against a moto S3 server, then completed,
extended, refused or abandoned."""

from __future__ import annotations

import hashlib
import os

import pytest
import requests
from django.core.management import call_command

from media.models import Media
from tests.conftest import error_message, media_body

pytestmark = pytest.mark.django_db

MIB = 1 << 20
PART = 8 * MIB  # part_size_for() of these sizes
DATA = os.urandom(2 * PART + 12345)


def begin(api, store: dict, pid: str = "mp.1", size: int = len(DATA), **extra):
    body = {"mediadata": media_body(pid, store_config=store), "multipart": {"size": size}, **extra}
    return api.post("/api/upload", body)


def put_parts(answer: dict, data: bytes) -> list[dict]:
    done = []
    for part in answer["parts"]:
        start = (part["part_number"] - 1) * answer["part_size"]
        sent = requests.put(part["url"], data=data[start : start + answer["part_size"]], timeout=60)
        assert sent.status_code == 200, sent.text
        done.append({"part_number": part["part_number"], "etag": sent.headers["ETag"]})
    return done


@pytest.fixture
def bucket_store(api, id_types, store_for) -> dict:
    return store_for("BucketStore")


def test_parts_put_to_presigned_urls_and_completed_make_the_media_ready(api, bucket_store):
    answer = begin(api, bucket_store, content_type="application/x-netcdf")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["status"] == "PENDING" and body["pid"] == "mp.1" and body["presigned_put"] is None
    assert body["part_size"] == PART and [p["part_number"] for p in body["parts"]] == [1, 2, 3]
    assert body["upload_id"]
    done = put_parts(body, DATA)
    completed = api.post("/api/upload/mp.1/complete", {"parts": done})
    assert completed.status_code == 200, completed.content
    media = completed.json()
    assert media["store_status"] == "READY" and media["size"] == len(DATA)
    assert media["checksum"] == "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert media["content_type"] == "application/x-netcdf"
    assert b"".join(api.get("/api/media/mp.1/content").streaming_content) == DATA
    again = api.post("/api/upload/mp.1/complete", {"parts": done})
    assert again.status_code == 200 and again.json()["version"] == media["version"]


def test_more_part_urls_on_request(api, bucket_store, settings):
    settings.MEDIASTORE_MULTIPART_URLS = 1
    body = begin(api, bucket_store).json()
    assert [p["part_number"] for p in body["parts"]] == [1]
    more = api.post("/api/upload/mp.1/parts", {"parts": [2, 3]})
    assert more.status_code == 200, more.content
    body["parts"] += more.json()["parts"]
    assert "no part 4" in error_message(api.post("/api/upload/mp.1/parts", {"parts": [4]}))
    assert api.post("/api/upload/mp.1/complete", {"parts": put_parts(body, DATA)}).status_code == 200
    assert "is READY" in error_message(api.post("/api/upload/mp.1/parts", {"parts": [1]}), 409)


def test_each_part_url_signs_the_part_s_length(api, bucket_store):
    """S3 refuses a PUT whose Content-Length is not the signed one (moto does not check it)."""
    body = begin(api, bucket_store).json()
    for part in body["parts"]:
        assert "X-Amz-SignedHeaders=content-length%3Bhost" in part["url"] or (
            "X-Amz-SignedHeaders=content-length;host" in part["url"]
        )


def test_wrong_parts_are_422_and_the_media_stays_pending(api, bucket_store):
    body = begin(api, bucket_store).json()
    done = put_parts(body, DATA)
    wrong = [*done[:2], {"part_number": 3, "etag": '"0123456789abcdef0123456789abcdef"'}]
    assert "InvalidPart" in error_message(api.post("/api/upload/mp.1/complete", {"parts": wrong}))
    assert Media.objects.get(pid="mp.1").store_status == "PENDING"
    assert api.post("/api/upload/mp.1/complete", {"parts": done}).status_code == 200


def test_a_part_list_that_leaves_parts_out_is_422_and_the_upload_stays_usable(api, bucket_store):
    """The list is checked against the declared size before S3 is asked: S3 would join the parts
    listed and end the upload, and the client would have to send every part again."""
    body = begin(api, bucket_store).json()
    done = put_parts(body, DATA)
    answer = api.post("/api/upload/mp.1/complete", {"parts": [done[1]]})
    assert "parts 1, 3 are missing" in error_message(answer)
    twice = api.post("/api/upload/mp.1/complete", {"parts": [*done, done[0]]})
    assert "part 1 is listed more than once" in error_message(twice)
    beyond = api.post("/api/upload/mp.1/complete", {"parts": [*done, {**done[0], "part_number": 4}]})
    assert "part 4 is outside 1 to 3" in error_message(beyond)
    assert Media.objects.get(pid="mp.1").store_status == "PENDING"
    completed = api.post("/api/upload/mp.1/complete", {"parts": done})
    assert completed.status_code == 200, completed.content
    assert b"".join(api.get("/api/media/mp.1/content").streaming_content) == DATA


def test_multipart_needs_a_bucket_store(api, id_types, store_for):
    answer = begin(api, store_for("FilesystemStore"))
    assert "need a BucketStore" in error_message(answer)
    assert not Media.objects.exists()


def test_multipart_with_base64_is_422(api, bucket_store):
    answer = begin(api, bucket_store, base64="aGVsbG8=")
    assert "not both" in error_message(answer)


def test_a_repeat_begins_a_new_upload_and_a_ready_media_answers_ready(api, bucket_store, s3cfg):
    first = begin(api, bucket_store).json()
    second = begin(api, bucket_store).json()
    assert second["status"] == "PENDING" and second["upload_id"] != first["upload_id"]
    listed = s3cfg.client().list_multipart_uploads(Bucket=bucket_store["bucket"].split("/")[0])["Uploads"]
    assert [upload["UploadId"] for upload in listed] == [second["upload_id"]]  # the first one aborted
    assert begin(api, bucket_store, size=5).status_code == 409  # another size
    assert api.post("/api/upload/mp.1/complete", {"parts": put_parts(second, DATA)}).status_code == 200
    assert begin(api, bucket_store).json() == {"status": "READY", "presigned_put": None, "pid": "mp.1"}


def test_abandoning_aborts_the_upload_and_deletes_the_pending_media(api, bucket_store, s3cfg):
    body = begin(api, bucket_store).json()
    put_parts({**body, "parts": body["parts"][:1]}, DATA)
    assert api.delete("/api/upload/mp.1").status_code == 204
    assert not Media.objects.filter(pid="mp.1").exists()
    bucket = bucket_store["bucket"].split("/")[0]
    listed = s3cfg.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert body["upload_id"] not in [upload["UploadId"] for upload in listed]


def test_abandoning_a_ready_media_is_409(api, bucket_store):
    body = begin(api, bucket_store).json()
    api.post("/api/upload/mp.1/complete", {"parts": put_parts(body, DATA)})
    assert "is READY" in error_message(api.delete("/api/upload/mp.1"), 409)


def test_collect_orphans_aborts_abandoned_multipart_uploads(api, bucket_store, s3cfg, capsys):
    """A multipart upload no media claims (its media deleted; or boto's own, left by a worker killed
    during a streaming PUT) is listed, and aborted with --delete; one of a PENDING media is kept."""
    kept = begin(api, bucket_store, pid="mp.kept").json()
    gone = begin(api, bucket_store, pid="mp.gone").json()
    assert api.delete("/api/media/mp.gone").status_code == 204
    bucket = bucket_store["bucket"].split("/")[0]
    client = s3cfg.client()
    stray = client.create_multipart_upload(
        Bucket=bucket, Key=f"{bucket_store['bucket'].split('/', 1)[1]}/stray~0a1b"
    )

    def open_ids():
        return {u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}

    call_command("collect_orphans", "--older-than", "0")
    out = capsys.readouterr().out
    assert "2 abandoned multipart uploads" in out
    assert {gone["upload_id"], stray["UploadId"], kept["upload_id"]} <= open_ids()  # a dry run
    call_command("collect_orphans", "--older-than", "0", "--delete")
    assert kept["upload_id"] in open_ids()
    assert not {gone["upload_id"], stray["UploadId"]} & open_ids()


def test_complete_with_a_null_body_keeps_its_old_meaning(api, bucket_store):
    """Swagger UI's example body of the completion is null: a presigned upload's completion."""
    answer = api.post("/api/upload", {"mediadata": media_body("pre.1", store_config=bucket_store)}).json()
    assert requests.put(answer["presigned_put"], data=b"presigned bytes", timeout=60).status_code == 200
    completed = api.request(
        "POST", "/api/upload/pre.1/complete", None, data="null", content_type="application/json"
    )
    assert completed.status_code == 200, completed.content
    assert completed.json()["size"] == len(b"presigned bytes")
