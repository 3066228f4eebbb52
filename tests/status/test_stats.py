"""GET /api/stats and /status/: exact figures on a known data set, who may see them, and a
statement count that does not grow with the number of media."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from media.models import Media
from tests.conftest import PASSWORD, ApiClient, media_body

pytestmark = pytest.mark.django_db

RAM = {"type": "DictStore", "bucket": "ram"}
FS = {"type": "FilesystemStore", "bucket": "disk"}


@pytest.fixture
def dataset(api, id_types, settings, tmp_path):
    """READY: 3 local + 1 doi in RAM (sizes 1, 2, 3 and 10), 2 local on disk (100 and 200 bytes);
    PENDING: 1 local in RAM and 1 bin on disk. One READY media failed its fixity check, one was
    created 3 days ago."""
    settings.MEDIASTORE_STORAGE_ROOT = str(tmp_path / "root")

    def upload(pid, store, size, pid_type="local"):
        body = {
            "mediadata": media_body(pid, store_config=store, pid_type=pid_type),
            "base64": base64.b64encode(b"x" * size).decode(),
        }
        assert api.post("/api/upload", body).status_code == 200

    for n, size in enumerate([1, 2, 3]):
        upload(f"r{n}", RAM, size)
    upload("10.1234/d", RAM, 10, pid_type="doi")
    upload("f1", FS, 100)
    upload("f2", FS, 200)
    assert api.post("/api/media", media_body("p1", store_config=RAM)).status_code == 200
    pending = media_body("D20240101T000000_IFCB001", store_config=FS, pid_type="bin")
    assert api.post("/api/media", pending).status_code == 200
    now = timezone.now()
    Media.objects.filter(pid="f2").update(verified_at=now, verify_ok=False, verify_error="missing: gone")
    Media.objects.filter(pid="r0").update(created=now - timedelta(days=3))
    return now


def test_stats_figures_are_exact(api, dataset):
    call_command("probe_stores", stdout=StringIO())
    response = api.get("/api/stats")

    assert response.status_code == 200, response.content
    stats = response.json()
    assert stats["media"] == 8 and stats["bytes"] == 316
    assert stats["by_status"] == {"PENDING": 2, "READY": 6}
    assert stats["by_pid_type"] == {"local": 6, "bin": 1, "doi": 1}
    stores = {s["type"]: s for s in stats["stores"]}
    assert (stores["DictStore"]["media"], stores["DictStore"]["objects"], stores["DictStore"]["bytes"]) == (
        5,
        4,
        16,
    )
    assert (stores["FilesystemStore"]["media"], stores["FilesystemStore"]["objects"]) == (3, 2)
    assert stores["FilesystemStore"]["bytes"] == 300
    for store in stores.values():
        assert store["health"]["reachable"] and store["health"]["writable"], store
        assert store["health"]["latency_ms"] >= 0 and store["health"]["error"] == ""
        assert store["health"]["age_s"] >= 0 and parse_datetime(
            store["health"]["probed_at"]
        ) <= parse_datetime(stats["generated"])
    days = stats["created_per_day"]
    assert len(days) == 30 and days[-1]["day"] == dataset.date().isoformat()
    assert days[-1]["count"] == 7 and days[-4]["count"] == 1 and sum(d["count"] for d in days) == 8
    assert stats["verify_failed"] == 1
    assert [(f["pid"], f["error"]) for f in stats["verify_failures"]] == [("f2", "missing: gone")]


def test_health_false_skips_the_probes(api, dataset):
    stats = api.get("/api/stats?health=false").json()
    assert [store["health"] for store in stats["stores"]] == [None, None]


def test_unwritable_store_is_reported(api, dataset, settings, tmp_path):
    """A filesystem store whose directory became a file: reachable lookups fail, nothing writable."""
    disk = tmp_path / "root" / "disk"
    for child in disk.iterdir():
        child.unlink()
    disk.rmdir()
    disk.write_text("not a directory")

    stores = {s["type"]: s for s in api.get("/api/stats?probe=true").json()["stores"]}

    assert stores["FilesystemStore"]["health"]["writable"] is False
    assert stores["FilesystemStore"]["health"]["error"]
    assert stores["DictStore"]["health"]["writable"] is True


def test_stats_needs_a_token_and_the_view_permission(anon, django_user_model):
    assert anon.get("/api/stats").status_code == 401
    django_user_model.objects.create_user(username="nobody", password=PASSWORD)
    token = anon.post("/api/login", {"username": "nobody", "password": PASSWORD}).json()["token"]
    response = ApiClient(token).get("/api/stats")
    assert response.status_code == 403 and "media.view_media" in response.json()["detail"]


def test_statement_count_does_not_grow_with_the_media(api, id_types):
    def statements() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/api/stats?health=false").status_code == 200
        return len(queries)

    assert api.post("/api/media", media_body("one", store_config=RAM)).status_code == 200
    few = statements()
    for n in range(30):
        assert (
            api.post("/api/media", media_body(f"m{n}", store_config=RAM, pid_type="local")).status_code == 200
        )
    assert api.post("/api/media", media_body("x", store_config=FS)).status_code == 200
    assert statements() == few


def test_status_page_for_staff_and_readers_only(dataset, django_user_model):
    from tests.permissions_support import role

    page = Client()
    response = page.get("/status/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/?next=/status/")

    django_user_model.objects.create_user(username="plain", password=PASSWORD)
    page.login(username="plain", password=PASSWORD)
    assert page.get("/status/").status_code == 302

    reader = django_user_model.objects.create_user(username="reader", password=PASSWORD)
    reader.groups.add(role("readers"))
    page.login(username="reader", password=PASSWORD)
    response = page.get("/status/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") == 7 and "f2" in html and "missing: gone" in html  # 7: bytes per owner
    # Nothing loaded from elsewhere (pygal's inline script only holds its configuration).
    assert not re.search(r"<script[^>]*src=", html) and not re.search(r"(src|href)=.https?://", html)

    staff = django_user_model.objects.create_user(username="staff", password=PASSWORD, is_staff=True)
    page.force_login(staff)
    assert page.get("/status/").status_code == 200


def test_status_page_is_linked_from_home_and_admin(admin_client):
    assert 'href="/status/"' in Client().get("/").content.decode()
    assert 'href="/status/"' in admin_client.get("/admin/").content.decode()


def test_status_page_search_form_downloads_an_archive(api, id_types, django_user_model):
    """Issue 28 item 3: the status page's form GETs /status/archive, which answers the archive of
    GET /api/download/archive for the same filters (empty fields left out) to a session."""
    import base64
    import io
    import zipfile

    from tests.conftest import DICT_STORE, media_body
    from tests.permissions_support import role

    for pid, tags in (("s1", ["pick"]), ("s2", ["pick"]), ("s3", [])):
        body = {"mediadata": media_body(pid, store_config=DICT_STORE, tags=tags), "base64": "aGk="}
        assert api.post("/api/upload", body).status_code == 200
    page = Client()
    assert page.get("/status/archive?tags=pick").status_code == 302  # no session: log in first
    reader = django_user_model.objects.create_user(username="reader", password=PASSWORD)
    reader.groups.add(role("readers"))
    page.login(username="reader", password=PASSWORD)
    html = page.get("/status/").content.decode()
    assert 'action="/status/archive"' in html
    response = page.get("/status/archive?tags=pick&pid=&format=zip")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert [n for n in archive.namelist() if n.startswith("data/")] == ["data/s1", "data/s2"]
        assert archive.read("data/s1") == base64.b64decode("aGk=")
    refused = page.get("/status/archive?format=rar")
    assert refused.status_code == 422 and "format" in refused.content.decode()
