"""Replicas of a media's bytes through the API, and the replication worker (``manage.py replicate
--once``) run in the test process: copies become GOOD only with the media's bytes, new bytes make
them STALE, deletes and promotes keep every copy accounted for."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from content.models import Replica, ReplicaState
from media.models import Media, MediaEvent
from tests.conftest import error_message, media_body

pytestmark = pytest.mark.django_db

PRIMARY = {"type": "FilesystemStore", "bucket": "ship"}
SHORE = {"type": "FilesystemStore", "bucket": "shore"}
OTHER = {"type": "FilesystemStore", "bucket": "other"}


@pytest.fixture
def stores(settings, storage_root):
    return storage_root


def upload(api, pid: str, data: bytes, store: dict = PRIMARY) -> dict:
    body = {"mediadata": media_body(pid, store_config=store), "base64": base64.b64encode(data).decode()}
    response = api.post("/api/upload", body)
    assert response.status_code == 200, response.content
    return api.get(f"/api/media/{pid}").json()


def replicate() -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("replicate", "--once", stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def object_path(store_pk: int, key: str) -> Path:
    from stores.models import StoreConfig

    [directory] = StoreConfig.objects.get(pk=store_pk).backend().local_paths()
    return directory / key


def copies(api, pid: str) -> list[dict]:
    response = api.get(f"/api/media/{pid}/replicas")
    assert response.status_code == 200, response.content
    return response.json()


def events(pid: str) -> list[str]:
    return list(MediaEvent.objects.filter(pid=pid).order_by("seq").values_list("type", flat=True))


def test_a_replica_is_copied_checked_and_listed_after_the_primary(api, id_types, stores):
    media = upload(api, "m1", b"ship data")

    response = api.post("/api/media/m1/replicas", {"store_config": SHORE})

    assert response.status_code == 202, response.content
    asked = response.json()
    assert asked["state"] == "COPYING" and asked["primary"] is False and asked["store_key"] == ""
    assert asked["store_config"]["bucket"] == "shore"
    out, error = replicate()
    assert error is None, out
    primary, replica = copies(api, "m1")
    assert primary == {
        "store_config": media["store_config"],
        "store_key": Media.objects.get(pid="m1").store_key,
        "state": "GOOD",
        "size": 9,
        "checksum": media["checksum"],
        "verified_at": None,
        "error": "",
        "primary": True,
    }
    assert replica["state"] == "GOOD" and replica["checksum"] == media["checksum"] and replica["size"] == 9
    assert replica["verified_at"] is not None and replica["error"] == ""
    assert object_path(replica["store_config"]["pk"], replica["store_key"]).read_bytes() == b"ship data"
    assert events("m1")[-2:] == ["replica.created", "replica.good"]
    feed = api.get("/api/events?types=replica.good").json()["items"]
    assert [item["media"]["replica"]["state"] for item in feed] == ["GOOD"]


def test_new_bytes_make_the_replica_stale_and_the_worker_rewrites_it_to_a_fresh_key(api, id_types, stores):
    upload(api, "m1", b"old bytes")
    api.post("/api/media/m1/replicas", {"store_config": SHORE})
    replicate()
    old = copies(api, "m1")[1]

    assert api.put_content("m1", b"new bytes!").status_code == 200

    stale = copies(api, "m1")[1]
    assert stale["state"] == "STALE" and stale["checksum"] == old["checksum"]
    # A STALE copy is never served: the primary serves the new bytes.
    assert b"".join(api.get("/api/media/m1/content").streaming_content) == b"new bytes!"
    replicate()
    primary, good = copies(api, "m1")
    assert good["state"] == "GOOD" and good["checksum"] == primary["checksum"] != old["checksum"]
    assert good["store_key"] != old["store_key"]
    assert object_path(good["store_config"]["pk"], good["store_key"]).read_bytes() == b"new bytes!"
    assert not object_path(old["store_config"]["pk"], old["store_key"]).exists()


def test_refusals(api, id_types, stores):
    upload(api, "m1", b"data")
    assert api.post("/api/media", media_body("pending", store_config=PRIMARY)).status_code == 200

    assert "PENDING" in error_message(api.post("/api/media/pending/replicas", {"store_config": SHORE}), 409)
    assert "primary" in error_message(api.post("/api/media/m1/replicas", {"store_config": PRIMARY}), 409)
    assert api.post("/api/media/m1/replicas", {"store_config": SHORE}).status_code == 202
    assert "already" in error_message(api.post("/api/media/m1/replicas", {"store_config": SHORE}), 409)
    checksum = Media.objects.get(pid="m1").checksum
    Media.objects.filter(pid="m1").update(checksum="")  # as some imported media have
    assert "no recorded checksum" in error_message(
        api.post("/api/media/m1/replicas", {"store_config": OTHER}), 409
    )
    Media.objects.filter(pid="m1").update(checksum=checksum)
    assert api.get("/api/media/nope/replicas").status_code == 404
    assert api.post("/api/media/m1/replicas", {"store_config": 999}).status_code == 404
    bad = api.post("/api/media/m1/replicas", {"store_config": {"type": "Nope", "bucket": "x"}})
    assert "not supported" in error_message(bad, 422)
    assert api.post("/api/media/m1/replicas", {"store_config": SHORE, "extra": 1}).status_code == 422
    primary_pk = copies(api, "m1")[0]["store_config"]["pk"]
    assert "primary" in error_message(api.delete(f"/api/media/m1/replicas/{primary_pk}"), 409)
    assert api.delete("/api/media/m1/replicas/999").status_code == 404
    shore_pk = copies(api, "m1")[1]["store_config"]["pk"]
    promote = api.post(f"/api/media/m1/replicas/{shore_pk}/promote")
    assert "COPYING" in error_message(promote, 409)


def test_deleting_a_replica_removes_its_bytes_but_never_the_last_good_copy(api, id_types, stores):
    upload(api, "m1", b"data")
    api.post("/api/media/m1/replicas", {"store_config": SHORE})
    replicate()
    replica = copies(api, "m1")[1]
    path = object_path(replica["store_config"]["pk"], replica["store_key"])
    assert path.exists()
    # The primary fails a check: the replica is now the last GOOD copy.
    Media.objects.filter(pid="m1").update(verify_ok=False, verify_error="missing: no object")

    assert "last GOOD copy" in error_message(
        api.delete(f"/api/media/m1/replicas/{replica['store_config']['pk']}"), 409
    )

    Media.objects.filter(pid="m1").update(verify_ok=True, verify_error="")
    response = api.delete(f"/api/media/m1/replicas/{replica['store_config']['pk']}")
    assert response.status_code == 204 and response.content == b""
    assert not path.exists()
    assert len(copies(api, "m1")) == 1
    assert events("m1")[-1] == "replica.deleted"


def test_promote_swaps_primary_and_replica_without_copying(api, id_types, stores):
    media = upload(api, "m1", b"promoted bytes")
    api.post("/api/media/m1/replicas", {"store_config": SHORE})
    replicate()
    before = copies(api, "m1")
    shore_pk = before[1]["store_config"]["pk"]

    response = api.post(f"/api/media/m1/replicas/{shore_pk}/promote")

    assert response.status_code == 200, response.content
    assert response.json()["primary"] is True and response.json()["store_config"]["pk"] == shore_pk
    after = api.get("/api/media/m1").json()
    assert after["store_config"]["pk"] == shore_pk and int(after["version"]) == int(media["version"]) + 1
    primary, replica = copies(api, "m1")
    assert primary["store_key"] == before[1]["store_key"] and replica["store_key"] == before[0]["store_key"]
    assert replica["state"] == "GOOD" and replica["store_config"] == before[0]["store_config"]
    assert b"".join(api.get("/api/media/m1/content").streaming_content) == b"promoted bytes"
    assert events("m1")[-1] == "media.moved"


def test_deleting_media_removes_every_replicas_bytes(
    api, id_types, stores, django_capture_on_commit_callbacks, settings
):
    settings.MEDIASTORE_TRASH_DAYS = 0  # final deletes (the bin keeps replicas: tests/content/test_trash.py)
    upload(api, "m1", b"one")
    upload(api, "m2", b"two")
    for pid in ("m1", "m2"):
        api.post(f"/api/media/{pid}/replicas", {"store_config": SHORE})
        api.post(f"/api/media/{pid}/replicas", {"store_config": OTHER})
    replicate()
    paths = [object_path(r.store_config_id, r.store_key) for r in Replica.objects.all()]
    assert len(paths) == 4 and all(p.exists() for p in paths)

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete("/api/media/m1").status_code == 204
        assert api.post("/api/media/delete", ["m2"]).json()["successes"] == ["m2"]

    assert not Replica.objects.exists()
    assert not any(p.exists() for p in paths)


def test_a_copy_that_fails_stays_copying_with_its_error_and_is_retried_later(api, id_types, stores, settings):
    upload(api, "m1", b"data")
    api.post("/api/media/m1/replicas", {"store_config": SHORE})
    Media.objects.filter(pid="m1").update(checksum="sha256:" + "0" * 64)  # no copy can match it

    out, error = replicate()

    assert error is not None and error.returncode == 1, out
    replica = Replica.objects.get()
    assert replica.state == ReplicaState.COPYING and "gave other bytes" in replica.error
    assert replica.attempts == 1 and replica.lease_owner == ""
    assert copies(api, "m1")[1]["error"] == replica.error
    assert events("m1")[-1] == "replica.failed"
    # Not due again before its backoff: a second pass does nothing.
    out, error = replicate()
    assert error is None and Replica.objects.get().attempts == 1


def verify(*args: str) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("verify", "--no-progress", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def primary_path(pid: str) -> Path:
    media = Media.objects.get(pid=pid)
    return object_path(media.store_config_id, media.store_key)


def test_verify_checks_replicas_and_repair_restores_primaries_and_replicas(api, id_types, stores):
    data = {"rot": b"rotting primary", "gone": b"deleted primary", "copy": b"rotting replica"}
    for pid, content in data.items():
        upload(api, pid, content)
        api.post(f"/api/media/{pid}/replicas", {"store_config": SHORE})
    replicate()
    primary_path("rot").write_bytes(b"X" + data["rot"][1:])
    primary_path("gone").unlink()
    replica = Replica.objects.get(media__pid="copy")
    object_path(replica.store_config_id, replica.store_key).write_bytes(b"bit rot")

    out, error = verify()

    assert error is not None and error.returncode == 1, out
    assert "checked 3 replicas" in out
    assert "FAILED rot: checksum" in out and "FAILED gone: missing" in out
    assert f"FAILED copy (replica in store {replica.store_config_id}): checksum" in out
    assert [c["state"] for c in copies(api, "rot")] == ["BAD", "GOOD"]
    assert [c["state"] for c in copies(api, "gone")] == ["MISSING", "GOOD"]
    assert [c["state"] for c in copies(api, "copy")] == ["GOOD", "BAD"]
    assert events("copy")[-1] == "replica.failed"

    out, error = verify("--repair")

    assert error is None, out
    assert {line for line in out.splitlines() if line.startswith("REPAIRED")} == {
        "REPAIRED rot",
        "REPAIRED gone",
        f"REPAIRED copy (replica in store {replica.store_config_id})",
    }
    for pid, content in data.items():
        assert primary_path(pid).read_bytes() == content
        assert [c["state"] for c in copies(api, pid)] == ["GOOD", "GOOD"]
        again = Replica.objects.get(media__pid=pid)
        assert object_path(again.store_config_id, again.store_key).read_bytes() == content
        assert b"".join(api.get(f"/api/media/{pid}/content").streaming_content) == content
        assert events(pid)[-1] == "replica.repaired"
    for pid in ("rot", "gone"):  # a primary's new key is a recorded change, saying why
        latest = api.get(f"/api/media/{pid}/history").json()[0]
        assert latest["reason"] == "repaired from a GOOD replica", latest
    out, error = verify()
    assert error is None and "3 ok, 0 failed" in out


def test_a_media_without_a_good_copy_is_reported_and_left_alone(api, id_types, stores):
    upload(api, "alone", b"only copy")
    primary_path("alone").write_bytes(b"changed")
    before = Media.objects.get(pid="alone")

    out, error = verify("--repair")

    assert error is not None and error.returncode == 1
    assert "NOT REPAIRED alone: no GOOD copy" in out
    after = Media.objects.get(pid="alone")
    assert (after.store_key, after.checksum, after.version) == (
        before.store_key,
        before.checksum,
        before.version,
    )
    assert primary_path("alone").read_bytes() == b"changed"


def test_a_move_to_a_store_holding_a_good_replica_is_a_promote(api, id_types, stores):
    upload(api, "m1", b"data")
    upload(api, "m2", b"more")
    for pid in ("m1", "m2"):
        api.post(f"/api/media/{pid}/replicas", {"store_config": SHORE})
    replicate()
    api.post("/api/media/m2/replicas", {"store_config": OTHER})  # COPYING: not promotable yet
    before = copies(api, "m1")
    shore_pk = before[1]["store_config"]["pk"]

    assert api.patch("/api/media/m1", {"store_config": SHORE, "new_pid": "m1b"}).status_code == 204

    primary, replica = copies(api, "m1b")
    assert primary["store_config"]["pk"] == shore_pk and primary["store_key"] == before[1]["store_key"]
    assert replica["store_config"] == before[0]["store_config"] and replica["state"] == "GOOD"
    assert object_path(replica["store_config"]["pk"], replica["store_key"]).read_bytes() == b"data"
    assert b"".join(api.get("/api/media/m1b/content").streaming_content) == b"data"
    assert events("m1")[-1] == "media.moved" and events("m1b") == ["media.updated"]  # promote, then rename
    other_pk = copies(api, "m2")[2]["store_config"]["pk"]
    assert "COPYING" in error_message(api.patch("/api/media/m2", {"store_config": other_pk}), 409)
    # A move to a third store keeps the replicas, which still hold the same bytes.
    assert (
        api.patch(
            "/api/media/m2", {"store_config": {"type": "FilesystemStore", "bucket": "third"}}
        ).status_code
        == 204
    )
    primary, good, copying = copies(api, "m2")
    assert primary["store_config"]["bucket"] == "third" and good["state"] == "GOOD"
    assert b"".join(api.get("/api/media/m2/content").streaming_content) == b"more"


def test_a_rule_asks_for_copies_of_matching_media_existing_new_and_newly_tagged(api, id_types, stores):
    upload(api, "old", b"old", PRIMARY)
    body = {"mediadata": media_body("tagged-later", store_config=PRIMARY), "base64": "eHl6"}
    assert api.post("/api/upload", body).status_code == 200
    body = {"mediadata": media_body("elsewhere", store_config=OTHER, tags=["ship"]), "base64": "eHl6"}
    assert api.post("/api/upload", body).status_code == 200
    api.put("/api/media/update/tags", [{"pid": "old", "tags": ["ship"]}])
    primary_pk = api.get("/api/media/old").json()["store_config"]["pk"]
    rule = {"name": "to shore", "match": {"tags": ["ship"], "store": primary_pk}, "copies": [SHORE]}

    response = api.post("/api/rules", rule)

    assert response.status_code == 200, response.content
    made = response.json()
    assert made["name"] == "to shore" and made["match"] == {
        "pid_type": [],
        "tags": ["ship"],
        "store": primary_pk,
    }
    assert [c["bucket"] for c in made["copies"]] == ["shore"]
    assert api.get("/api/rules").json() == [made]
    replicate()
    assert [c["state"] for c in copies(api, "old")] == ["GOOD", "GOOD"]
    assert len(copies(api, "tagged-later")) == 1 and len(copies(api, "elsewhere")) == 1
    # A media made later, and one that starts to match, get their copies at the next pass.
    body = {"mediadata": media_body("new", store_config=PRIMARY, tags=["ship", "x"]), "base64": "bmV3"}
    assert api.post("/api/upload", body).status_code == 200
    api.patch("/api/media/update/tags", [{"pid": "tagged-later", "tags": ["ship"]}])
    out, error = replicate()
    assert error is None and "asked for 2 copies the replication rules want" in out
    for pid in ("new", "tagged-later"):
        assert [c["state"] for c in copies(api, pid)] == ["GOOD", "GOOD"]
    assert len(copies(api, "elsewhere")) == 1
    # A lost copy is asked for again.
    shore_pk = copies(api, "new")[1]["store_config"]["pk"]
    assert api.delete(f"/api/media/new/replicas/{shore_pk}").status_code == 204
    replicate()
    assert [c["state"] for c in copies(api, "new")] == ["GOOD", "GOOD"]

    assert api.delete("/api/rules/to shore").status_code == 204
    assert api.get("/api/rules").json() == []
    assert api.delete("/api/rules/to shore").status_code == 404


def test_rules_refuse_unknown_pid_types_and_stores(api, id_types, stores):
    def refused(rule: dict) -> str:
        return error_message(api.post("/api/rules", {"name": "r", "copies": [SHORE], **rule}), 422)

    assert refused({"match": {"pid_type": ["local", "nope"]}}) == "bad pid_type: nope"
    assert "unknown store: 999" in refused({"match": {"store": 999}})
    assert "unknown store: 998" in refused({"copies": [998]})
    assert "at least one store" in refused({"copies": []})
    assert "without '/'" in error_message(api.post("/api/rules", {"name": "a/b", "copies": [SHORE]}), 422)
    assert "not supported" in refused({"copies": [{"type": "Nope", "bucket": "x"}]})
    assert api.post("/api/rules", {"name": "r", "copies": [SHORE], "match": {"x": 1}}).status_code == 422
    assert api.get("/api/stores").json() == []  # nothing was left behind by the refused rules
    assert api.post("/api/rules", {"name": "r", "copies": [SHORE]}).status_code == 200
    assert "exists" in error_message(api.post("/api/rules", {"name": "r", "copies": [OTHER]}), 409)


def test_status_shows_copies_per_store_replicas_behind_and_repairs(
    api, id_types, stores, client, django_user_model
):
    upload(api, "m1", b"data")
    upload(api, "m2", b"more")
    api.post("/api/media/m1/replicas", {"store_config": SHORE})
    replicate()
    api.post("/api/media/m2/replicas", {"store_config": SHORE})
    primary_path("m1").unlink()
    verify("--repair")

    stats = api.get("/api/stats").json()

    assert stats["replicas"] == {"COPYING": 1, "GOOD": 1, "STALE": 0, "BAD": 0, "MISSING": 0}
    assert stats["replicas_behind"] == 1 and stats["repairs_30d"] == 1
    shore = next(s for s in stats["stores"] if s["bucket"] == "shore")
    assert shore["replicas"] == 2 and shore["replica_bytes"] == 4
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    page = client.get("/status/").content.decode()
    assert "1 behind" in page and "1 repair in the last 30 days" in page
    metrics = client.get("/metrics").content.decode()
    assert 'mediastore_replicas{state="GOOD"} 1.0' in metrics and "mediastore_replicas_behind 1.0" in metrics


def test_collect_orphans_keeps_the_replicas_objects(api, id_types, stores):
    """Regression: replica objects are referenced by no media row; collect_orphans --delete must
    not take them for orphans."""
    upload(api, "m1", b"kept")
    api.post("/api/media/m1/replicas", {"store_config": SHORE})
    replicate()
    replica = copies(api, "m1")[1]
    path = object_path(replica["store_config"]["pk"], replica["store_key"])
    stray = path.parent / "stray-object"
    stray.write_bytes(b"nobody's")

    out = io.StringIO()
    call_command("collect_orphans", "--delete", "--older-than", "0", stdout=out)

    assert path.read_bytes() == b"kept" and not stray.exists(), out.getvalue()


@pytest.mark.django_db(transaction=True)  # ingest works in threads of its own
def test_ingest_in_place_refuses_a_replicas_file(api, id_types, stores):
    """A replica's object is no free file to register: a media on it would share its bytes."""
    upload(api, "m1", b"kept")
    api.post("/api/media/m1/replicas", {"store_config": SHORE})
    replicate()
    replica = copies(api, "m1")[1]
    path = object_path(replica["store_config"]["pk"], replica["store_key"])
    out = io.StringIO()

    with pytest.raises(CommandError):
        call_command(
            "ingest",
            str(path),
            "--store",
            "FilesystemStore:shore",
            "--pid-type",
            "local",
            "--in-place",
            "--user",
            "alice",
            "--no-progress",
            stdout=out,
            stderr=io.StringIO(),
        )

    assert "is a replica of media 'm1'" in out.getvalue()
    assert list(Media.objects.values_list("pid", flat=True)) == ["m1"]


def test_a_held_media_keeps_its_replicas(api, id_types, stores):
    upload(api, "m1", b"kept bytes")
    api.post("/api/media/m1/replicas", {"store_config": SHORE})
    replicate()
    replica = copies(api, "m1")[1]
    shore = replica["store_config"]["pk"]
    assert api.post("/api/media/m1/hold", {"reason": "case 7"}).status_code == 200

    refused = api.delete(f"/api/media/m1/replicas/{shore}")

    assert refused.status_code == 423 and "case 7" in refused.json()["detail"][0]["error"]
    assert copies(api, "m1")[1]["state"] == "GOOD"
    assert object_path(shore, replica["store_key"]).read_bytes() == b"kept bytes"
    assert api.delete("/api/media/m1/hold").status_code == 200
    assert api.delete(f"/api/media/m1/replicas/{shore}").status_code == 204
    assert len(copies(api, "m1")) == 1 and not object_path(shore, replica["store_key"]).exists()
