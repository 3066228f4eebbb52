"""Byte writes switch atomically to fresh objects; conditional writes; orphans are found.

The concurrency and crash cases run against real gunicorn workers in
``tests/deploy/test_consistency_live.py``; these pin the rules one request at a time.
"""

from __future__ import annotations

import base64
import hashlib
import io

import pytest
from django.core.management import call_command

from content.services import fresh_key
from media.models import Media
from tests.conftest import media_body
from tests.content.test_transfer import ALL_TYPES, backend_of

pytestmark = pytest.mark.django_db

LISTING_TYPES = ["FilesystemStore", "HashdirStore", "ZipStore", "SqliteStore", "BucketStore"]


def put(api, pid, data, **headers):
    return api.put_content(pid, data, **headers)


def etag_of(data: bytes) -> str:
    return f'"{hashlib.sha256(data).hexdigest()}"'


def content(api, pid) -> bytes:
    return b"".join(api.get(f"/api/media/{pid}/content").streaming_content)


def keys_in(pid) -> set[str]:
    backend, _ = backend_of(pid)
    return {obj.key for obj in backend.list_objects()}


@pytest.fixture
def media_in(api, id_types, store_for):  # noqa: F811
    def make(pid: str, store_type: str = "FilesystemStore") -> None:
        assert api.post("/api/media", media_body(pid, store_config=store_for(store_type))).status_code == 200

    return make


def test_fresh_key_keeps_the_name_and_never_repeats():
    first = fresh_key("runs/2024/a.nc")
    second = fresh_key(first)
    assert first.startswith("runs/2024/a.nc~") and second.startswith("runs/2024/a.nc~")
    assert first != second and len(second) == len(first)
    assert len(fresh_key("k" * 1024)) <= 1024


@pytest.mark.parametrize("store_type", ALL_TYPES)
def test_replacing_bytes_switches_to_a_new_object_and_removes_the_old(api, media_in, store_type):
    """Bytes were overwritten in place: concurrent writers left a row describing one writer's
    bytes while the store held another's. Every write now goes to its own object."""
    media_in("r1", store_type)
    assert put(api, "r1", b"first version").status_code == 200
    backend, old_key = backend_of("r1")
    response = put(api, "r1", b"second, longer version")
    assert response.status_code == 200
    new_key = backend_of("r1")[1]
    assert new_key != old_key and new_key.startswith(old_key.split("~")[0])
    assert content(api, "r1") == b"second, longer version"
    assert not backend.exists(old_key)
    assert api.get("/api/media/r1/verify").json()["ok"] is True


def test_if_match_stores_only_over_the_expected_bytes(api, media_in):
    media_in("c1")
    assert put(api, "c1", b"v1").status_code == 200
    stale = put(api, "c1", b"v2", **{"If-Match": etag_of(b"something else")})
    assert stale.status_code == 412
    assert "If-Match" in stale.json()["detail"]
    assert content(api, "c1") == b"v1"
    assert len(keys_in("c1")) == 1  # the refused body left no object behind
    assert put(api, "c1", b"v2", **{"If-Match": etag_of(b"v1")}).status_code == 200
    assert put(api, "c1", b"v3", **{"If-Match": f"W/{etag_of(b'x')}, {etag_of(b'v2')}"}).status_code == 200
    assert put(api, "c1", b"v4", **{"If-Match": "*"}).status_code == 200
    assert content(api, "c1") == b"v4"


def test_if_match_on_a_media_without_bytes_is_412(api, media_in):
    media_in("c2")
    assert put(api, "c2", b"v1", **{"If-Match": "*"}).status_code == 412
    assert Media.objects.get(pid="c2").store_status == "PENDING"


def test_if_none_match_star_only_creates(api, media_in):
    media_in("c3")
    assert put(api, "c3", b"first", **{"If-None-Match": "*"}).status_code == 200
    second = put(api, "c3", b"second", **{"If-None-Match": "*"})
    assert second.status_code == 412
    assert content(api, "c3") == b"first"
    assert len(keys_in("c3")) == 1


def test_failure_before_the_switch_changes_nothing_and_leaves_no_object(api, media_in, settings):
    media_in("f1")
    assert put(api, "f1", b"kept").status_code == 200
    before = Media.objects.get(pid="f1")
    settings.MEDIASTORE_FAILPOINTS = {"content.before_switch": "error"}
    assert put(api, "f1", b"lost").status_code == 502
    after = Media.objects.get(pid="f1")
    assert (after.store_key, after.checksum, after.version) == (
        before.store_key,
        before.checksum,
        before.version,
    )
    assert content(api, "f1") == b"kept"
    assert keys_in("f1") == {before.store_key}


@pytest.mark.parametrize("store_type", LISTING_TYPES)
def test_stores_list_their_objects(api, media_in, store_type):
    media_in("l1", store_type)
    media_in("l2", store_type)
    assert put(api, "l1", b"12345").status_code == 200
    assert put(api, "l2", b"1234567").status_code == 200
    backend, _ = backend_of("l1")
    listed = {obj.key: obj.size for obj in backend.list_objects()}
    assert listed == {Media.objects.get(pid=p).store_key: n for p, n in [("l1", 5), ("l2", 7)]}
    assert all(obj.modified is None or obj.modified > 0 for obj in backend.list_objects())


def run_collect(*args) -> str:
    out = io.StringIO()
    call_command("collect_orphans", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("store_type", LISTING_TYPES)
def test_collect_orphans_finds_and_removes_only_unreferenced_objects(api, media_in, store_type):
    media_in("o1", store_type)
    assert put(api, "o1", b"referenced").status_code == 200
    backend, key = backend_of("o1")
    backend.put("left-by-a-crash", b"123456789")
    report = run_collect("--older-than", "0", "--list")
    assert "1 orphaned objects, 9 bytes" in report and "left-by-a-crash  9" in report
    assert backend.exists("left-by-a-crash")  # a dry run by default
    young = run_collect()  # the default grace period keeps objects a write may still switch to
    assert "0 orphaned objects" in young and ("younger than" in young or "unknown age" in young)
    assert "removed 1 orphaned objects" in run_collect("--older-than", "0", "--delete")
    assert not backend.exists("left-by-a-crash")
    assert content(api, "o1") == b"referenced" and backend.exists(key)


def test_a_bucket_store_s_orphans_exclude_the_objects_of_a_store_under_its_prefix(api, id_types, store_for):
    # Regression: BucketStores "bucket" and "bucket/prefix" share a bucket; listing the first lists
    # the second's objects, which collect_orphans took for orphans and --delete removed (READY
    # media lost their bytes).
    outer, inner = store_for("BucketStore", "outer"), store_for("BucketStore", "outer/inner")
    for pid, store in [("outer-1", outer), ("inner-1", inner)]:
        body = {
            "mediadata": media_body(pid, store_config=store),
            "base64": base64.b64encode(b"live").decode(),
        }
        assert api.post("/api/upload", body).status_code == 200
    inner_backend, _ = backend_of("inner-1")
    inner_backend.put("left-by-a-crash", b"123456789")
    report = run_collect("--older-than", "0", "--list")
    assert "1 orphaned objects, 9 bytes" in report and "left-by-a-crash  9" in report  # the inner store's
    assert "inner/" not in report
    run_collect("--older-than", "0", "--delete")
    assert content(api, "inner-1") == b"live" and content(api, "outer-1") == b"live"
    assert not inner_backend.exists("left-by-a-crash")


def test_a_raw_stream_labelled_json_is_bytes_not_a_json_body(api, media_in, settings):
    """A PUT .../content whose Content-Type said application/json was held to the JSON body limit
    (413) and scanned for NUL escapes: the stream is bytes whatever it is labelled."""
    settings.MEDIASTORE_MAX_UPLOAD_MB = 1
    media_in("j1")
    body = b'{"text": "\\u0000"}' + b" " * (2 << 20)
    headers = {"Authorization": f"Bearer {api.token}"}
    response = api.client.put(
        "/api/media/j1/content", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 200, response.content[:300]
    assert content(api, "j1") == body


def test_a_delete_the_store_cannot_finish_is_204_and_leaves_an_orphan(api, id_types, store_for, s3_server):
    """What DELETE /api/media/{pid} promises: the record goes first; bytes the store cannot remove
    now stay behind as an object no media references."""
    from stores.models import S3Config
    from tests.support.ports import free_port

    store = store_for("BucketStore", "delete-later")
    assert (
        api.post(
            "/api/upload",
            {
                "mediadata": media_body("gone-later", store_config=store),
                "base64": base64.b64encode(b"bytes").decode(),
            },
        ).status_code
        == 200
    )
    media = Media.objects.select_related("store_config").get(pid="gone-later")
    bucket, _, prefix = media.store_config.bucket.partition("/")
    S3Config.objects.filter(url=s3_server.url).update(
        url=f"http://127.0.0.1:{free_port()}"
    )  # unreachable now
    assert api.delete("/api/media/gone-later").status_code == 204
    assert not Media.objects.filter(pid="gone-later").exists()
    left = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")["Contents"]
    assert f"{prefix}/{media.store_key}" in {item["Key"] for item in left}
