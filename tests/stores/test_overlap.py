"""Local stores never share a place on disk.

Regression: FilesystemStore bucket ``a`` with store key ``sub/k`` and FilesystemStore bucket
``a/sub`` with key ``k`` were the same file: writing one media overwrote the other, and deleting
one left the other READY with its bytes gone. Now a local store (directory, zip or SQLite file)
whose place equals another type's, lies inside or contains another local store's is refused with
422 on every path that creates store configurations.
"""

from __future__ import annotations

import base64
import io
import threading
import time

import pytest
from django.db import connection, transaction

from media.models import Media
from mediastore.errors import RuleViolation
from stores import services
from stores.models import StoreConfig
from tests.conftest import error_message, media_body

pytestmark = pytest.mark.django_db


def store(store_type: str, bucket: str) -> dict:
    return {"type": store_type, "bucket": bucket}


def assert_refused(response, other_type: str, other_bucket: str) -> None:
    error = error_message(response)
    assert f"{other_type} '{other_bucket}'" in error, error


FS, HD, ZIP, SQL = "FilesystemStore", "HashdirStore", "ZipStore", "SqliteStore"


@pytest.mark.parametrize(
    "first,second",
    [
        ((FS, "a"), (FS, "a/sub")),  # inside
        ((FS, "a/sub"), (FS, "a")),  # contains
        ((FS, "a"), (HD, "a")),  # the same directory, another type
        ((HD, "a"), (FS, "a/b/c")),
        ((FS, "a"), (ZIP, "a/objects.zip")),
        ((ZIP, "x.zip"), (FS, "x.zip/d")),
        ((ZIP, "x.zip"), (SQL, "x.zip")),
        ((SQL, "d/x.sqlite"), (FS, "d")),
        ((SQL, "x.sqlite"), (FS, "x.sqlite-wal")),  # a file SQLite keeps beside its own
        ((ZIP, "z"), (HD, "z.lock/inner")),
        ((FS, "a"), (FS, "//a/./sub//")),  # spelt differently, still inside
        ((FS, "/a/"), (HD, "./a")),
    ],
)
def test_overlapping_local_store_is_422_naming_the_other(api, storage_root, first, second):
    created = api.post("/api/store", store(*first))
    assert created.status_code == 200, created.content
    assert_refused(api.post("/api/store", store(*second)), first[0], created.json()["bucket"])
    assert StoreConfig.objects.count() == 1


@pytest.mark.parametrize(
    "first,second",
    [
        ((FS, "a"), (FS, "ab")),
        ((FS, "a"), (ZIP, "a.zip")),
        ((SQL, "d/x.db"), (SQL, "d/y.db")),
        ((FS, "a"), (DICT := "DictStore", "a")),
    ],
)
def test_neighbours_do_not_overlap(api, storage_root, first, second):
    assert api.post("/api/store", store(*first)).status_code == 200
    assert api.post("/api/store", store(*second)).status_code == 200
    assert StoreConfig.objects.count() == 2


@pytest.mark.parametrize("spelling", ["a", "/a", "a/", "//a/.", "./a"])
def test_the_same_store_is_got_not_refused(api, storage_root, spelling):
    pk = api.post("/api/store", store(FS, "a")).json()["pk"]
    response = api.post("/api/store", store(FS, spelling))
    assert response.status_code == 200 and response.json()["pk"] == pk


def test_a_symlinked_alias_is_the_same_place(api, storage_root):
    (storage_root / "a").mkdir()
    (storage_root / "alias").symlink_to(storage_root / "a")
    assert api.post("/api/store", store(FS, "a")).status_code == 200
    assert_refused(api.post("/api/store", store(HD, "alias/inner")), FS, "a")


def test_the_original_scenario_is_refused_up_front(api, storage_root, id_types):
    """Media in bucket ``a`` under key ``sub/k``; a second store ``a/sub`` would reach that file
    with key ``k``. The second store is refused, and keys cannot climb out of a store either."""
    assert api.post("/api/media", media_body("m1", store_config=store(FS, "a"))).status_code == 200
    result = api.put("/api/media/update/storekeys", [{"pid": "m1", "store_key": "sub/k"}]).json()
    assert result["failures"] == [], result
    headers = {"Authorization": f"Bearer {api.token}"}
    assert api.client.put("/api/media/m1/content", data=b"one", headers=headers).status_code == 200
    key = Media.objects.get(pid="m1").store_key  # each write goes to a fresh key beside "sub/k"
    assert key.startswith("sub/k~") and (storage_root / "a" / key).read_bytes() == b"one"
    assert_refused(api.post("/api/media", media_body("m2", store_config=store(FS, "a/sub"))), FS, "a")
    assert not Media.objects.filter(pid="m2").exists()
    result = api.put("/api/media/update/storekeys", [{"pid": "m1", "store_key": "../b/k"}]).json()
    assert result["successes"] == []
    assert api.get("/api/media/m1/verify").json()["ok"] is True


def test_every_path_that_creates_stores_refuses_overlap(api, storage_root, id_types):
    assert api.post("/api/store", store(FS, "a")).status_code == 200
    inner = store(ZIP, "a/inner.zip")
    assert_refused(api.post("/api/media", media_body("m1", store_config=inner)), FS, "a")
    body = {"mediadata": media_body("m2", store_config=inner), "base64": base64.b64encode(b"x").decode()}
    assert_refused(api.post("/api/upload", body), FS, "a")
    assert api.post("/api/media", media_body("m3")).status_code == 200
    assert_refused(api.patch("/api/media/m3", {"store_config": inner}), FS, "a")
    assert Media.objects.get(pid="m3").store_config.type == "DictStore"
    assert not Media.objects.filter(pid__in=["m1", "m2"]).exists()
    assert StoreConfig.objects.filter(type=ZIP).count() == 0


@pytest.mark.parametrize(
    "store_type,make",
    [
        (ZIP, lambda path: path.mkdir()),
        (SQL, lambda path: path.mkdir()),
        (FS, lambda path: path.write_bytes(b"not a directory")),
        (HD, lambda path: path.write_bytes(b"not a directory")),
    ],
)
def test_a_place_of_the_wrong_kind_is_refused_at_creation(api, storage_root, store_type, make):
    make(storage_root / "thing")
    response = api.post("/api/store", store(store_type, "thing"))
    assert "cannot be created" in error_message(response)
    assert not StoreConfig.objects.exists()


def test_a_file_among_the_parents_is_refused(api, storage_root):
    (storage_root / "plain").write_bytes(b"x")
    response = api.post("/api/store", store(FS, "plain/dir"))
    assert response.status_code == 422
    assert not StoreConfig.objects.exists()


def test_rows_that_overlap_from_before_keep_working(api, storage_root):
    """Rows written before this check (overlapping each other, or unusable) crash nothing: each is
    still got by its own description, and new stores overlapping them are refused."""
    outer = StoreConfig.objects.create(type=FS, bucket="/a")  # spelt as old servers kept it
    inner = StoreConfig.objects.create(type=FS, bucket="a/sub")
    StoreConfig.objects.create(type=FS, bucket="../outside")
    assert api.get("/api/stores").status_code == 200
    assert api.post("/api/store", store(FS, "a")).json()["pk"] == outer.pk
    assert api.post("/api/store", store(FS, "a/sub")).json()["pk"] == inner.pk
    response = api.post("/api/store", store(HD, "a/other"))
    assert response.status_code == 422
    assert api.post("/api/store", store(FS, "b")).status_code == 200


def test_admin_refuses_overlap_and_normalises(client, django_user_model, storage_root):
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    url = "/admin/stores/storeconfig/add/"
    assert client.post(url, {"type": FS, "bucket": "//a/./"}).status_code == 302
    assert StoreConfig.objects.get().bucket == "a"
    page = client.post(url, {"type": SQL, "bucket": "a/db.sqlite"})
    assert page.status_code == 200
    assert "FilesystemStore &#x27;a&#x27;" in page.content.decode()
    assert StoreConfig.objects.count() == 1
    change = f"/admin/stores/storeconfig/{StoreConfig.objects.get().pk}/change/"
    assert client.post(change, {"type": FS, "bucket": "a"}).status_code == 302  # itself is no overlap


# serialized_rollback: the flush after a plain transactional test re-creates content types under new
# ids, and test_permissions' upgrade test, which restores serialized rows, then collides with them.
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_creation_waits_and_then_sees_the_other(storage_root):
    """Two requests creating overlapping stores at once: the second waits for the first's lock and
    then finds its row. Without the lock both would pass the check and both rows would exist."""
    if connection.vendor != "postgresql":
        assert connection.settings_dict["OPTIONS"].get("transaction_mode") == "IMMEDIATE"
        pytest.skip("SQLite: every transaction takes the write lock at BEGIN (IMMEDIATE), checked above")
    outcome: list[object] = []

    def second() -> None:
        try:
            outcome.append(services.store_get_or_create(type=HD, bucket="a/sub", user=None))
        except RuleViolation as exc:
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=second)
    with transaction.atomic():
        assert services.claim_local_place(FS, "a") is None
        StoreConfig.objects.create(type=FS, bucket="a")
        thread.start()
        deadline = time.monotonic() + 30
        while not waiting_for_advisory_lock():
            assert time.monotonic() < deadline, "the second creation never waited for the lock"
            assert thread.is_alive(), f"the second creation did not wait: {outcome}"
            time.sleep(0.05)
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], RuleViolation), outcome
    assert "FilesystemStore 'a'" in outcome[0].message
    assert list(StoreConfig.objects.values_list("bucket", flat=True)) == ["a"]


def waiting_for_advisory_lock() -> bool:
    """Whether a session of this test database waits for an advisory lock (pg_locks lists those of
    every database of the server: other xdist workers' and other runs' too)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0] > 0


def test_check_store_overlaps_lists_rows_from_before(storage_root):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = io.StringIO()
    StoreConfig.objects.create(type=FS, bucket="a")
    StoreConfig.objects.create(type=ZIP, bucket="b.zip")
    StoreConfig.objects.create(type="DictStore", bucket="a")
    call_command("check_store_overlaps", stdout=out)
    assert "No overlapping local stores." in out.getvalue()
    inner = StoreConfig.objects.create(type=SQL, bucket="a/x.sqlite")
    StoreConfig.objects.create(type=FS, bucket="../outside")  # unusable: skipped, no crash
    with pytest.raises(CommandError, match="1 overlapping pair"):
        call_command("check_store_overlaps", stdout=out)
    assert f"overlaps store {inner.pk} (SqliteStore:a/x.sqlite)" in out.getvalue()
