"""Regression tests for the prober's findings (each test's docstring names the bug it guards)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.core.management import call_command

from media.models import Media
from tests.conftest import create_media, media_body


@pytest.fixture
def staff(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    return client


def test_admin_pages_of_held_or_expiring_media_render(api, id_types, staff):
    """Bug: the admin media page and its history page answered 500 (datetime not JSON serializable)
    for a media with a hold or an expiry; a frozen media's page must be read-only, its reason escaped."""
    later = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    create_media(api, "exp1", expires_at=later.isoformat())
    create_media(api, "held1")
    reason = "<script>alert(1)</script>"
    assert api.post("/api/media/held1/hold", {"reason": reason, "freeze": True}).status_code == 200
    for pid in ("exp1", "held1"):
        pk = Media.objects.get(pid=pid).pk
        for page in ("change", "history"):
            response = staff.get(f"/admin/media/media/{pk}/{page}/")
            assert response.status_code == 200, (pid, page)
            text = response.content.decode()
            assert "<script>alert(1)</script>" not in text
    pk = Media.objects.get(pid="held1").pk
    text = staff.get(f"/admin/media/media/{pk}/history/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    change = staff.get(f"/admin/media/media/{pk}/change/")
    assert change.context["has_change_permission"] is False
    assert 'name="_save"' not in change.content.decode()
    text = staff.get(f"/admin/media/media/{Media.objects.get(pid='exp1').pk}/history/").content.decode()
    assert later.isoformat() in text


FAR = "9999-12-31T23:59:59-14:00"  # past datetime.max once converted to UTC


def test_times_out_of_range_in_utc_are_422(api, id_types):
    """Bug: an ``expires_at``/``until`` valid in its zone but past year 9999 in UTC was a 500
    (OverflowError) at create, bulk create, upload, PATCH and hold; also the search time filters."""
    create_media(api, "far1")
    answers = {
        "patch": api.patch("/api/media/far1", {"expires_at": FAR}),
        "create": api.post("/api/media", media_body("far2", expires_at=FAR)),
        "bulk": api.post("/api/media/create", [media_body("far3", expires_at=FAR)]),
        "upload": api.post("/api/upload", {"mediadata": media_body("far4", expires_at=FAR), "base64": ""}),
        "hold": api.post("/api/media/far1/hold", {"reason": "r", "until": FAR}),
        "search": api.post("/api/media/search", {"created_after": FAR}),
        "list": api.get(f"/api/media?created_after={quote(FAR)}"),
    }
    for name, response in answers.items():
        assert response.status_code == 422, (name, response.content)
        assert "out of range" in response.content.decode(), name
    assert not Media.objects.filter(pid__in=["far2", "far3", "far4"]).exists()
    assert api.get("/api/media/far1").json()["expires_at"] is None
    # The latest representable instant is fine.
    assert api.patch("/api/media/far1", {"expires_at": "9999-12-31T23:59:59+14:00"}).status_code == 204


def test_path_parts_longer_than_a_file_name_are_422(api, id_types, storage_root):
    """Bug: a FilesystemStore bucket (or a store key part) over 255 bytes was a 500 (OSError
    ENAMETOOLONG) at POST /api/store, at POST /api/media creating the store, and at upload."""
    long = "x" * 300
    answer = api.post("/api/store", {"type": "FilesystemStore", "bucket": long})
    assert answer.status_code == 422 and "247 bytes" in answer.content.decode(), answer.content
    body = media_body("long1", store_config={"type": "FilesystemStore", "bucket": long})
    answer = api.post("/api/media", body)
    assert answer.status_code == 422 and "247 bytes" in answer.content.decode(), answer.content
    assert api.post("/api/store", {"type": "SqliteStore", "bucket": f"a/{'y' * 247}"}).status_code == 200
    # A store key part too long for a file name is a 422 where it is used as it is (a read); a
    # new version's key (name~suffix) is cut to fit, so writing new bytes works.
    create_media(api, "long2", store_config={"type": "FilesystemStore", "bucket": "fs"})
    moved = api.put("/api/media/update/storekeys", [{"pid": "long2", "store_key": f"d/{long}"}])
    assert moved.json()["successes"] == ["long2"]
    answer = api.get("/api/media/long2/content")
    assert answer.status_code == 422 and "255 bytes" in answer.content.decode(), answer.content
    answer = api.put_content("long2", b"bytes")
    assert answer.status_code == 200, answer.content
    assert b"".join(api.get("/api/media/long2/content").streaming_content) == b"bytes"
    assert len(Media.objects.get(pid="long2").store_key.split("/")[-1]) == 255


def test_restore_after_the_expiry_passed_clears_it(api, id_types):
    """Bug: a media restored from the bin after its expires_at passed came back 200 but then
    answered 404 everywhere, PATCH could not clear it, and the next ``expire`` binned it again."""
    create_media(api, "gone1", expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    Media.objects.filter(pid="gone1").update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert api.get("/api/media/gone1").status_code == 404  # expired, not yet swept
    assert api.patch("/api/media/gone1", {"expires_at": None}).status_code == 404  # no rescue by PATCH
    call_command("expire")
    assert api.post("/api/trash/gone1/restore").status_code == 200
    answer = api.get("/api/media/gone1")
    assert answer.status_code == 200 and answer.json()["expires_at"] is None
    call_command("expire")
    assert api.get("/api/media/gone1").status_code == 200
    reasons = [entry["reason"] for entry in api.get("/api/media/gone1/history").json()]
    assert any("had passed: cleared" in (reason or "") for reason in reasons), reasons


def test_explicit_null_expiry_at_create_means_never(api, id_types):
    """Bug: an explicit ``"expires_at": null`` at create, bulk create and upload still got the
    store's default_ttl; only an absent expires_at takes it."""
    store = {"type": "DictStore", "bucket": "ttl"}
    pk = api.post("/api/store", store).json()["pk"]
    assert api.patch(f"/api/store/{pk}", {"default_ttl": 3600}).status_code == 200
    assert api.post("/api/media", media_body("n1", store_config=store, expires_at=None)).status_code == 200
    bulk = [media_body("n2", store_config=store, expires_at=None), media_body("n3", store_config=store)]
    assert api.post("/api/media/create", bulk).status_code == 200
    body = {"mediadata": media_body("n4", store_config=store, expires_at=None), "base64": "eA=="}
    assert api.post("/api/upload", body).status_code == 200
    body = {"mediadata": media_body("n5", store_config=store), "base64": "eA=="}
    assert api.post("/api/upload", body).status_code == 200
    expiries = {
        pid: api.get(f"/api/media/{pid}").json()["expires_at"] for pid in ("n1", "n2", "n3", "n4", "n5")
    }
    assert [pid for pid, when in expiries.items() if when is not None] == ["n3", "n5"], expiries
