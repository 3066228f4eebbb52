"""The same bytes get the same ``content_type`` whichever way they came (issue 33, item 10b).

Regression: with no type declared, a base64 upload recorded ``application/octet-stream`` but a
presigned upload's completion (and an import, and an in-place ingest of a PENDING media) recorded
``""``. A declared type is kept; none declared is ``application/octet-stream`` everywhere.
"""

from __future__ import annotations

import base64
import importlib

import pytest
import requests
from django.apps import apps

from media.models import Media, StoreStatus
from tests.conftest import DICT_STORE, create_media, media_body

pytestmark = pytest.mark.django_db

DATA = b"the same bytes \x00\x01"
OCTETS = "application/octet-stream"
B64 = base64.b64encode(DATA).decode()


def upload(api, pid: str, store: dict, **extra) -> dict:
    response = api.post("/api/upload", {"mediadata": media_body(pid, store_config=store), **extra})
    assert response.status_code == 200, response.content
    return response.json()


def content_type(api, pid: str) -> str:
    media = api.get(f"/api/media/{pid}").json()
    assert media["store_status"] == "READY"
    return media["content_type"]


def test_base64_upload_and_upload_again(api, id_types):
    upload(api, "b64", DICT_STORE, base64=B64)
    assert upload(api, "again", DICT_STORE)["presigned_put"] is None  # PENDING, as storage-utils does
    assert api.get("/api/media/again").json()["content_type"] == ""  # nothing declared yet
    upload(api, "again", DICT_STORE, base64=B64)
    assert content_type(api, "b64") == content_type(api, "again") == OCTETS


def test_completion_of_bytes_put_by_another_way(api, id_types):
    """``POST /api/upload/{pid}/complete`` of a media whose object arrived in its store (as through
    a presigned URL): switch_bytes was asked to keep the type, which was empty."""
    create_media(api, "done")
    media = Media.objects.get(pid="done")
    media.store_config.backend().put(media.store_key, DATA)
    completed = api.post("/api/upload/done/complete")
    assert completed.status_code == 200, completed.content
    assert completed.json()["content_type"] == OCTETS


@pytest.mark.parametrize("declared", ["", "image/png"])
def test_presigned_upload_completion(api, id_types, store_for, declared):
    url = upload(api, "signed", store_for("BucketStore"), content_type=declared)["presigned_put"]
    headers = {"Content-Type": declared} if declared else {}
    with requests.Session() as session:
        session.trust_env = False
        assert session.put(url, data=DATA, headers=headers, timeout=30).status_code == 200
    assert api.post("/api/upload/signed/complete").status_code == 200
    assert content_type(api, "signed") == (declared or OCTETS)


def test_a_declared_type_survives_the_second_upload_without_one(api, id_types):
    upload(api, "typed", DICT_STORE, content_type="text/csv")
    upload(api, "typed", DICT_STORE, base64=B64)
    assert content_type(api, "typed") == "text/csv"


def test_raw_put_without_a_type(api, id_types):
    create_media(api, "raw")
    assert api.put_content("raw", DATA, content_type="").status_code == 200
    assert content_type(api, "raw") == OCTETS


def test_the_migration_fills_ready_media_only(api, id_types):
    create_media(api, "pending")
    upload(api, "ready", DICT_STORE, base64=B64)
    upload(api, "typed", DICT_STORE, base64=B64, content_type="text/plain")
    Media.objects.filter(pid__in=["ready", "pending"]).update(content_type="")  # as recorded before
    migration = importlib.import_module("media.migrations.0007_default_content_type")
    migration.fill_default_content_type(apps, None)
    types = dict(Media.objects.values_list("pid", "content_type"))
    assert types == {"pending": "", "ready": OCTETS, "typed": "text/plain"}
    assert Media.objects.get(pid="ready").store_status == StoreStatus.READY


LONG_TYPE = "application/" + "x" * 250  # 262 characters: more than the column's 255
BROKEN_TYPES = [LONG_TYPE, "text/html\r\nX-Evil: 1", "text/plain\x1b", "text/\x7fplain"]


@pytest.mark.parametrize("declared", BROKEN_TYPES)
def test_a_content_type_no_header_can_carry_is_422_on_every_upload(api, id_types, store_for, declared):
    """Over-long (PostgreSQL's 500) or with control characters (stored, then every download a
    500): refused before anything is stored, naming the field, by base64, presigned and multipart
    uploads alike."""
    bucket = store_for("BucketStore")
    for pid, store, extra in [
        ("b64", DICT_STORE, {"base64": B64}),
        ("signed", bucket, {}),
        ("parts", bucket, {"multipart": {"size": 10}}),
    ]:
        body = {"mediadata": media_body(pid, store_config=store), "content_type": declared, **extra}
        answer = api.post("/api/upload", body)
        assert answer.status_code == 422, answer.content
        assert "content_type" in answer.json()["detail"][0]["error"]
        assert not Media.objects.filter(pid=pid).exists()


def test_a_put_with_an_over_long_content_type_is_422_and_keeps_the_bytes(api, id_types):
    upload(api, "kept", DICT_STORE, base64=B64)
    answer = api.client.put(
        "/api/media/kept/content",
        data=b"new bytes",
        content_type=LONG_TYPE,
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert answer.status_code == 422, answer.content
    assert "Content-Type" in answer.json()["detail"][0]["error"]
    assert b"".join(api.get("/api/media/kept/content").streaming_content) == DATA


def test_a_stored_content_type_with_a_line_break_downloads_as_octets(api, id_types):
    """Rows stored before the check came: the download serves the bytes rather than a 500."""
    upload(api, "old", DICT_STORE, base64=B64)
    Media.objects.filter(pid="old").update(content_type="text/html\r\nX-Evil: 1")
    answer = api.get("/api/media/old/content")
    assert answer.status_code == 200
    assert answer["Content-Type"] == OCTETS and "X-Evil" not in answer
    assert b"".join(answer.streaming_content) == DATA
