"""A full disk is 507 Insufficient Storage, with nothing half-written and no row claiming bytes.

Regression: a write that ran out of space answered 502 like any other storage failure. The stores
here live on a real 2 MB tmpfs mounted for the test (as root); where mounting is not permitted the
tests skip saying so.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from media.models import Media
from stores.backends import LOCAL_STORE_TYPES
from tests.conftest import media_body

pytestmark = pytest.mark.django_db

BUCKETS = {"ZipStore": "objects.zip", "SqliteStore": "objects.sqlite"}
FIRST = os.urandom(20_000)


@pytest.fixture
def small_root(tmp_path, settings):
    """A storage root on a freshly mounted 2 MB tmpfs, unmounted again whatever happens."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, and mounting one needs root")
    command = ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount_point)]
    try:
        mounted = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount command on this machine to simulate a full disk with a small tmpfs")
    if mounted.returncode != 0:
        pytest.skip(f"mounting a small tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        settings.MEDIASTORE_STORAGE_ROOT = str(mount_point)
        yield mount_point
    finally:
        unmounted = subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=30)
        if unmounted.returncode != 0:  # something still open: detach it now, freed when closed
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


def free_bytes(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def put_content(api, pid: str, data: bytes):
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/octet-stream"}
    return api.client.put(f"/api/media/{pid}/content", data=data, headers=headers)


def content_of(api, pid: str) -> bytes:
    return b"".join(api.get(f"/api/media/{pid}/content").streaming_content)


def files_under(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def assert_insufficient_storage(response, bucket: str) -> None:
    assert response.status_code == 507, response.content
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "storage is full" in detail and f"'{bucket}'" in detail, detail


@pytest.mark.parametrize("store_type", LOCAL_STORE_TYPES)
def test_a_write_that_does_not_fit_is_507_and_changes_nothing(api, id_types, small_root, store_type):
    bucket = BUCKETS.get(store_type, "products")
    store = {"type": store_type, "bucket": bucket}
    assert api.post("/api/media", media_body("first", store_config=store)).status_code == 200
    assert put_content(api, "first", FIRST).status_code == 200
    assert api.post("/api/media", media_body("second", store_config=store)).status_code == 200
    files_before, free_before = files_under(small_root), free_bytes(small_root)
    too_big = os.urandom(free_before + (256 << 10))

    assert_insufficient_storage(put_content(api, "second", too_big), bucket)  # a new object
    assert_insufficient_storage(put_content(api, "first", too_big), bucket)  # replacing one
    body = {
        "mediadata": media_body("third", store_config=store),
        "base64": base64.b64encode(too_big).decode(),
    }
    assert_insufficient_storage(api.post("/api/upload", body), bucket)

    second = Media.objects.get(pid="second")
    assert (second.store_status, second.size, second.checksum) == ("PENDING", None, "")
    assert not Media.objects.filter(pid="third").exists()
    assert content_of(api, "first") == FIRST
    assert api.get("/api/media/first/verify").json()["ok"] is True
    assert files_under(small_root) <= files_before | {"objects.sqlite-wal", "objects.sqlite-shm"}
    assert free_bytes(small_root) >= free_before - (64 << 10)  # nothing partial left taking space
    assert put_content(api, "second", b"small").status_code == 200  # and the store still works
    assert content_of(api, "second") == b"small"


def test_a_zip_member_that_fits_once_but_not_twice(api, id_types, small_root):
    """A ZipStore spools the body first, then appends it over the archive's central directory: when
    the append runs out of space, the archive is cut back and its old end restored."""
    store = {"type": "ZipStore", "bucket": BUCKETS["ZipStore"]}
    assert api.post("/api/media", media_body("first", store_config=store)).status_code == 200
    assert put_content(api, "first", FIRST).status_code == 200
    assert api.post("/api/media", media_body("second", store_config=store)).status_code == 200
    archive = small_root / BUCKETS["ZipStore"]
    archive_before = archive.read_bytes()
    half_and_more = os.urandom(free_bytes(small_root) * 6 // 10)

    assert_insufficient_storage(put_content(api, "second", half_and_more), BUCKETS["ZipStore"])
    assert archive.read_bytes() == archive_before
    assert content_of(api, "first") == FIRST
    assert Media.objects.get(pid="second").store_status == "PENDING"
    assert put_content(api, "second", b"small").status_code == 200
    assert content_of(api, "second") == b"small" and content_of(api, "first") == FIRST
