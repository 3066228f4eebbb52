"""Issue 27, the recycle bin (``MEDIASTORE_TRASH_DAYS``): a DELETE (one, bulk, admin) keeps record
and bytes; the pid answers 404 and may be taken at once by a new media (the binned one is then
purged); ``GET /api/trash`` lists, ``POST /api/trash/{pid}/restore`` brings one back exactly,
``DELETE /api/trash/{pid}`` and ``manage.py purge_trash`` remove for good. Local stores, so the
objects on disk show what stays and what goes."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command

from content.models import Replica
from media.models import BinnedMedia, Media, MediaEvent
from stores.models import StoreConfig
from tests.conftest import PASSWORD, ApiClient, media_body

pytestmark = pytest.mark.django_db

PRIMARY = {"type": "FilesystemStore", "bucket": "ship"}
SHORE = {"type": "FilesystemStore", "bucket": "shore"}


@pytest.fixture
def stores(settings, storage_root):
    settings.MEDIASTORE_TRASH_DAYS = 7
    return storage_root


@pytest.fixture
def writer(django_user_model) -> ApiClient:
    from tests.permissions_support import role

    bob = django_user_model.objects.create_user(username="bob", password=PASSWORD)
    bob.groups.add(role("writers"))
    return ApiClient(
        ApiClient().post("/api/login", {"username": "bob", "password": PASSWORD}).json()["token"]
    )


def upload(api, pid: str, data: bytes, **over) -> dict:
    body = {
        "mediadata": media_body(pid, store_config=PRIMARY, **over),
        "base64": base64.b64encode(data).decode(),
    }
    response = api.post("/api/upload", body)
    assert response.status_code == 200, response.content
    return api.get(f"/api/media/{pid}").json()


def object_path(store_pk: int, key: str) -> Path:
    [directory] = StoreConfig.objects.get(pk=store_pk).backend().local_paths()
    return directory / key


def path_of(media: dict) -> Path:
    return object_path(media["store_config"]["pk"], Media.objects.get(pid=media["pid"]).store_key)


def events(pid: str) -> list[str]:
    return list(MediaEvent.objects.filter(pid=pid).order_by("seq").values_list("type", flat=True))


def test_delete_bins_and_restore_brings_back_exactly(api, id_types, stores, writer):
    media = upload(api, "m1", b"kept bytes", tags=["b", "a"], metadata={"x": {"y": 1}}, identifiers={})
    path = path_of(media)
    assert writer.delete("/api/media/m1").status_code == 204
    assert api.get("/api/media/m1").status_code == 404
    assert path.read_bytes() == b"kept bytes"  # the bytes stay
    page = api.get("/api/trash").json()
    assert page["count"] == 1 and page["next"] is None
    [item] = page["items"]
    assert item["pid"] == "m1" and item["deleted_by"] == "bob" and item["media"]["tags"] == ["a", "b"]
    assert datetime.fromisoformat(item["purge_after"]) - datetime.fromisoformat(
        item["deleted_at"]
    ) == timedelta(days=7)
    assert api.get("/api/trash?pid_prefix=m").json()["count"] == 1
    assert api.get("/api/trash?pid_prefix=z").json()["count"] == 0
    restored = writer.post("/api/trash/m1/restore")
    assert restored.status_code == 200, restored.content
    again = api.get("/api/media/m1").json()
    same = {k: v for k, v in again.items() if k not in ("mark", "version", "updated")}
    assert same == {k: v for k, v in media.items() if k not in ("mark", "version", "updated")}
    assert again["mark"] > media["mark"] and int(again["version"]) == int(media["version"]) + 1
    assert b"".join(api.get("/api/media/m1/content").streaming_content) == b"kept bytes"
    assert api.post("/api/media/search", {"tags": ["a"]}).json()[0]["pid"] == "m1"  # taggit rows back
    assert events("m1")[-2:] == ["media.deleted", "media.restored"]
    history = api.get("/api/media/m1/history").json()
    assert [h["action"] for h in history[:2]] == ["changed", "deleted"]
    assert history[0]["reason"] == "restored from the recycle bin"
    assert api.get("/api/trash").json()["count"] == 0
    assert api.post("/api/trash/m1/restore").status_code == 404


def test_trash_days_0_deletes_for_good(api, id_types, stores, settings):
    settings.MEDIASTORE_TRASH_DAYS = 0
    path = path_of(upload(api, "m1", b"gone"))
    assert api.delete("/api/media/m1").status_code == 204
    assert not path.exists() and not BinnedMedia.objects.exists()
    assert api.get("/api/trash").json()["count"] == 0


def test_a_new_media_takes_the_pid_and_the_binned_one_is_purged(
    api, id_types, stores, django_capture_on_commit_callbacks
):
    old = path_of(upload(api, "m1", b"old"))
    api.delete("/api/media/m1")
    with django_capture_on_commit_callbacks(execute=True):
        new = upload(api, "m1", b"new")
    assert not old.exists() and path_of(new).read_bytes() == b"new"
    assert not BinnedMedia.objects.exists()
    reasons = [h["reason"] for h in api.get("/api/media/m1/history").json()]
    assert "purged from the recycle bin: its pid was taken by a new media" in reasons
    assert api.post("/api/trash/m1/restore").status_code == 404


def test_restore_refuses_a_taken_pid_or_store_key_and_never_deletes_anothers_bytes(
    api, id_types, stores, django_capture_on_commit_callbacks
):
    upload(api, "m1", b"one")
    upload(api, "m2", b"two")
    key = Media.objects.get(pid="m1").store_key
    api.delete("/api/media/m1")
    # Another media renamed to the pid: 409, the bin keeps it.
    assert api.patch("/api/media/m2", {"new_pid": "m1"}).status_code == 204
    answer = api.post("/api/trash/m1/restore")
    assert answer.status_code == 409 and "exists again" in answer.json()["detail"][0]["error"]
    assert BinnedMedia.objects.filter(pid="m1").exists()
    api.patch("/api/media/m1", {"new_pid": "m2"})
    # Another media pointed at the binned one's key: its bytes now; the binned one is purged.
    path = object_path(Media.objects.get(pid="m2").store_config_id, key)
    with django_capture_on_commit_callbacks(execute=True):
        result = api.put("/api/media/update/storekeys", [{"pid": "m2", "store_key": key}]).json()
    assert result["successes"] == ["m2"]
    assert not BinnedMedia.objects.exists() and path.read_bytes() == b"one"
    assert b"".join(api.get("/api/media/m2/content").streaming_content) == b"one"


def test_overwritten_bytes_are_never_restored(api, id_types, stores):
    media = upload(api, "m1", b"one")
    path = path_of(media)
    api.delete("/api/media/m1")
    path.write_bytes(b"foreign bytes")  # the object changed under the binned media
    answer = api.post("/api/trash/m1/restore")
    assert answer.status_code == 409 and "overwritten" in answer.json()["detail"][0]["error"]
    assert not BinnedMedia.objects.exists() and path.read_bytes() == b"foreign bytes"


def test_purge_now_and_when_due_removes_bytes_and_replicas(
    api, id_types, stores, writer, django_capture_on_commit_callbacks
):
    one = path_of(upload(api, "m1", b"one"))
    two = path_of(upload(api, "m2", b"two"))
    api.post("/api/media/m2/replicas", {"store_config": SHORE})
    call_command("replicate", "--once", stdout=io.StringIO())
    replica = Replica.objects.get()
    copy = object_path(replica.store_config_id, replica.store_key)
    assert copy.read_bytes() == b"two"
    assert api.post("/api/media/delete", ["m1", "m2"]).json()["successes"] == ["m1", "m2"]
    assert copy.exists() and not Replica.objects.exists()
    # collect_orphans leaves the binned media's objects (theirs and their replicas').
    call_command("collect_orphans", "--delete", "--older-than", "0", stdout=io.StringIO())
    assert one.exists() and two.exists() and copy.exists()
    # A store config that binned media use cannot be deleted: 409 naming them.
    primary = Media.history.model.objects.filter(pid="m2").first().store_config_id
    answer = api.delete(f"/api/store/{primary}")
    assert answer.status_code == 409 and "'m1', 'm2'" in answer.json()["detail"][0]["error"]
    assert writer.delete("/api/trash/m1").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete("/api/trash/m1").status_code == 204
    assert not one.exists() and two.exists()
    assert api.delete("/api/trash/m1").status_code == 404
    BinnedMedia.objects.update(purge_after=datetime.now(UTC) - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_trash", stdout=io.StringIO())
    assert not two.exists() and not copy.exists() and not BinnedMedia.objects.exists()
    assert api.delete(f"/api/store/{primary}").status_code == 204


def test_restore_brings_the_replicas_back(api, id_types, stores):
    upload(api, "m1", b"one")
    api.post("/api/media/m1/replicas", {"store_config": SHORE})
    call_command("replicate", "--once", stdout=io.StringIO())
    before = list(Replica.objects.values())
    api.delete("/api/media/m1")
    assert api.post("/api/trash/m1/restore").status_code == 200
    assert list(Replica.objects.values()) == before


def test_bulk_restore_reports_each_item(api, id_types, stores):
    upload(api, "m1", b"one")
    upload(api, "m2", b"two")
    api.post("/api/media/delete", ["m1", "m2"])
    upload(api, "m2", b"new two")
    result = api.post("/api/trash/restore", {"pids": ["m1", "m2", "m1"]}).json()
    assert result["successes"] == ["m1"]
    assert [(f["pid"], f["error"]) for f in result["failures"]] == [("m2", "NotFound"), ("m1", "NotFound")]


def test_a_thousand_media_deleted_and_restored_are_identical(api, id_types, settings):
    """Issue 27's bin test: records, tags, bytes (checksums) and history identical to before, plus the
    delete and restore rows. DictStore: cheap bytes."""
    settings.MEDIASTORE_TRASH_DAYS = 7
    pids = [f"bulk/{i:04d}" for i in range(1000)]
    bodies = [media_body(pid, tags=[f"t{i % 7}", "all"], metadata={"i": i}) for i, pid in enumerate(pids)]
    assert api.post("/api/media/create", bodies).status_code == 200
    for i, pid in enumerate(pids[:50]):  # bytes for some (uploading all 1000 one by one costs time)
        assert api.put_content(pid, f"bytes {i}".encode()).status_code == 200
    before = {m["pid"]: m for m in api.get("/api/media/dump").json()}
    histories = {pid: api.get(f"/api/media/{pid}/history").json() for pid in pids[::97]}
    assert api.post("/api/media/delete", pids).json()["successes"] == pids
    assert api.get("/api/media").json()["count"] == 0
    result = api.post("/api/trash/restore", {"pids": pids}).json()
    assert result["successes"] == pids and result["failures"] == []
    after = {m["pid"]: m for m in api.get("/api/media/dump").json()}
    volatile = ("mark", "version", "updated")
    assert {p: {k: v for k, v in m.items() if k not in volatile} for p, m in after.items()} == {
        p: {k: v for k, v in m.items() if k not in volatile} for p, m in before.items()
    }
    for i, pid in enumerate(pids[:50]):
        assert b"".join(api.get(f"/api/media/{pid}/content").streaming_content) == f"bytes {i}".encode()
    assert len(api.post("/api/media/search", {"tags": ["t3"]}, QUERY_STRING="limit=10000").json()) == len(
        pids[3::7]
    )
    for pid, history in histories.items():
        now = api.get(f"/api/media/{pid}/history").json()
        assert now[2:] == history and [h["action"] for h in now[:2]] == ["changed", "deleted"]
