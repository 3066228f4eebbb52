"""POST and GET /api/download/archive (issue 28): many media as one streamed zip or tar, with
manifest-sha256.txt, media.json and errors.txt at its end."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from content.archives import encode_segment, layout_name
from tests.conftest import ApiClient, create_media, error_message, media_body

pytestmark = pytest.mark.django_db


def upload(api: ApiClient, pid: str, data: bytes, store: dict, **over) -> dict:
    mediadata = media_body(pid, store_config=store, **over)
    response = api.post("/api/upload", {"mediadata": mediadata, "base64": base64.b64encode(data).decode()})
    assert response.status_code == 200, response.content
    return api.get(f"/api/media/{pid}").json()


def members(response) -> dict[str, bytes]:
    """The archive's members by name, read with Python's zipfile or tarfile (a client's reader)."""
    assert response.status_code == 200, response.content
    data = b"".join(response.streaming_content)
    if response["Content-Type"] == "application/zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None  # every member's CRC holds
            names = archive.namelist()
            assert len(names) == len(set(names))
            return {name: archive.read(name) for name in names}
    assert response["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        found = {}
        for info in archive.getmembers():
            assert info.name not in found
            found[info.name] = archive.extractfile(info).read()
        return found


def manifest(found: dict[str, bytes]) -> dict[str, str]:
    lines = found["manifest-sha256.txt"].decode().splitlines()
    return {name: checksum for checksum, name in (line.split("  ", 1) for line in lines)}


def errors(found: dict[str, bytes]) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in found["errors.txt"].decode().splitlines())


@pytest.fixture
def stores(api, id_types, store_for):
    return {kind: store_for(kind) for kind in ("FilesystemStore", "SqliteStore", "BucketStore", "DictStore")}


@pytest.mark.parametrize("format", ["zip", "tar"])
def test_a_search_over_every_store_type_checks_against_manifest_and_records(api, stores, format):
    payloads = {}
    for i, (kind, store) in enumerate(stores.items()):
        for j in range(3):
            data = hashlib.sha256(f"{kind}{j}".encode()).digest() * (100 * (i + 1) + j)
            payloads[f"{kind}/{j}"] = data
            upload(api, f"{kind}/{j}", data, store, tags=["cruise42"])
    create_media(api, "pending-one", tags=["cruise42"])  # no bytes
    upload(api, "other", b"not selected", stores["DictStore"], tags=["elsewhere"])

    found = members(api.post("/api/download/archive", {"tags": ["cruise42"], "format": format}))

    records = {m["pid"]: m for m in json.loads(found["media.json"])}
    assert set(records) == {*payloads, "pending-one"}
    listed = manifest(found)
    assert set(listed) == {f"data/{pid}" for pid in payloads}
    assert records["pending-one"]["member"] is None
    for pid, data in payloads.items():
        name = f"data/{pid}"
        assert records[pid]["member"] == name
        assert found[name] == data
        assert listed[name] == hashlib.sha256(data).hexdigest()
        assert records[pid]["checksum"] == "sha256:" + listed[name]
    assert errors(found) == {"pending-one": "PENDING: no bytes stored yet"}
    assert list(found)[-3:] == ["manifest-sha256.txt", "media.json", "errors.txt"]


def test_pids_keep_their_order_each_media_once_and_unknown_ones_are_errors(api, stores):
    store = stores["FilesystemStore"]
    for pid in ("b", "a", "c"):
        upload(api, pid, pid.encode() * 10, store)
    found = members(api.post("/api/download/archive", {"pids": ["c", "a", "nope", "c", "b"]}))
    assert list(found)[:3] == ["data/c", "data/a", "data/b"]
    assert [m["pid"] for m in json.loads(found["media.json"])] == ["c", "a", "b"]
    assert errors(found) == {"nope": "not found"}


def test_hostile_pids_give_safe_distinct_names(api, stores):
    store = stores["DictStore"]
    pids = ["../x", "/abs", "a/../../b", "a", "a/b", "a/b/c", "..", ".", "x//y", "x/", "C:\\win"]
    pids += ["~", "a~1", "%2F", "data", "media.json", "é" * 300, "long/" + "x" * 500, "long/" + "x" * 499]
    for pid in pids:
        upload(api, pid, pid.encode(), store)
    for layout in ("pid", "flat"):
        found = members(api.post("/api/download/archive", {"pids": pids, "layout": layout}))
        data = {name: body for name, body in found.items() if name.startswith("data/")}
        assert sorted(data.values()) == sorted(pid.encode() for pid in pids)  # every one, none twice
        files = set(data)
        for name in data:
            parts = name.split("/")
            assert parts[0] == "data" and all(part not in ("", ".", "..") for part in parts), name
            assert all(len(part.encode()) <= 255 for part in parts), name
            assert "\\" not in name and ":" not in name
            # no member is a file where another needs a folder
            assert not any("/".join(parts[:i]) in files for i in range(1, len(parts))), name
            if layout == "flat":
                assert len(parts) == 2, name
        assert set(manifest(found)) == files
        by_member = {m["member"]: m["pid"] for m in json.loads(found["media.json"])}
        assert {name: data[name] for name in files} == {name: by_member[name].encode() for name in files}


def test_names_percent_encode_and_keep_readable_pids():
    assert layout_name("D2024/IFCB1_001.png", "pid") == "D2024/IFCB1_001.png"
    assert layout_name("D2024/IFCB1_001.png", "flat") == "D2024%2FIFCB1_001.png"
    assert layout_name("10.1234/x y:z", "pid") == "10.1234/x%20y%3Az"
    assert encode_segment("é") == "%C3%A9"
    assert encode_segment("..") == "%2E%2E"


@pytest.mark.parametrize("format", ["zip", "tar"])
def test_an_object_deleted_behind_the_servers_back_mid_stream_goes_to_errors(
    api, stores, storage_root, format
):  # noqa: E501
    store = stores["FilesystemStore"]
    big = b"x" * (600 * 1024)  # more than a piece the server sends at once
    first = upload(api, "first", big, store)
    upload(api, "second", b"second bytes", store)
    upload(api, "third", b"third bytes", store)

    response = api.post("/api/download/archive", {"pids": ["first", "second", "third"], "format": format})
    assert response.status_code == 200
    stream = iter(response.streaming_content)
    head = [next(stream)]  # the archive has started: 'first' is being sent
    from media.models import Media

    second = Media.objects.select_related("store_config").get(pid="second")
    path = Path(storage_root) / second.store_config.bucket / second.store_key
    assert path.exists()
    path.unlink()
    data = b"".join([*head, *stream])

    response.streaming_content = iter([data])
    found = members(response)
    assert found["data/first"] == big and found["data/third"] == b"third bytes"
    assert "data/second" not in found
    reasons = errors(found)
    assert list(reasons) == ["second"] and "missing" in reasons["second"]
    assert set(manifest(found)) == {"data/first", "data/third"}
    assert "sha256:" + manifest(found)["data/first"] == first["checksum"]
    assert [m["pid"] for m in json.loads(found["media.json"])] == ["first", "second", "third"]


def test_get_takes_the_query_parameters_of_get_api_media(api, stores):
    store = stores["DictStore"]
    for i in range(5):
        upload(api, f"p{i}", f"bytes {i}".encode(), store, tags=["t"] if i % 2 else [])
    found = members(api.get("/api/download/archive?tags=t&format=tar&layout=flat&order_by=-pid"))
    assert [name for name in found if name.startswith("data/")] == ["data/p3", "data/p1"]
    assert len([n for n in members(api.get("/api/download/archive?limit=2")) if n.startswith("data/")]) == 2
    ranged = api.get("/api/download/archive?tags=t", headers={"Range": "bytes=100-"})
    assert ranged["Accept-Ranges"] == "none" and not ranged.has_header("Content-Range")
    assert ranged.status_code == 200 and "data/p1" in members(ranged)  # the whole archive
    everything = members(api.get("/api/download/archive"))
    assert len([name for name in everything if name.startswith("data/")]) == 5
    assert "unknown query parameter 'colour'" in error_message(api.get("/api/download/archive?colour=red"))
    assert "format" in error_message(api.get("/api/download/archive?format=rar"))


def test_limit_and_offset_apply_only_when_given(api, stores, settings):
    settings.MEDIASTORE_ARCHIVE_MAX_MEDIA = 4
    store = stores["DictStore"]
    for i in range(6):
        upload(api, f"q{i}", b"q", store, tags=["t"])
    found = members(api.post("/api/download/archive", {"tags": ["t"], "limit": 2, "offset": 3}))
    assert [name for name in found if name.startswith("data/")] == ["data/q3", "data/q4"]
    # the search's default page size does not cut an archive; the media limit does (413)
    response = api.post("/api/download/archive", {"tags": ["t"]})
    assert "MEDIASTORE_ARCHIVE_MAX_MEDIA" in error_message(response, 413)


def test_too_many_media_is_413_before_any_byte(api, stores, settings):
    settings.MEDIASTORE_ARCHIVE_MAX_MEDIA = 2
    for i in range(3):
        upload(api, f"m{i}", b"m", stores["DictStore"], tags=["t"])
    for response in (
        api.post("/api/download/archive", {"pids": ["m0", "m1", "m2"]}),
        api.post("/api/download/archive", {"tags": ["t"]}),
        api.get("/api/download/archive?tags=t"),
    ):
        assert not response.streaming
        assert "MEDIASTORE_ARCHIVE_MAX_MEDIA" in error_message(response, 413)
    assert members(api.post("/api/download/archive", {"pids": ["m0", "m1", "m0"]}))["data/m1"] == b"m"


def test_bad_bodies_are_422(api, stores):
    assert "not both" in error_message(api.post("/api/download/archive", {"pids": ["a"], "tags": ["t"]}))
    assert "at least one search filter" in error_message(api.post("/api/download/archive", {}))
    assert "colour" in error_message(api.post("/api/download/archive", {"tags": ["t"], "colour": "red"}))
    assert "format" in error_message(api.post("/api/download/archive", {"tags": ["t"], "format": "rar"}))
    assert "cursor" in error_message(api.get("/api/download/archive?cursor=x"))


def test_an_empty_selection_is_an_archive_of_the_listings_alone(api, stores):
    found = members(api.post("/api/download/archive", {"pids": [], "format": "tar"}))
    assert found == {"manifest-sha256.txt": b"", "media.json": b"[]\n", "errors.txt": b""}


def test_a_reader_may_download_an_account_without_view_permission_gets_403(api, stores, django_user_model):
    from tests.permissions_support import role

    upload(api, "r1", b"readable", stores["DictStore"], tags=["t"])
    reader = django_user_model.objects.create_user(username="rita", password="pw-rita-123456")
    reader.groups.add(role("readers"))
    nobody = django_user_model.objects.create_user(username="nemo", password="pw-nemo-123456")
    tokens = {}
    for name, password in (("rita", "pw-rita-123456"), ("nemo", "pw-nemo-123456")):
        login = ApiClient().post("/api/login", {"username": name, "password": password})
        tokens[name] = login.json()["token"]
    assert nobody.pk
    as_reader = ApiClient(tokens["rita"])
    assert members(as_reader.post("/api/download/archive", {"pids": ["r1"]}))["data/r1"] == b"readable"
    as_nobody = ApiClient(tokens["nemo"])
    for response in (
        as_nobody.post("/api/download/archive", {"pids": ["r1"]}),
        as_nobody.get("/api/download/archive?tags=t"),
    ):
        assert response.status_code == 403 and not response.streaming
        assert "media.view_media" in response.json()["detail"]
    assert ApiClient().get("/api/download/archive?tags=t").status_code == 401


@pytest.mark.parametrize("order_by", [None, "-pid", "created"])
def test_a_search_of_more_media_than_one_chunk_of_rows_comes_whole_in_its_order(api, id_types, order_by):
    """Rows are read 500 at a time, each chunk after the last row of the one before (keyset)."""
    pids = [f"w{i:04d}" for i in range(1234)]
    created = api.post("/api/media/create", [media_body(pid, tags=["walk"]) for pid in pids])
    assert created.status_code == 200, created.content
    create_media(api, "w-untagged")
    body = {"tags": ["walk"], "format": "tar", **({"order_by": order_by} if order_by else {})}
    found = members(api.post("/api/download/archive", body))
    listed = [m["pid"] for m in json.loads(found["media.json"])]
    assert listed == (sorted(pids, reverse=True) if order_by == "-pid" else pids)
    assert len(errors(found)) == 1234  # all PENDING
    found = members(api.post("/api/download/archive", {**body, "limit": 700, "offset": 300}))
    assert [m["pid"] for m in json.loads(found["media.json"])] == listed[300:1000]


def test_download_urls_takes_a_search_body_too(api, stores, s3cfg):
    """Issue 28 item 2: POST /api/download/urls with the body of POST /api/media/search."""
    import requests

    upload(api, "s3-a", b"bytes of a", stores["BucketStore"], tags=["u"])
    upload(api, "local-b", b"bytes of b", stores["FilesystemStore"], tags=["u"])
    upload(api, "s3-c", b"bytes of c", stores["BucketStore"], tags=["u"])
    upload(api, "s3-other", b"other", stores["BucketStore"], tags=["v"])
    response = api.post("/api/download/urls", {"tags": ["u"], "order_by": "-pid"})
    assert response.status_code == 200
    entries = response.json()
    assert [e.get("pid") or e["mediadata"]["pid"] for e in entries] == ["s3-c", "s3-a", "local-b"]
    for entry, data in zip([entries[0], entries[1]], [b"bytes of c", b"bytes of a"], strict=True):
        assert requests.get(entry["presigned_get"], timeout=30).content == data
    assert entries[2]["error"] == "ValidationError" and "BucketStore" in entries[2]["msg"]
    # the list of pids answers as before; a body without filters finds nothing, as the search does
    listed = api.post("/api/download/urls", ["s3-a", "nope"]).json()
    assert listed[0]["mediadata"]["pid"] == "s3-a" and listed[1]["error"] == "NotFound"
    assert api.post("/api/download/urls", {}).json() == []
    assert "colour" in error_message(api.post("/api/download/urls", {"tags": ["u"], "colour": "red"}))


def test_download_urls_of_a_search_is_bounded_like_an_archive(api, stores, settings):
    settings.MEDIASTORE_ARCHIVE_MAX_MEDIA = 1
    for pid in ("x1", "x2"):
        upload(api, pid, b"x", stores["DictStore"], tags=["x"])
    assert "MEDIASTORE_ARCHIVE_MAX_MEDIA" in error_message(
        api.post("/api/download/urls", {"tags": ["x"]}), 413
    )
    assert len(api.post("/api/download/urls", {"tags": ["x"], "limit": 1}).json()) == 1


def test_a_token_needs_the_scope_read(api, stores):
    upload(api, "sc1", b"scoped", stores["DictStore"])
    tokens = {}
    for scope in ("read", "delete"):
        made = api.post("/api/tokens", {"name": f"only {scope}", "scopes": [scope], "expires_in": 600})
        assert made.status_code == 201, made.content
        tokens[scope] = made.json()["token"]
    allowed = ApiClient(tokens["read"]).post("/api/download/archive", {"pids": ["sc1"]})
    assert members(allowed)["data/sc1"] == b"scoped"
    refused = ApiClient(tokens["delete"]).get("/api/download/archive?pid=sc1")
    assert refused.status_code == 403 and not refused.streaming and "read" in refused.json()["detail"]


@pytest.mark.parametrize("format", ["zip", "tar"])
def test_bytes_that_end_early_are_named_in_errors_and_fail_the_manifest(api, stores, storage_root, format):
    """A store that stops part-way through a member (here a file truncated behind the server's back
    while it is being read) has already sent that member's header: the member is cut short (zip) or
    zero-filled to its size (tar), errors.txt says so and its manifest line no longer matches."""
    from media.models import Media

    data = bytes(range(256)) * 8192  # 2 MiB
    upload(api, "cut", data, stores["FilesystemStore"])
    upload(api, "after", b"after bytes", stores["FilesystemStore"])
    response = api.post("/api/download/archive", {"pids": ["cut", "after"], "format": format})
    stream = iter(response.streaming_content)
    head = next(stream)  # the member's header: its file is open, nothing read yet
    media = Media.objects.select_related("store_config").get(pid="cut")
    with open(Path(storage_root) / media.store_config.bucket / media.store_key, "r+b") as file:
        file.truncate(1000)
    response.streaming_content = iter([head, *stream])
    found = members(response)
    expected = data[:1000] if format == "zip" else data[:1000] + bytes(len(data) - 1000)
    assert found["data/cut"] == expected and found["data/after"] == b"after bytes"
    reason = errors(found)["cut"]
    assert "incomplete" in reason and "after 1000 of 2097152 bytes" in reason, reason
    assert (
        manifest(found)["data/cut"]
        == hashlib.sha256(data).hexdigest()
        != hashlib.sha256(expected).hexdigest()
    )
