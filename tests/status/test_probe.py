"""Store probes: reading /status/ or GET /api/stats never writes to a store; the probes are made by
``manage.py probe_stores`` (a timer) or by an administrator's ``?probe=true``, and recorded.

Regression (issue 32, item 4): every GET of /api/stats and every load of /status/ wrote and deleted
a probe object in every store, so any reader caused writes to every bucket. The object was deleted
again, so the stores are watched where a write leaves a trace even then: a versioned S3 bucket
keeps every version and delete marker, and a directory's modification time changes when a file is
created or removed in it.
"""

from __future__ import annotations

import base64
import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils.dateparse import parse_datetime

from status.models import StoreProbe
from tests.conftest import PASSWORD, ApiClient, media_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def watched(api, id_types, settings, tmp_path, s3_server, s3_bucket):
    """A FilesystemStore and a BucketStore in a versioned bucket, one READY media in each; returns
    ``snapshot()``, everything a write to either store would change."""
    settings.MEDIASTORE_STORAGE_ROOT = str(tmp_path / "root")
    s3 = s3_server.client()
    s3.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    keys = {"url": s3_server.url, "access_key": s3_server.access_key, "secret_key": s3_server.secret_key}
    assert api.post("/api/s3cfg", keys).status_code == 200
    stores = {
        "disk": {"type": "FilesystemStore", "bucket": "disk"},
        "bucket": {"type": "BucketStore", "bucket": f"{s3_bucket}/in", "s3_url": s3_server.url},
    }
    for name, store in stores.items():
        content = base64.b64encode(b"bytes").decode()
        body = {"mediadata": media_body(name, store_config=store), "base64": content}
        assert api.post("/api/upload", body).status_code == 200
    disk = Path(settings.MEDIASTORE_STORAGE_ROOT) / "disk"

    def snapshot() -> dict:
        versions = s3.list_object_versions(Bucket=s3_bucket)
        return {
            "files": sorted(
                (str(path.relative_to(disk)), path.stat().st_size, path.stat().st_mtime_ns)
                for path in [disk, *disk.rglob("*")]
            ),
            "directories": sorted((root, os.stat(root).st_mtime_ns) for root, _, _ in os.walk(disk)),
            "versions": sorted((v["Key"], v["VersionId"]) for v in versions.get("Versions", [])),
            "delete_markers": sorted((m["Key"], m["VersionId"]) for m in versions.get("DeleteMarkers", [])),
        }

    return snapshot


def reader_client(django_user_model) -> tuple[ApiClient, Client]:
    """A member of ``readers``: a token client and a logged-in browser."""
    from tests.permissions_support import role

    reader = django_user_model.objects.create_user(username="reader", password=PASSWORD)
    reader.groups.add(role("readers"))
    token = ApiClient().post("/api/login", {"username": "reader", "password": PASSWORD}).json()["token"]
    page = Client()
    page.login(username="reader", password=PASSWORD)
    return ApiClient(token), page


def test_reading_stats_and_the_status_page_writes_to_no_store(api, user, watched, django_user_model):
    call_command("probe_stores", stdout=StringIO())  # there is a last probe to show
    before = watched()
    assert before["versions"] and before["files"]
    reader_api, reader_page = reader_client(django_user_model)
    admin_page = Client()
    admin_page.force_login(user)

    for client in (api, reader_api):
        response = client.get("/api/stats")
        assert response.status_code == 200, response.content
        assert all(store["health"]["writable"] for store in response.json()["stores"])
    for page in (reader_page, admin_page):
        response = page.get("/status/")
        assert response.status_code == 200 and "probe_stores" in response.content.decode()

    assert watched() == before


def test_probe_stores_records_what_stats_then_shows(api, watched):
    stores = api.get("/api/stats").json()["stores"]
    assert [store["health"] for store in stores] == [None, None]  # never probed: nothing made up
    before = watched()

    out = StringIO()
    call_command("probe_stores", stdout=out)

    assert "Probed 2 store(s), 0 failed." in out.getvalue()
    after = watched()
    assert len(after["delete_markers"]) == len(before["delete_markers"]) + 1  # the probe was real
    stats = api.get("/api/stats").json()
    for store in stats["stores"]:
        health = store["health"]
        assert health["reachable"] and health["writable"] and health["error"] == "", store
        assert health["age_s"] >= 0 and parse_datetime(health["probed_at"]) <= parse_datetime(
            stats["generated"]
        )
    assert StoreProbe.objects.count() == 2


def test_admins_probe_now_with_probe_true(api, user, watched):
    before = watched()

    stats = api.get("/api/stats?probe=true").json()

    assert [store["health"]["age_s"] for store in stats["stores"]] == [0.0, 0.0]
    assert all(store["health"]["writable"] for store in stats["stores"])
    assert len(watched()["delete_markers"]) == len(before["delete_markers"]) + 1
    # recorded: the next plain GET shows the same probe
    again = api.get("/api/stats").json()["stores"]
    assert [s["health"]["probed_at"] for s in again] == [s["health"]["probed_at"] for s in stats["stores"]]
    page = Client()
    page.force_login(user)
    response = page.get("/status/?probe=true")
    assert response.status_code == 200 and "Probed just now." in response.content.decode()
    assert 'href="?probe=true"' in page.get("/status/").content.decode()


def test_probe_true_is_refused_to_others_and_writes_nothing(api, watched, django_user_model):
    reader_api, reader_page = reader_client(django_user_model)
    before = watched()

    response = reader_api.get("/api/stats?probe=true")
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert "stores.change_storeconfig" in detail and "admins" in detail

    narrow = api.post("/api/tokens", {"name": "reading", "scopes": ["read"]})
    assert narrow.status_code in (200, 201), narrow.content
    response = ApiClient(narrow.json()["token"]).get("/api/stats?probe=true")
    assert response.status_code == 403 and "'admin'" in response.json()["detail"]

    assert reader_page.get("/status/?probe=true").status_code == 403
    assert 'href="?probe=true"' not in reader_page.get("/status/").content.decode()
    assert watched() == before
    assert not StoreProbe.objects.exists()


def test_a_failed_probe_fails_the_command_and_is_shown(api, watched, settings):
    disk = Path(settings.MEDIASTORE_STORAGE_ROOT) / "disk"
    for path in sorted(disk.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    disk.rmdir()
    disk.write_text("not a directory")
    out = StringIO()

    with pytest.raises(CommandError, match="not writable: .*FilesystemStore:disk"):
        call_command("probe_stores", stdout=out)

    assert "Probed 2 store(s), 1 failed." in out.getvalue()
    stores = {s["type"]: s["health"] for s in api.get("/api/stats").json()["stores"]}
    assert stores["FilesystemStore"]["writable"] is False and stores["FilesystemStore"]["error"]
    assert stores["BucketStore"]["writable"] is True


def test_a_deleted_store_loses_its_probe(api, id_types):
    pk = api.post("/api/store", {"type": "DictStore", "bucket": "gone"}).json()["pk"]
    call_command("probe_stores", stdout=StringIO())
    assert StoreProbe.objects.filter(store_config_id=pk).exists()
    assert api.delete(f"/api/store/{pk}").status_code == 204

    assert api.get("/api/stats").json()["stores"] == []
    call_command("probe_stores", stdout=StringIO())
    assert not StoreProbe.objects.exists()
