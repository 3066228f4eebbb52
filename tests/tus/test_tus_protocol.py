"""The tus 1.0 server at /api/tus/ through Django's test client: the protocol's answers, its
extensions, and uploads into every store type (tests/deploy/test_tus_live.py runs tuspy against
gunicorn, with cut connections and concurrent PATCHes)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from media.models import Media, StoreStatus
from stores.backends import STORE_TYPES
from tests.conftest import PASSWORD, ApiClient
from tests.permissions_support import role
from tests.status.test_metrics import scrape, uploaded
from tus.models import TusUpload
from tus.services import staging_path

pytestmark = pytest.mark.django_db

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_TYPE = "application/offset+octet-stream"
DATA = os.urandom(700_000) + b"end"


@pytest.fixture(autouse=True)
def tus_dir(settings, tmp_path):
    settings.MEDIASTORE_TUS_DIR = tmp_path / "tus"
    return settings.MEDIASTORE_TUS_DIR


def metadata(**entries) -> str:
    """``Upload-Metadata`` of the entries (dicts and lists as JSON)."""
    parts = []
    for key, value in entries.items():
        text = value if isinstance(value, str) else json.dumps(value)
        parts.append(f"{key} {base64.b64encode(text.encode()).decode()}")
    return ",".join(parts)


class Tus:
    """A tus client over Django's test client, with a bearer token."""

    def __init__(self, token: str) -> None:
        self.client = Client()
        self.headers = {**TUS, "Authorization": f"Bearer {token}"}

    def create(self, length: int | None, body: bytes | None = None, **entries):
        headers = {**self.headers, "Upload-Metadata": metadata(**entries)}
        if length is None:
            headers["Upload-Defer-Length"] = "1"
        else:
            headers["Upload-Length"] = str(length)
        if body is None:
            return self.client.post("/api/tus/", headers=headers)
        return self.client.post("/api/tus/", data=body, content_type=OFFSET_TYPE, headers=headers)

    def patch(self, url: str, offset: int, data: bytes, **headers):
        headers = {**self.headers, "Upload-Offset": str(offset), **headers}
        return self.client.generic("PATCH", url, data=data, content_type=OFFSET_TYPE, headers=headers)

    def head(self, url: str):
        return self.client.head(url, headers=self.headers)

    def delete(self, url: str):
        return self.client.delete(url, headers=self.headers)

    def upload(self, data: bytes, chunk: int = 300_000, **entries) -> str:
        """Create and send ``data`` in chunks; returns the upload's path."""
        created = self.create(len(data), **entries)
        assert created.status_code == 201, created.content
        url = path_of(created)
        for start in range(0, len(data), chunk):
            answer = self.patch(url, start, data[start : start + chunk])
            assert answer.status_code == 204, answer.content
            assert int(answer["Upload-Offset"]) == min(start + chunk, len(data))
        return url


def path_of(response) -> str:
    return response["Location"].removeprefix("http://testserver")


@pytest.fixture
def tus(token) -> Tus:
    return Tus(token)


@pytest.fixture
def fs_store(api, id_types, storage_root, tmp_path) -> dict:
    return {"type": "FilesystemStore", "bucket": "tus-products"}


def new_media(store: dict, pid: str = "big.1", **over) -> dict:
    return {"pid": pid, "pid_type": "local", "store": json.dumps(store), **over}


def test_options_lists_version_extensions_and_size(anon):
    answer = Client().options("/api/tus/")
    assert answer.status_code == 204
    assert answer["Tus-Version"] == "1.0.0"
    assert answer["Tus-Extension"].split(",") == [
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "checksum",
        "termination",
        "expiration",
    ]
    assert int(answer["Tus-Max-Size"]) == 5120 << 30
    assert "sha256" in answer["Tus-Checksum-Algorithm"].split(",")
    assert "sha1" in answer["Tus-Checksum-Algorithm"].split(",")
    assert "Tus-Resumable" not in answer


def test_another_tus_version_is_412(tus, fs_store):
    answer = tus.client.post(
        "/api/tus/", headers={**tus.headers, "Tus-Resumable": "0.2.2", "Upload-Length": "5"}
    )
    assert answer.status_code == 412
    assert answer["Tus-Version"] == "1.0.0" and answer["Tus-Resumable"] == "1.0.0"
    assert "Tus-Resumable: 1.0.0" in answer.json()["detail"]
    assert not TusUpload.objects.exists()


def test_without_token_401_and_without_permission_403(tus, fs_store, django_user_model):
    headers = {**TUS, "Upload-Length": "3", "Upload-Metadata": metadata(**new_media(fs_store))}
    answer = Client().post("/api/tus/", headers=headers)
    assert answer.status_code == 401 and answer.json() == {"detail": "Unauthorized"}
    bad = {**headers, "Upload-Metadata": metadata(pid_type="local", store="12345")}  # an unknown store pk
    assert Client().post("/api/tus/", headers=bad).status_code == 401  # not 404: nothing is looked up
    reader = django_user_model.objects.create_user(username="rita", password=PASSWORD)
    reader.groups.add(role("readers"))
    token = ApiClient().post("/api/login", {"username": "rita", "password": PASSWORD}).json()["token"]
    answer = Client().post("/api/tus/", headers={**headers, "Authorization": f"Bearer {token}"})
    assert answer.status_code == 403 and "media.add_media" in answer.json()["detail"]
    assert answer["Tus-Resumable"] == "1.0.0"
    assert not TusUpload.objects.exists()


@pytest.mark.parametrize("store_type", STORE_TYPES)
def test_an_upload_in_chunks_creates_the_media_ready(tus, api, id_types, store_for, store_type):
    """Every store type: the bytes sent in three PATCHes are the media's bytes, its checksum the
    SHA-256 of all of them (for S3 computed as they came, for the others while stored)."""
    store = store_for(store_type)
    url = tus.upload(DATA, pid="big.1", pid_type="local", store=json.dumps(store), tags=["a"], filetype="x/y")
    head = tus.head(url)
    assert head.status_code == 200
    assert head["Upload-Offset"] == head["Upload-Length"] == str(len(DATA))
    assert head["Media-Location"] == "/api/media/big.1" and head["Cache-Control"] == "no-store"
    media = api.get("/api/media/big.1").json()
    assert media["store_status"] == "READY" and media["size"] == len(DATA) and media["tags"] == ["a"]
    assert media["checksum"] == "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert media["content_type"] == "x/y"
    content = api.get("/api/media/big.1/content")
    assert b"".join(content.streaming_content) == DATA
    assert api.get("/api/media/big.1/verify").json()["ok"] is True
    history = api.get("/api/media/big.1/history").json()
    assert history[0]["reason"] == f"tus upload {url.rsplit('/', 1)[1]}"
    events = api.get("/api/events?types=media.created").json()["items"]
    assert [event["pid"] for event in events] == ["big.1"]
    assert not staging_path(url.rsplit("/", 1)[1]).exists()


def test_the_final_patch_names_the_media_and_a_minted_pid(tus, api, fs_store):
    created = tus.create(len(DATA), pid_type="local", store=json.dumps(fs_store))
    assert created.status_code == 201
    assert created["Upload-Offset"] == "0" and "Upload-Expires" in created
    answer = tus.patch(path_of(created), 0, DATA)
    assert answer.status_code == 204
    pid = answer["Media-Location"].removeprefix("/api/media/")
    assert pid and api.get(f"/api/media/{pid}").json()["size"] == len(DATA)


def test_offset_mismatch_is_409_and_changes_nothing(tus, fs_store):
    created = tus.create(len(DATA), **new_media(fs_store))
    url = path_of(created)
    assert tus.patch(url, 0, DATA[:1000]).status_code == 204
    answer = tus.patch(url, 500, DATA[500:1500])
    assert answer.status_code == 409 and answer["Upload-Offset"] == "1000"
    assert "HEAD" in answer.json()["detail"]
    assert tus.head(url)["Upload-Offset"] == "1000"


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


@pytest.mark.parametrize("store_type", ["FilesystemStore", "BucketStore"])
def test_a_bad_checksum_is_460_the_chunk_discarded_and_the_upload_goes_on(
    tus, api, id_types, store_for, store_type
):
    store = store_for(store_type)
    created = tus.create(len(DATA), **new_media(store))
    url = path_of(created)
    first = tus.patch(url, 0, DATA[:400_000], **{"Upload-Checksum": checksum("sha256", DATA[:400_000])})
    assert first.status_code == 204 and first["Upload-Offset"] == "400000"
    bad = tus.patch(url, 400_000, DATA[400_000:], **{"Upload-Checksum": checksum("sha1", b"other bytes")})
    assert bad.status_code == 460 and bad.reason_phrase == "Checksum Mismatch"
    assert "none of them were kept" in bad.json()["detail"]
    assert tus.head(url)["Upload-Offset"] == "400000"
    good = tus.patch(url, 400_000, DATA[400_000:], **{"Upload-Checksum": checksum("sha1", DATA[400_000:])})
    assert good.status_code == 204
    assert b"".join(api.get("/api/media/big.1/content").streaming_content) == DATA
    assert api.get("/api/media/big.1").json()["checksum"] == "sha256:" + hashlib.sha256(DATA).hexdigest()


def test_an_unknown_checksum_algorithm_is_400(tus, fs_store):
    url = path_of(tus.create(10, **new_media(fs_store)))
    answer = tus.patch(url, 0, b"0123456789", **{"Upload-Checksum": "crc99 AAAA"})
    assert answer.status_code == 400 and "sha256" in answer.json()["detail"]
    assert tus.head(url)["Upload-Offset"] == "0"


@pytest.mark.parametrize(
    ("entries", "needle"),
    [
        ({"pid": "not-a-doi", "pid_type": "doi"}, "pattern"),
        ({"pid_type": "nosuchtype"}, "bad pid_type: nosuchtype"),
        ({"pid_type": "local", "identifiers": {"nosuch": "x"}}, "bad identifier_type: nosuch"),
        ({"pid_type": "local", "tags": "not a list"}, "'tags' must be JSON"),
        ({"pid_type": "local", "colour": "blue"}, "unknown keys colour"),
        ({"pid_type": "local", "metadata": [1]}, "'metadata' must be a JSON dict"),
    ],
)
def test_metadata_that_breaks_a_rule_is_422_before_any_byte(tus, fs_store, entries, needle):
    answer = tus.create(len(DATA), store=json.dumps(fs_store), **entries)
    assert answer.status_code == 422, answer.content
    assert needle in answer.json()["detail"][0]["error"]
    assert answer["Tus-Resumable"] == "1.0.0"
    assert not TusUpload.objects.exists() and not Media.objects.exists()


def test_a_taken_pid_is_409_at_creation(tus, api, fs_store):
    tus.upload(b"first", **new_media(fs_store))
    answer = tus.create(3, **new_media(fs_store))
    assert answer.status_code == 409 and "already exists" in answer.json()["detail"][0]["error"]


def test_a_store_given_by_its_pk(tus, api, fs_store):
    pk = api.post("/api/store", fs_store).json()["pk"]
    tus.upload(DATA, pid="by-pk", pid_type="local", store=str(pk))
    assert api.get("/api/media/by-pk").json()["store_config"]["pk"] == pk


def test_another_user_gets_404(tus, fs_store, django_user_model):
    url = path_of(tus.create(len(DATA), **new_media(fs_store)))
    bob = django_user_model.objects.create_user(username="bob", password=PASSWORD)
    bob.groups.add(role("admins"))
    other = Tus(ApiClient().post("/api/login", {"username": "bob", "password": PASSWORD}).json()["token"])
    assert other.head(url).status_code == 404
    assert other.patch(url, 0, DATA).status_code == 404
    assert other.delete(url).status_code == 404
    assert tus.head(url)["Upload-Offset"] == "0"


def test_creation_with_upload_and_the_rest_later(tus, api, fs_store):
    created = tus.create(len(DATA), DATA[:100_000], **new_media(fs_store))
    assert created.status_code == 201 and created["Upload-Offset"] == "100000"
    answer = tus.patch(path_of(created), 100_000, DATA[100_000:])
    assert answer.status_code == 204 and answer["Media-Location"] == "/api/media/big.1"


def test_creation_with_the_whole_upload(tus, api, fs_store):
    created = tus.create(len(DATA), DATA, **new_media(fs_store))
    assert created.status_code == 201 and created["Media-Location"] == "/api/media/big.1"
    assert api.get("/api/media/big.1").json()["store_status"] == "READY"


@pytest.mark.parametrize("store_type", ["FilesystemStore", "BucketStore"])
def test_an_empty_upload_is_complete_at_creation(tus, api, id_types, store_for, store_type):
    created = tus.create(0, **new_media(store_for(store_type)))
    assert created.status_code == 201 and created["Media-Location"] == "/api/media/big.1"
    assert api.get("/api/media/big.1").json()["size"] == 0


def test_deferred_length(tus, api, fs_store):
    created = tus.create(None, **new_media(fs_store))
    url = path_of(created)
    assert created["Upload-Defer-Length"] == "1"
    assert tus.patch(url, 0, DATA[:200_000]).status_code == 204
    assert tus.head(url)["Upload-Defer-Length"] == "1"
    answer = tus.patch(url, 200_000, DATA[200_000:], **{"Upload-Length": str(len(DATA))})
    assert answer.status_code == 204 and answer["Upload-Length"] == str(len(DATA))
    assert api.get("/api/media/big.1").json()["size"] == len(DATA)


def test_more_bytes_than_the_length_are_413(tus, fs_store):
    url = path_of(tus.create(10, **new_media(fs_store)))
    assert tus.patch(url, 0, b"x" * 11).status_code == 413
    assert tus.head(url)["Upload-Offset"] == "0"


def test_a_patch_of_another_content_type_is_415(tus, fs_store):
    url = path_of(tus.create(10, **new_media(fs_store)))
    headers = {**tus.headers, "Upload-Offset": "0"}
    answer = tus.client.generic(
        "PATCH", url, data=b"x" * 10, content_type="application/json", headers=headers
    )
    assert answer.status_code == 415


def test_termination_removes_the_upload(tus, fs_store, tus_dir):
    url = path_of(tus.create(len(DATA), **new_media(fs_store)))
    assert tus.patch(url, 0, DATA[:1000]).status_code == 204
    upload_id = url.rsplit("/", 1)[1]
    assert staging_path(upload_id).exists()
    answer = tus.delete(url)
    assert answer.status_code == 204 and answer.content == b"" and answer["Tus-Resumable"] == "1.0.0"
    assert tus.head(url).status_code == 404
    assert tus.patch(url, 1000, DATA[1000:]).status_code == 404
    assert not staging_path(upload_id).exists() and not Media.objects.exists()


def test_a_locked_upload_refuses_a_second_patch(tus, fs_store):
    """What a concurrent PATCH meets (tests/deploy/test_tus_live.py races two for real)."""
    url = path_of(tus.create(len(DATA), **new_media(fs_store)))
    TusUpload.objects.update(lease_until=timezone.now() + timedelta(minutes=1), lease_token="other")
    answer = tus.patch(url, 0, DATA)
    assert answer.status_code == 409 and "locked" in answer.json()["detail"]
    TusUpload.objects.update(lease_until=timezone.now() - timedelta(seconds=1))  # a dead worker's lease
    assert tus.patch(url, 0, DATA).status_code == 204


@pytest.mark.parametrize("store_type", ["FilesystemStore", "BucketStore"])
def test_an_expired_upload_is_404_and_the_command_removes_its_parts(
    tus, id_types, store_for, store_type, s3cfg
):
    store = store_for(store_type)
    url = path_of(tus.create(len(DATA) * 20, **new_media(store)))
    assert tus.patch(url, 0, DATA * 12).status_code == 204  # more than a part: S3 has one
    upload = TusUpload.objects.get()
    if store_type == "BucketStore":
        assert len(upload.parts) == 1
    assert staging_path(upload.id).exists()
    TusUpload.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert tus.head(url).status_code == 404
    assert tus.patch(url, len(DATA) * 12, DATA).status_code == 404
    call_command("expire_tus_uploads")
    assert not TusUpload.objects.exists() and not staging_path(upload.id).exists()
    if store_type == "BucketStore":
        backend = upload.store_config.backend()
        client = s3cfg.client()
        listed = client.list_multipart_uploads(Bucket=backend.bucket).get("Uploads", [])
        assert upload.multipart_id not in [item["UploadId"] for item in listed]


@pytest.mark.parametrize("store_type", ["FilesystemStore", "BucketStore"])
def test_replace_switches_the_bytes_with_if_match(tus, api, id_types, store_for, store_type):
    tus.upload(b"old bytes", **new_media(store_for(store_type)))
    old_etag = hashlib.sha256(b"old bytes").hexdigest()
    wrong = tus.create(len(DATA), pid="big.1", replace="true", etag="0" * 64)
    assert wrong.status_code == 412
    also_wrong = tus.create(len(DATA), pid="big.1", replace="true", pid_type="local")
    assert also_wrong.status_code == 422
    url = path_of(tus.create(len(DATA), pid="big.1", replace="true", etag=old_etag))
    assert tus.patch(url, 0, DATA).status_code == 204
    media = Media.objects.get(pid="big.1")
    assert media.store_status == StoreStatus.READY and media.size == len(DATA)
    assert b"".join(api.get("/api/media/big.1/content").streaming_content) == DATA


@pytest.mark.parametrize("store_type", STORE_TYPES)
def test_each_byte_of_a_tus_upload_counts_once_in_bytes_uploaded(tus, api, id_types, store_for, store_type):
    """mediastore_bytes_uploaded_total grew twice for the bytes of a tus upload that replaced a
    media's bytes in a store without parts: once as the PATCHes received them, again when the
    completion streamed the staging file into the store. Each byte counts once, for a new media
    and for replaced bytes, in every store type."""
    before = uploaded(scrape())
    tus.upload(DATA, **new_media(store_for(store_type)))
    assert uploaded(scrape()) - before == len(DATA)

    before = uploaded(scrape())
    etag = hashlib.sha256(DATA).hexdigest()
    url = path_of(tus.create(len(DATA[:400_000]), pid="big.1", replace="true", etag=etag))
    assert tus.patch(url, 0, DATA[:250_000]).status_code == 204
    assert tus.patch(url, 250_000, DATA[250_000:400_000]).status_code == 204
    assert uploaded(scrape()) - before == 400_000
    assert api.get("/api/media/big.1").json()["size"] == 400_000


@pytest.mark.parametrize("store_type", ["FilesystemStore", "BucketStore"])
def test_replacing_the_bytes_of_a_held_media_is_423(tus, api, id_types, store_for, store_type):
    """Issue 27: a hold refuses new bytes by tus too, at creation and, for a hold placed during the
    upload, at completion (the media keeps its bytes)."""
    tus.upload(b"old bytes", **new_media(store_for(store_type)))
    etag = hashlib.sha256(b"old bytes").hexdigest()
    url = path_of(tus.create(len(DATA), pid="big.1", replace="true", etag=etag))
    assert api.post("/api/media/big.1/hold", {"reason": "case 3"}).status_code == 200
    refused = tus.create(len(DATA), pid="big.1", replace="true", etag=etag)
    assert refused.status_code == 423 and "case 3" in refused.json()["detail"][0]["error"]
    assert tus.patch(url, 0, DATA).status_code == 423
    assert b"".join(api.get("/api/media/big.1/content").streaming_content) == b"old bytes"


def test_an_upload_takes_the_pid_of_an_expired_media_not_yet_swept(tus, api, fs_store):
    """The pid of an expired media (gone for clients) is free before manage.py expire runs: the tus
    upload of that pid retires the expired media as the sweep would and creates its own."""
    tus.upload(b"old bytes", **new_media(fs_store))
    old = Media.objects.get(pid="big.1")
    Media.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    tus.upload(DATA, **new_media(fs_store))
    media = Media.objects.get(pid="big.1")
    assert media.pk != old.pk and media.size == len(DATA) and media.expires_at is None
    assert b"".join(api.get("/api/media/big.1/content").streaming_content) == DATA
    assert api.get("/api/events?types=media.expired").json()["items"][0]["pid"] == "big.1"


def test_a_get_of_an_upload_is_405(tus, fs_store):
    url = path_of(tus.create(10, **new_media(fs_store)))
    answer = tus.client.get(url, headers=tus.headers)
    assert answer.status_code == 405 and "HEAD" in answer["Allow"]


def test_a_missing_bucket_is_502_and_leaves_no_store_configuration(tus, api, id_types, s3cfg):
    """The store configuration the metadata described is made for the upload, and deleted again
    when the store fails before the upload exists."""
    store = {"type": "BucketStore", "bucket": "no-such-bucket-for-tus", "s3_url": s3cfg.url}
    answer = tus.create(len(DATA), **new_media(store))
    assert answer.status_code == 502 and "no-such-bucket-for-tus" in answer.json()["detail"]
    assert not TusUpload.objects.exists()
    assert [s["bucket"] for s in api.get("/api/stores").json()] == []


def test_a_deferred_length_upload_takes_no_byte_past_the_max_size(tus, fs_store, tus_dir, settings):
    """Without Upload-Length the bytes are held to Tus-Max-Size too: a PATCH that declares more is
    413 before a byte is read, and a chunked one (no declared length) keeps only what fits."""
    settings.MEDIASTORE_TUS_MAX_SIZE_GB = 1
    limit = 1 << 30
    url = path_of(tus.create(None, **new_media(fs_store)))
    upload = TusUpload.objects.get()
    # An upload that has come this far (its staging file sparse, so the test writes no GiB).
    near = limit - 4
    tus_dir.mkdir(parents=True, exist_ok=True)
    with open(staging_path(upload.id), "wb") as staged:
        staged.truncate(near)
    TusUpload.objects.filter(pk=upload.id).update(offset=near)
    declared = tus.patch(url, near, b"0123456789")
    assert declared.status_code == 413 and "Tus-Max-Size" in declared.json()["detail"]
    assert tus.head(url)["Upload-Offset"] == str(near)
    chunked = tus.client.generic(  # as gunicorn hands over a chunked body: no Content-Length
        "PATCH",
        url,
        data=b"0123456789",
        content_type=OFFSET_TYPE,
        headers={**tus.headers, "Upload-Offset": str(near), "Transfer-Encoding": "chunked"},
        **{"wsgi.input_terminated": True},
    )
    assert chunked.status_code == 413 and "Tus-Max-Size" in chunked.json()["detail"]
    assert tus.head(url)["Upload-Offset"] == str(limit)
    assert staging_path(upload.id).stat().st_size == limit


def test_a_user_s_unfinished_uploads_are_limited(tus, fs_store, settings):
    settings.MEDIASTORE_TUS_MAX_OPEN = 2
    first = path_of(tus.create(10, **new_media(fs_store, pid="open.1")))
    assert tus.create(10, **new_media(fs_store, pid="open.2")).status_code == 201
    refused = tus.create(10, **new_media(fs_store, pid="open.3"))
    assert refused.status_code == 429 and "MEDIASTORE_TUS_MAX_OPEN" in refused.json()["detail"]
    assert tus.patch(first, 0, b"0123456789").status_code == 204  # finished: no longer counts
    assert tus.create(10, **new_media(fs_store, pid="open.3")).status_code == 201


@pytest.mark.parametrize("key", ["metadata", "identifiers", "tags", "store"])
def test_deeply_nested_metadata_json_is_422(tus, fs_store, key):
    entries = new_media(fs_store)
    entries[key] = "[" * 3000 + "]" * 3000
    answer = tus.create(10, **entries)
    assert answer.status_code == 422, answer.content
    assert "nested" in answer.json()["detail"][0]["error"] and not TusUpload.objects.exists()


@pytest.mark.parametrize(
    "entries",
    [
        {"metadata": '{"a": 1, "a": 2}'},
        {"metadata": '{"a": NaN}'},
        {"metadata": '{"a": "x\\u0000y"}'},
        {"metadata": '{"a\\u0000": "y"}'},
        {"tags": '["a\\u0000b"]'},
        {"identifiers": '{"local": "a\\u0000b"}'},
        {"content_type": "text/plain\x00"},
        {"pid": "a\x00b"},
    ],
)
def test_metadata_json_is_parsed_as_strictly_as_the_json_api(tus, fs_store, entries):
    """A repeated key, NaN, NUL (which PostgreSQL stores nowhere: 500 at completion before) are 422
    at creation, as the JSON API answers them."""
    answer = tus.create(1, b"Q", **{**new_media(fs_store), **entries})
    assert answer.status_code == 422, answer.content
    assert not TusUpload.objects.exists() and not Media.objects.exists()


@pytest.mark.parametrize("declared", ["text/html\r\nX-Evil: 1", "application/" + "x" * 250])
def test_a_content_type_no_header_can_carry_is_422_at_creation(tus, api, fs_store, declared):
    answer = tus.create(1, b"Q", **new_media(fs_store), content_type=declared)
    assert answer.status_code == 422, answer.content
    assert "content_type" in answer.json()["detail"][0]["error"]
    assert not Media.objects.exists()


def test_a_pid_another_unfinished_upload_claims_is_409_at_creation(tus, fs_store, api):
    first = path_of(tus.create(5, **new_media(fs_store, pid="dup.1")))
    second = tus.create(5, **new_media(fs_store, pid="dup.1"))
    assert second.status_code == 409, second.content
    assert tus.patch(first, 0, b"abcde").status_code == 204
    assert tus.create(5, **new_media(fs_store, pid="dup.1")).status_code == 409  # the media exists
    assert tus.delete(first).status_code == 204


def test_an_empty_etag_entry_is_422(tus, fs_store):
    tus.upload(b"old bytes", **new_media(fs_store))
    answer = tus.create(3, pid="big.1", replace="true", etag="")
    assert answer.status_code == 422 and "etag" in answer.json()["detail"][0]["error"]


def test_a_method_override_on_get_is_refused(tus, fs_store):
    url = path_of(tus.create(10, **new_media(fs_store)))
    answer = tus.client.get(url, headers={**tus.headers, "X-HTTP-Method-Override": "DELETE"})
    assert answer.status_code == 400
    assert tus.head(url).status_code == 200


@pytest.mark.parametrize("pk", ["9223372036854775807", "9999999999999999999"])
def test_a_store_pk_past_the_column_is_404(tus, fs_store, pk):
    answer = tus.create(10, **{**new_media(fs_store), "store": pk})
    assert answer.status_code == 404, answer.content


def test_expires_at_in_upload_metadata(tus, api, fs_store):
    """Bug: docs/lifecycle.md said expires_at could be set at upload, but tus refused the
    ``expires_at`` Upload-Metadata key (422 unknown keys). Given: that expiry; empty: never, even in
    a store with a default_ttl; absent: the store's default; past or malformed: 422."""
    later = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    tus.upload(b"one", **new_media(fs_store, "exp.1", expires_at=later.isoformat()))
    assert datetime.fromisoformat(api.get("/api/media/exp.1").json()["expires_at"]) == later
    pk = api.get("/api/media/exp.1").json()["store_config"]["pk"]
    assert api.patch(f"/api/store/{pk}", {"default_ttl": 3600}).status_code == 200
    tus.upload(b"two", **new_media(fs_store, "exp.2", expires_at=""))
    assert api.get("/api/media/exp.2").json()["expires_at"] is None
    tus.upload(b"three", **new_media(fs_store, "exp.3"))
    assert api.get("/api/media/exp.3").json()["expires_at"] is not None
    for bad in ("2000-01-01T00:00:00Z", "soon"):
        answer = tus.create(3, **new_media(fs_store, "exp.4", expires_at=bad))
        assert answer.status_code == 422, answer.content
