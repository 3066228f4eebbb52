"""Reads fall back to a GOOD replica when the primary copy cannot be read, name the copy that
served them (``X-Mediastore-Copy``), record the primary's failure, and never serve a STALE copy."""

from __future__ import annotations

import base64

import pytest
import requests

from content.models import Replica
from media.models import Media
from tests.content.test_replicas import SHORE, copies, events, primary_path, replicate, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def stores(storage_root):
    return storage_root


def content(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_missing_primary_is_served_from_the_replica_and_recorded(api, id_types, stores):
    upload(api, "m1", b"kept twice")
    api.post("/api/media/m1/replicas", {"store_config": SHORE})
    replicate()
    shore_pk = Replica.objects.get().store_config_id
    primary_pk = Media.objects.get(pid="m1").store_config_id
    first = api.get("/api/media/m1/content")
    assert first["X-Mediastore-Copy"] == f"primary; store={primary_pk}"
    primary_path("m1").unlink()

    response = api.get("/api/media/m1/content")

    assert response.status_code == 200 and content(response) == b"kept twice"
    assert response["X-Mediastore-Copy"] == f"replica; store={shore_pk}"
    primary = copies(api, "m1")[0]
    assert primary["state"] == "MISSING" and "found by a read" in primary["error"]
    assert events("m1")[-1] == "media.verify_failed"
    # Known MISSING now: the replica is asked first; ranges and base64 downloads too.
    ranged = api.get("/api/media/m1/content", headers={"Range": "bytes=5-"})
    assert ranged.status_code == 206 and content(ranged) == b"twice"
    download = api.get("/api/download/m1")
    assert download["X-Mediastore-Copy"] == f"replica; store={shore_pk}"
    assert base64.b64decode(download.json()["base64"]) == b"kept twice"
    # The worker repairs the primary, and reads go back to it.
    replicate()
    assert copies(api, "m1")[0]["state"] == "GOOD"
    again = api.get("/api/media/m1/content")
    assert again["X-Mediastore-Copy"] == f"primary; store={primary_pk}" and content(again) == b"kept twice"


def test_a_stale_replica_is_never_served(api, id_types, stores):
    upload(api, "m1", b"old bytes")
    api.post("/api/media/m1/replicas", {"store_config": SHORE})
    replicate()
    assert api.put_content("m1", b"new bytes").status_code == 200
    primary_path("m1").unlink()

    response = api.get("/api/media/m1/content")

    assert response.status_code == 502, response.content
    assert copies(api, "m1")[1]["state"] == "STALE"


def test_without_a_replica_a_missing_primary_is_still_a_502(api, id_types, stores):
    upload(api, "m1", b"alone")
    primary_path("m1").unlink()
    assert api.get("/api/media/m1/content").status_code == 502


def test_presigned_urls_come_from_an_s3_replica_of_a_media_on_disk(api, id_types, stores, s3cfg, s3_bucket):
    upload(api, "m1", b"to the shore")
    assert api.get("/api/download/url/m1").status_code == 422  # a FilesystemStore cannot presign
    bucket = {"type": "BucketStore", "bucket": f"{s3_bucket}/shore", "s3_url": s3cfg.url}
    api.post("/api/media/m1/replicas", {"store_config": bucket})
    replicate()

    response = api.get("/api/download/url/m1")

    assert response.status_code == 200, response.content
    s3_pk = Replica.objects.get().store_config_id
    assert response["X-Mediastore-Copy"] == f"replica; store={s3_pk}"
    assert requests.get(response.json()["presigned_get"], timeout=30).content == b"to the shore"
    [item] = api.post("/api/download/urls", ["m1"]).json()
    assert requests.get(item["presigned_get"], timeout=30).content == b"to the shore"


def test_a_move_of_a_media_whose_primary_is_lost_copies_its_good_replica(api, id_types, stores):
    upload(api, "m1", b"moved from the copy")
    api.post("/api/media/m1/replicas", {"store_config": SHORE})
    replicate()
    primary_path("m1").unlink()

    response = api.patch("/api/media/m1", {"store_config": {"type": "FilesystemStore", "bucket": "third"}})

    assert response.status_code == 204, response.content
    assert api.get("/api/media/m1").json()["store_config"]["bucket"] == "third"
    assert primary_path("m1").read_bytes() == b"moved from the copy"
    assert [c["state"] for c in copies(api, "m1")] == ["GOOD", "GOOD"]


def test_a_move_without_any_readable_copy_is_refused_and_changes_nothing(api, id_types, stores):
    upload(api, "m1", b"lost")
    primary_path("m1").unlink()
    response = api.patch("/api/media/m1", {"store_config": {"type": "FilesystemStore", "bucket": "third"}})
    assert response.status_code == 502, response.content
    assert api.get("/api/media/m1").json()["store_config"]["bucket"] == "ship"
