"""Issue 27, expiry and holds: ``expires_at`` (create, bulk, PATCH, a store's ``default_ttl``), expired
media answering 404 on every read path before ``manage.py expire`` deletes them (events
``media.expired``), and holds answering 423 Locked on every path that deletes, replaces, moves or
expires a media (with ``freeze``, record edits too)."""

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
from tests.conftest import PASSWORD, ApiClient, create_media, media_body

PAST = "2000-01-01T00:00:00Z"


def expire_now(pid: str) -> None:
    """Make the media's expiry pass (a create refuses a past one)."""
    Media.objects.filter(pid=pid).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))


def path_of(row) -> Path:
    """The object of a media or replica row in its local store."""
    [directory] = StoreConfig.objects.get(pk=row.store_config_id).backend().local_paths()
    return directory / row.store_key


def upload(api, pid, data=b"bytes", **over):
    body = {"mediadata": media_body(pid, **over), "base64": base64.b64encode(data).decode()}
    response = api.post("/api/upload", body)
    assert response.status_code == 200, response.content
    return response


@pytest.fixture
def writer(django_user_model) -> ApiClient:
    from tests.permissions_support import role

    bob = django_user_model.objects.create_user(username="bob", password=PASSWORD)
    bob.groups.add(role("writers"))
    response = ApiClient().post("/api/login", {"username": "bob", "password": PASSWORD})
    return ApiClient(response.json()["token"])


# ---------------------------------------------------------------------------------------------
# Expiry


def test_expires_at_is_set_at_create_bulk_and_patch_and_shown(api, id_types):
    later = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    one = create_media(api, "e1", expires_at=later.isoformat())
    assert datetime.fromisoformat(one["expires_at"]) == later and one["hold"] is None
    assert create_media(api, "e2")["expires_at"] is None
    many = api.post("/api/media/create", [media_body("e3", expires_at=later.isoformat()), media_body("e4")])
    assert [m["expires_at"] is not None for m in many.json()] == [True, False]
    # Naive times are UTC.
    assert (
        api.patch("/api/media/e2", {"expires_at": later.replace(tzinfo=None).isoformat()}).status_code == 204
    )
    assert datetime.fromisoformat(api.get("/api/media/e2").json()["expires_at"]) == later
    assert api.patch("/api/media/e2", {"expires_at": None}).status_code == 204
    assert api.get("/api/media/e2").json()["expires_at"] is None
    assert api.patch("/api/media/e1", {}).status_code == 204  # absent: unchanged
    assert api.get("/api/media/e1").json()["expires_at"] is not None
    # A past expiry is refused at create and PATCH.
    assert api.post("/api/media", media_body("e5", expires_at=PAST)).status_code == 422
    assert api.patch("/api/media/e1", {"expires_at": PAST}).status_code == 422
    history = api.get("/api/media/e2/history").json()
    assert any(change["field"] == "expires_at" for entry in history for change in entry["changes"])


def test_store_default_ttl_sets_expiry_of_new_media(api, id_types, writer):
    store = api.post("/api/store", {"type": "DictStore", "bucket": "intermediates"}).json()
    assert writer.patch(f"/api/store/{store['pk']}", {"default_ttl": 3600}).status_code == 403
    answer = api.patch(f"/api/store/{store['pk']}", {"default_ttl": 86400})
    assert answer.status_code == 200 and answer.json()["default_ttl"] == 86400
    assert api.get(f"/api/store/{store['pk']}").json()["default_ttl"] == 86400
    assert api.patch(f"/api/store/{store['pk']}", {"default_ttl": 0}).status_code == 422
    before = datetime.now(UTC)
    body = create_media(api, "t1", store_config={"type": "DictStore", "bucket": "intermediates"})
    expires = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(seconds=86400) <= expires <= datetime.now(UTC) + timedelta(seconds=86400)
    own = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
    body = create_media(api, "t2", store_config=store["pk"] and store | {}, expires_at=own.isoformat())
    assert datetime.fromisoformat(body["expires_at"]) == own  # its own wins
    assert create_media(api, "t3")["expires_at"] is None  # another store: none
    assert api.patch(f"/api/store/{store['pk']}", {"default_ttl": None}).json()["default_ttl"] is None
    body = create_media(api, "t4", store_config={"type": "DictStore", "bucket": "intermediates"})
    assert body["expires_at"] is None


def test_expired_media_are_not_served_before_the_sweep(api, id_types):
    upload(api, "x1")
    upload(api, "x2", tags=["t"])
    expire_now("x1")
    answer = api.get("/api/media/x1")
    assert answer.status_code == 404 and "expired at" in answer.json()["detail"]
    for path in ["/api/media/x1/content", "/api/download/x1", "/api/download/url/x1"]:
        response = api.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert "expired" in response.json()["detail"], path
    assert [m["pid"] for m in api.post("/api/media/read", ["x1", "x2"]).json()] == ["x2"]
    assert [m["pid"] for m in api.get("/api/media/dump").json()] == ["x2"]
    assert [m["pid"] for m in api.get("/api/media").json()["items"]] == ["x2"]
    assert api.get("/api/media").json()["count"] == 1
    assert [m["pid"] for m in api.post("/api/media/search", {"pid": "x*"}).json()] == ["x2"]
    failures = api.put("/api/media/update/tags", [{"pid": "x1", "tags": ["a"]}]).json()["failures"]
    assert failures[0]["error"] == "NotFound" and "expired" in failures[0]["msg"]


def test_expire_deletes_expired_media_with_events_and_keeps_held_ones(api, id_types, settings):
    settings.MEDIASTORE_TRASH_DAYS = 0
    for pid in ["a", "b", "c", "keep"]:
        upload(api, pid)
    expire_now("a")
    expire_now("b")
    expire_now("c")
    assert api.post("/api/media/c/hold", {"reason": "audit"}).status_code == 200
    call_command("expire")
    assert set(Media.objects.values_list("pid", flat=True)) == {"c", "keep"}
    assert api.get("/api/media/c").status_code == 200  # held: its expiry waits, it is served
    assert [m["pid"] for m in api.post("/api/media/search", {"pid": "c"}).json()] == ["c"]
    assert set(MediaEvent.objects.filter(type="media.expired").values_list("pid", flat=True)) == {"a", "b"}
    reasons = [e.get("reason") for e in api.get("/api/media/a/history").json()]
    assert "expired" in reasons
    assert api.delete("/api/media/c/hold").status_code == 200
    call_command("expire")
    assert set(Media.objects.values_list("pid", flat=True)) == {"keep"}


@pytest.mark.parametrize("trash_days", [0, 7])
def test_a_new_media_retires_an_expired_one_of_its_pid_not_yet_swept(
    api, id_types, settings, storage_root, trash_days, django_capture_on_commit_callbacks
):
    """An expired media is gone for clients, but until manage.py expire deleted it, creating a media
    of its pid answered 409 (the pid exists). The create now retires the expired media as the sweep
    would (history "expired", event media.expired, its bytes and its replica's removed once the
    create commits; with the recycle bin on it is binned, then purged as any binned media whose pid
    a new media takes), then creates the new one. Every create path: POST /api/media, the bulk
    create, a base64 upload (which took the expired media for a repeat of itself)."""
    settings.MEDIASTORE_TRASH_DAYS = trash_days
    store = {"type": "FilesystemStore", "bucket": "ship"}
    for pid in ["x1", "x2", "x3"]:
        upload(api, pid, b"old bytes", store_config=store)
    assert api.post(
        "/api/media/x1/replicas", {"store_config": {"type": "FilesystemStore", "bucket": "shore"}}
    )
    call_command("replicate", "--once", stdout=io.StringIO())
    old = {media.pid: media for media in Media.objects.all()}
    [copy] = Replica.objects.all()
    objects = [path_of(media) for media in old.values()] + [path_of(copy)]
    for pid in old:
        expire_now(pid)

    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/media", media_body("x1", store_config=store))
        assert created.status_code == 200, created.content
        bulk = api.post("/api/media/create", [media_body("x2", store_config=store)])
        assert bulk.status_code == 200, bulk.content
        body = {
            "mediadata": media_body("x3", store_config=store),
            "base64": base64.b64encode(b"new").decode(),
        }
        uploaded = api.post("/api/upload", body)
        assert uploaded.status_code == 200, uploaded.content

    assert not any(path.exists() for path in objects)  # the expired media's bytes and its replica's
    assert not Replica.objects.exists() and not BinnedMedia.objects.exists()
    for pid, media in old.items():
        now = api.get(f"/api/media/{pid}").json()
        assert now["expires_at"] is None
        assert Media.objects.get(pid=pid).pk != media.pk
        gone = Media.history.model.objects.filter(id=media.pk, history_type="-").order_by("history_id")
        assert gone[0].history_change_reason == "expired" and gone[0].history_user is None
        types = list(MediaEvent.objects.filter(pid=pid).order_by("seq").values_list("type", flat=True))
        assert types[-2:] == ["media.expired", "media.created"]
    assert api.get("/api/media/x1").json()["store_status"] == "PENDING"
    assert b"".join(api.get("/api/media/x3/content").streaming_content) == b"new"
    assert api.get("/api/stats").status_code == 200
    call_command("expire")
    assert Media.objects.count() == 3  # nothing left for the sweep


def test_prepare_given_the_callers_look_up_decides_as_its_own(api, id_types, user):
    """Issue 34 item 6: ingest hands ``media_prepare_many`` the media it looked its pids up for
    (``media_stored``, expired ones too) instead of having them looked up twice. Given them, it asks
    the database nothing about pids and decides exactly as its own look-up does: a live media's
    pid is taken, an expired one's is free and retires it, a held expired one's stays taken."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from media.schemas import MediaIn
    from media.selectors import media_stored
    from media.services import media_prepare_many
    from mediastore.errors import Conflict

    for pid in ["live", "gone", "held"]:
        create_media(api, pid)
    expire_now("gone")
    expire_now("held")
    assert api.post("/api/media/held/hold", {"reason": "audit"}).status_code == 200

    def prepare(pids, stored):
        with CaptureQueriesContext(connection) as queries:
            try:
                objs = media_prepare_many([MediaIn(**media_body(p)) for p in pids], user=user, stored=stored)
            except Conflict as exc:
                objs = exc.message
        looked = [q for q in queries if '"media_media"' in q["sql"]]
        return (objs if isinstance(objs, str) else [(o.pid, o.retires_expired) for o in objs]), len(looked)

    looked_up = media_stored(["live", "gone", "held", "new"])
    for pids in (["new", "gone"], ["gone", "live"], ["held"]):
        own, own_queries = prepare(pids, None)
        given, given_queries = prepare(pids, looked_up.values())
        assert given == own and (own_queries, given_queries) == (1, 0), pids
    assert prepare(["new", "gone"], None)[0] == [("new", False), ("gone", True)]
    assert prepare(["gone", "live"], None)[0] == "media with pid 'live' already exists"
    assert prepare(["held"], None)[0] == "media with pid 'held' already exists"


def test_a_held_expired_media_keeps_its_pid(api, id_types):
    """A hold suspends expiry: the held media is served and its pid stays taken (409)."""
    upload(api, "h1", b"held bytes")
    expire_now("h1")
    assert api.post("/api/media/h1/hold", {"reason": "audit"}).status_code == 200
    answer = api.post("/api/media", media_body("h1"))
    assert answer.status_code == 409 and "already exists" in answer.json()["detail"][0]["error"]
    body = {"mediadata": media_body("h1"), "base64": base64.b64encode(b"other").decode()}
    assert api.post("/api/upload", body).status_code == 409  # a held media's other bytes
    assert b"".join(api.get("/api/media/h1/content").streaming_content) == b"held bytes"
    assert not MediaEvent.objects.filter(type="media.expired").exists()


# ---------------------------------------------------------------------------------------------
# Holds


def test_hold_is_for_admins_and_shows_in_the_answer_and_history(api, id_types, writer):
    create_media(api, "h1")
    assert writer.post("/api/media/h1/hold", {"reason": "r"}).status_code == 403
    assert writer.delete("/api/media/h1/hold").status_code == 403
    until = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    body = api.post(
        "/api/media/h1/hold", {"until": until.isoformat(), "reason": "case 14", "freeze": True}
    ).json()
    assert body["hold"]["reason"] == "case 14" and body["hold"]["freeze"] is True
    assert body["hold"]["by"] == "alice" and datetime.fromisoformat(body["hold"]["until"]) == until
    assert api.get("/api/media/h1").json()["hold"]["reason"] == "case 14"
    assert [m["hold"]["reason"] for m in api.get("/api/media").json()["items"]] == ["case 14"]
    assert api.post("/api/media/h1/hold", {"until": PAST, "reason": "x"}).status_code == 422
    assert api.post("/api/media/nope/hold", {"reason": "x"}).status_code == 404
    assert api.delete("/api/media/h1/hold").json()["hold"] is None
    reasons = [e.get("reason") for e in api.get("/api/media/h1/history").json()]
    assert "hold released" in reasons and "hold placed: case 14" in reasons


def assert_locked(response, reason="case 14"):
    assert response.status_code == 423, (response.status_code, response.content[:300])
    detail = response.json()["detail"][0]
    assert reason in detail["error"] and detail["hold_reason"] == reason


def test_held_media_refuse_delete_replace_move_and_storekey(api, id_types, settings):
    upload(api, "h1", b"first")
    upload(api, "other")
    create_media(api, "pending")
    assert api.post("/api/media/h1/hold", {"reason": "case 14"}).status_code == 200
    assert api.post("/api/media/pending/hold", {"reason": "case 14"}).status_code == 200
    assert_locked(api.delete("/api/media/h1"))
    bulk = api.post("/api/media/delete", ["h1", "other"]).json()
    assert bulk["successes"] == ["other"]
    assert bulk["failures"][0]["pid"] == "h1" and bulk["failures"][0]["error"] == "Locked"
    assert_locked(api.put_content("h1", b"second"))
    # A PENDING media's bytes (a second upload with base64) are a replacement too.
    body = {"mediadata": media_body("pending"), "base64": base64.b64encode(b"x").decode()}
    assert_locked(api.post("/api/upload", body))
    assert_locked(api.delete("/api/upload/pending"))
    store = api.post("/api/store", {"type": "DictStore", "bucket": "elsewhere"}).json()
    assert_locked(api.patch("/api/media/h1", {"store_config": store["pk"]}))
    keys = api.put("/api/media/update/storekeys", [{"pid": "h1", "store_key": "k"}]).json()
    assert keys["failures"][0]["error"] == "Locked"
    # Not frozen: the record stays editable.
    assert api.patch("/api/media/h1", {"new_pid": "h2"}).status_code == 204
    assert api.put("/api/media/update/metadata", [{"pid": "h2", "data": {"a": 1}}]).json()["successes"] == [
        "h2"
    ]
    media = Media.objects.get(pid="h2")
    assert media.store_key != "k" and media.checksum and media.store_config.bucket == "tests"
    assert b"".join(api.get("/api/media/h2/content").streaming_content) == b"first"
    # An expired hold holds nothing; a released one neither.
    Media.objects.filter(pid="h2").update(hold_until=datetime.now(UTC) - timedelta(seconds=1))
    assert api.get("/api/media/h2").json()["hold"] is None
    assert api.put_content("h2", b"second").status_code == 200
    assert api.delete("/api/media/pending/hold").status_code == 200
    assert api.delete("/api/media/pending").status_code == 204


def test_frozen_hold_refuses_record_edits(api, id_types):
    create_media(api, "f1", tags=["a"])
    api.put("/api/media/update/metadata", [{"pid": "f1", "data": {"v": 1}}])
    assert api.post("/api/media/f1/hold", {"reason": "case 14", "freeze": True}).status_code == 200
    for method, path, body in [
        ("PUT", "/api/media/update/metadata", [{"pid": "f1", "data": {"v": 2}}]),
        ("PATCH", "/api/media/update/metadata", [{"pid": "f1", "data": {"v": 2}}]),
        ("DELETE", "/api/media/update/metadata", [{"pid": "f1"}]),
        ("PUT", "/api/media/update/tags", [{"pid": "f1", "tags": ["b"]}]),
        ("PATCH", "/api/media/update/tags", [{"pid": "f1", "tags": ["b"]}]),
        ("PUT", "/api/media/update/identifiers", [{"pid": "f1", "identifiers": {}}]),
        ("PATCH", "/api/media/update", {"pids": ["f1"], "medias": [{"new_pid": "f2"}]}),
    ]:
        result = api.request(method, path, body).json()
        assert result["failures"] and result["failures"][0]["error"] == "Locked", (method, path, result)
    assert_locked(api.patch("/api/media/f1", {"new_pid": "f2"}))
    assert_locked(api.post("/api/media/f1/revert", {"version": 1}))
    media = api.get("/api/media/f1").json()
    assert media["metadata"] == {"v": 1} and media["tags"] == ["a"]
    assert api.delete("/api/media/f1/hold").status_code == 200
    assert api.put("/api/media/update/tags", [{"pid": "f1", "tags": ["b"]}]).json()["successes"] == ["f1"]
