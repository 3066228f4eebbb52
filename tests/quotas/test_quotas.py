"""Quotas, owners and usage through the API: every kind of quota refuses with 507 naming it and
stores nothing, usage follows creates, uploads, replacements, moves and deletes in their own
transactions (compared with a recount), and a quota.warning event marks each crossing of 90%.
(tests/quotas/test_quotas_live.py races 8 writers through gunicorn.)"""

from __future__ import annotations

import base64
import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from media.models import Media
from media.usage import recount
from quotas.models import Quota, Usage
from stores.models import StoreConfig
from tests.conftest import PASSWORD, ApiClient, create_media, media_body
from tests.permissions_support import role

pytestmark = pytest.mark.django_db

FS = {"type": "FilesystemStore", "bucket": "quota-fs"}
FS2 = {"type": "FilesystemStore", "bucket": "quota-fs2"}


@pytest.fixture
def stores(api, id_types, storage_root):
    """Two filesystem stores under the test's storage root: {name: pk}."""
    made = {}
    for name, body in (("fs", FS), ("fs2", FS2)):
        response = api.post("/api/store", body)
        assert response.status_code == 200, response.content
        made[name] = response.json()["pk"]
    return made


def login(name: str, group: str = "writers") -> ApiClient:
    user = get_user_model().objects.create_user(username=name, password=PASSWORD)
    user.groups.add(role(group))
    response = ApiClient().post("/api/login", {"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return ApiClient(response.json()["token"])


def upload(client: ApiClient, pid: str, data: bytes, store: dict = FS):
    body = {"mediadata": media_body(pid, store_config=store), "base64": base64.b64encode(data).decode()}
    return client.post("/api/upload", body)


def set_quota(api: ApiClient, **body) -> dict:
    response = api.put(
        "/api/quotas", {"store": None, "user": None, "max_bytes": None, "max_media": None, **body}
    )
    assert response.status_code == 200, response.content
    return response.json()


def objects(store_pk: int) -> list[str]:
    """The keys the store holds now (what a refused write must not have added)."""
    return sorted(obj.key for obj in StoreConfig.objects.get(pk=store_pk).backend().list_objects())


def usage_rows() -> dict[tuple[int, str], tuple[int, int]]:
    return {
        (row.store_id, row.owner): (row.bytes, row.media)
        for row in Usage.objects.all()
        if row.bytes or row.media
    }


def assert_refused(
    response, *, unit: str, limit: int, used: int, requested: int, store=None, user=None
) -> dict:
    assert response.status_code == 507, response.content
    body = response.json()
    assert body["unit"] == unit and body["limit"] == limit, body
    assert body["used"] == used and body["requested"] == requested, body
    assert body["quota"]["store"] == store and body["quota"]["user"] == user, body
    assert "exceeded" in body["detail"] and "nothing was stored" in body["detail"], body
    return body


# ---------------------------------------------------------------------------------------------
# Owner


def test_owner_is_the_creating_account_in_every_answer(api, stores):
    created = create_media(api, "own.1", store_config=FS)
    assert created["owner"] == "alice"
    assert upload(api, "own.2", b"abc").status_code == 200
    assert api.get("/api/media/own.2").json()["owner"] == "alice"
    found = api.post("/api/media/search", {"tags": [], "pid": "own.*"}).json()
    assert sorted((m["pid"], m["owner"]) for m in found) == [("own.1", "alice"), ("own.2", "alice")]
    Media.objects.filter(pid="own.1").update(owner=None)  # as the importer and older media have it
    assert api.get("/api/media/own.1").json()["owner"] is None


def test_renamed_and_deleted_accounts_keep_media_and_usage_right(api, stores):
    bob = login("bob")
    assert upload(bob, "b.1", b"12345").status_code == 200
    user = get_user_model().objects.get(username="bob")
    user.username = "robert"
    user.save()
    assert api.get("/api/media/b.1").json()["owner"] == "robert"
    assert usage_rows() == recount() == {(stores["fs"], "robert"): (5, 1)}
    user.delete()
    assert api.get("/api/media/b.1").json()["owner"] is None
    assert usage_rows() == recount() == {(stores["fs"], ""): (5, 1)}


# ---------------------------------------------------------------------------------------------
# Administration


def test_put_quotas_creates_replaces_and_removes(api, stores):
    first = set_quota(api, store=stores["fs"], max_bytes=100)
    assert first["max_bytes"] == 100 and first["max_media"] is None and first["used_bytes"] == 0
    replaced = set_quota(api, store=stores["fs"], max_media=3)
    assert replaced["pk"] == first["pk"] and replaced["max_bytes"] is None and replaced["max_media"] == 3
    set_quota(api, user="alice", max_bytes=10)
    set_quota(api, max_media=1000)  # site-wide
    listed = api.get("/api/quotas").json()
    assert [(q["store"], q["user"]) for q in listed] == [(stores["fs"], None), (None, "alice"), (None, None)]
    gone = api.put("/api/quotas", {"store": stores["fs"], "user": None, "max_bytes": None, "max_media": None})
    assert gone.status_code == 204 and gone.content == b""
    assert Quota.objects.count() == 2


def test_put_quotas_refuses_unknown_names_and_non_admins(api, stores):
    assert api.put("/api/quotas", {"store": 999, "max_bytes": 1}).status_code == 404
    assert api.put("/api/quotas", {"user": "nobody", "max_bytes": 1}).json() == {
        "detail": "User 'nobody' not found"
    }
    assert api.put("/api/quotas", {"store": stores["fs"], "max_bytes": -1}).status_code == 422
    writer = login("bob")
    assert writer.put("/api/quotas", {"store": stores["fs"], "max_bytes": 1}).status_code == 403
    assert writer.get("/api/quotas").status_code == 403
    assert Quota.objects.count() == 0


# ---------------------------------------------------------------------------------------------
# Each kind of quota


def test_store_media_quota_refuses_the_create_that_does_not_fit(api, stores):
    set_quota(api, store=stores["fs"], max_media=2)
    create_media(api, "s.1", store_config=FS)
    create_media(api, "s.2", store_config=FS)
    refused = api.post("/api/media", media_body("s.3", store_config=FS))
    assert_refused(refused, unit="media", limit=2, used=2, requested=1, store=stores["fs"])
    assert api.get("/api/media/s.3").status_code == 404
    create_media(api, "s.3", store_config=FS2)  # another store is not limited
    assert usage_rows() == recount()


def test_store_bytes_quota_refuses_uploads_and_stores_nothing(api, stores):
    set_quota(api, store=stores["fs"], max_bytes=10)
    assert upload(api, "b.1", b"123456").status_code == 200
    before = objects(stores["fs"])
    refused = upload(api, "b.2", b"12345")
    assert_refused(refused, unit="bytes", limit=10, used=6, requested=5, store=stores["fs"])
    assert objects(stores["fs"]) == before and api.get("/api/media/b.2").status_code == 404
    # a replacement is charged the difference: 6 -> 10 fits, 6 -> 11 does not
    assert api.put_content("b.1", b"1234567890").status_code == 200
    refused = api.put_content("b.1", b"12345678901")
    assert_refused(refused, unit="bytes", limit=10, used=10, requested=1, store=stores["fs"])
    assert objects(stores["fs"]) == sorted([api.get("/api/media/b.1").json() and _key("b.1")])
    assert api.get("/api/download/b.1").json()["base64"] == base64.b64encode(b"1234567890").decode()
    assert usage_rows() == recount() == {(stores["fs"], "alice"): (10, 1)}


def _key(pid: str) -> str:
    return Media.objects.get(pid=pid).store_key


def test_a_streamed_body_over_the_quota_is_refused_before_it_is_read(api, stores, settings):
    set_quota(api, store=stores["fs"], max_bytes=4)
    create_media(api, "p.1", store_config=FS)
    # Had the body been stored, this failpoint would have made the switch a 502.
    settings.MEDIASTORE_FAILPOINTS = {"content.before_switch": "error"}
    refused = api.put_content("p.1", b"123456789")  # Content-Length 9 > 4: refused before writing
    assert_refused(refused, unit="bytes", limit=4, used=0, requested=9, store=stores["fs"])
    assert objects(stores["fs"]) == []
    assert api.get("/api/media/p.1").json()["store_status"] == "PENDING"


def test_account_quota_counts_the_owners_media_in_every_store(api, stores):
    bob = login("bob")
    set_quota(api, user="bob", max_bytes=8)
    assert upload(bob, "u.1", b"12345").status_code == 200
    refused = upload(bob, "u.2", b"1234", store=FS2)
    assert_refused(refused, unit="bytes", limit=8, used=5, requested=4, user="bob")
    assert objects(stores["fs2"]) == []
    assert upload(api, "u.3", b"123456789").status_code == 200  # alice is not bob
    assert upload(bob, "u.4", b"123", store=FS2).status_code == 200
    usage = bob.get("/api/usage").json()
    assert usage == [
        {"store": stores["fs"], "user": "bob", "bytes": 5, "media": 1},
        {"store": stores["fs2"], "user": "bob", "bytes": 3, "media": 1},
    ]


def test_pair_and_site_wide_quotas(api, stores):
    bob = login("bob")
    set_quota(api, store=stores["fs"], user="bob", max_media=1)
    create_media(bob, "x.1", store_config=FS)
    refused = bob.post("/api/media", media_body("x.2", store_config=FS))
    assert_refused(refused, unit="media", limit=1, used=1, requested=1, store=stores["fs"], user="bob")
    create_media(bob, "x.2", store_config=FS2)  # the pair's quota is about store fs only
    create_media(api, "x.3", store_config=FS)  # and about bob only
    set_quota(api, max_media=4)
    create_media(api, "x.4", store_config=FS2)
    refused = api.post("/api/media", media_body("x.5", store_config=FS2))
    assert_refused(refused, unit="media", limit=4, used=4, requested=1)
    assert Media.objects.count() == 4


def test_bulk_create_is_refused_whole_naming_the_item(api, stores):
    set_quota(api, store=stores["fs"], max_media=2)
    items = [media_body(f"k.{n}", store_config=FS) for n in range(3)]
    refused = api.post("/api/media/create", items)
    body = assert_refused(refused, unit="media", limit=2, used=0, requested=3, store=stores["fs"])
    assert body["index"] == 2 and body["pid"] == "k.2"
    assert Media.objects.count() == 0 and usage_rows() == {}
    assert api.post("/api/media/create", items[:2]).status_code == 200


def test_a_declared_size_is_charged_when_the_media_is_created(api, stores):
    """A PENDING media counts the size declared for its bytes: the bytes then cannot outgrow the
    quota while they travel (presigned and multipart uploads declare it)."""
    set_quota(api, store=stores["fs"], max_bytes=10)
    body = {"mediadata": media_body("d.1", store_config=FS), "size": 8}
    answer = api.post("/api/upload", body)
    assert answer.status_code == 200 and answer.json()["status"] == "PENDING", answer.content
    refused = api.post("/api/upload", {"mediadata": media_body("d.2", store_config=FS), "size": 3})
    assert_refused(refused, unit="bytes", limit=10, used=8, requested=3, store=stores["fs"])
    again = {
        "mediadata": media_body("d.1", store_config=FS),
        "base64": base64.b64encode(b"12345678").decode(),
    }
    assert api.post("/api/upload", again).json()["status"] == "READY"
    assert usage_rows() == recount() == {(stores["fs"], "alice"): (8, 1)}


def test_tus_creation_over_the_quota_is_refused_before_any_byte(api, token, stores, settings, tmp_path):
    settings.MEDIASTORE_TUS_DIR = tmp_path / "tus"
    set_quota(api, store=stores["fs"], max_bytes=100)
    meta = {"pid": "t.1", "pid_type": "local", "store": json.dumps(FS)}
    encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
    headers = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {token}", "Upload-Metadata": encoded}
    refused = Client().post("/api/tus/", headers={**headers, "Upload-Length": "101"})
    assert_refused(refused, unit="bytes", limit=100, used=0, requested=101, store=stores["fs"])
    assert Client().post("/api/tus/", headers={**headers, "Upload-Length": "100"}).status_code == 201


# ---------------------------------------------------------------------------------------------
# Moves, deletes, and the recount


def test_moves_charge_the_new_store_and_credit_the_old_one(api, stores):
    assert upload(api, "m.1", b"1234").status_code == 200
    assert upload(api, "m.2", b"123456").status_code == 200
    set_quota(api, store=stores["fs2"], max_bytes=5)
    assert api.patch("/api/media/m.1", {"store_config": stores["fs2"]}).status_code == 204
    assert usage_rows() == recount() == {(stores["fs"], "alice"): (6, 1), (stores["fs2"], "alice"): (4, 1)}
    refused = api.patch("/api/media/m.2", {"store_config": stores["fs2"]})
    assert_refused(refused, unit="bytes", limit=5, used=4, requested=6, store=stores["fs2"])
    assert objects(stores["fs2"]) == [_key("m.1")]  # the copy made for the refused move is gone
    # in bulk, the refusal is that item's failure and the others move
    assert upload(api, "m.3", b"1").status_code == 200
    outcome = api.patch(
        "/api/media/update", {"pids": ["m.2", "m.3"], "medias": [{"store_config": stores["fs2"]}] * 2}
    )
    assert outcome.json()["successes"] == ["m.3"]
    [failure] = outcome.json()["failures"]
    assert failure["pid"] == "m.2" and failure["error"] == "InsufficientStorage" and "quota" in failure["msg"]
    assert usage_rows() == recount() == {(stores["fs"], "alice"): (6, 1), (stores["fs2"], "alice"): (5, 2)}


def test_deletes_credit_and_usage_equals_a_recount_after_a_mixed_sequence(api, stores):
    bob = login("bob")
    for n in range(4):
        assert (
            upload(api if n % 2 else bob, f"z.{n}", b"x" * (n + 1), store=FS if n < 3 else FS2).status_code
            == 200
        )
    create_media(bob, "z.pending", store_config=FS2)
    assert api.put_content("z.1", b"longer bytes").status_code == 200
    assert api.patch("/api/media/z.2", {"store_config": stores["fs2"]}).status_code == 204
    assert api.delete("/api/media/z.0").status_code == 204
    assert api.post("/api/media/delete", ["z.3", "nope"]).json()["successes"] == ["z.3"]
    assert usage_rows() == recount()
    assert usage_rows() == {(stores["fs"], "alice"): (12, 1), (stores["fs2"], "bob"): (3, 2)}
    assert sorted(api.get("/api/quotas").json(), key=str) == []


def test_usage_own_rows_admins_everyones(api, stores):
    bob = login("bob")
    create_media(bob, "v.1", store_config=FS)
    create_media(api, "v.2", store_config=FS2)
    assert [row["user"] for row in api.get("/api/usage").json()] == ["bob", "alice"]
    assert api.get("/api/usage?user=bob").json() == [
        {"store": stores["fs"], "user": "bob", "bytes": 0, "media": 1}
    ]
    assert [row["user"] for row in api.get(f"/api/usage?store={stores['fs2']}").json()] == ["alice"]
    assert [row["user"] for row in bob.get("/api/usage").json()] == ["bob"]
    assert bob.get("/api/usage?user=bob").status_code == 200
    assert bob.get("/api/usage?user=alice").status_code == 403


# ---------------------------------------------------------------------------------------------
# quota.warning


def test_quota_warning_once_per_crossing_of_90_percent(api, stores):
    set_quota(api, store=stores["fs"], max_bytes=100)
    assert upload(api, "w.1", b"x" * 80).status_code == 200  # 80%: no warning
    assert upload(api, "w.2", b"x" * 10).status_code == 200  # 90%: warning
    assert upload(api, "w.3", b"x" * 5).status_code == 200  # still above: none
    assert api.delete("/api/media/w.2").status_code == 204  # 85%
    assert upload(api, "w.4", b"x" * 10).status_code == 200  # 95%: crossed again
    events = api.get("/api/events?types=quota.warning").json()["items"]
    assert [event["pid"] for event in events] == ["w.2", "w.4"]
    quota = events[0]["media"]["quota"]
    assert quota == {
        "store": stores["fs"],
        "user": None,
        "max_bytes": 100,
        "max_media": None,
        "unit": "bytes",
        "limit": 100,
        "used": 90,
    }
    assert events[0]["media"]["pid"] == "w.2" and events[0]["user"] == "alice"
    created = api.get("/api/events?types=media.created").json()["items"]
    assert events[0]["mark"] == [e for e in created if e["pid"] == "w.2"][0]["mark"]


def test_status_page_charts_usage_per_owner_and_quota_use(api, user, stores):
    assert upload(api, "c.1", b"x" * 95).status_code == 200
    browser = Client()
    browser.force_login(user)
    page = browser.get("/status/").content.decode()
    assert 'id="chart-owner-bytes"' in page and "alice" in page and "95 B" in page
    assert "None set" in page
    set_quota(api, store=stores["fs"], max_bytes=100, max_media=10)
    page = browser.get("/status/").content.decode()
    assert "Quotas: use of the tightest limit" in page and "95 of 100 bytes" in page


@pytest.mark.django_db(transaction=True)
def test_the_data_migration_counts_the_media_that_exist(api, stores):
    """quotas 0002: media from before owners were recorded (owner null) are counted as no one's."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    assert upload(api, "old.1", b"12345").status_code == 200
    assert upload(api, "old.2", b"123", store=FS2).status_code == 200
    create_media(api, "old.3", store_config=FS2)
    Media.objects.update(owner=None)
    MigrationExecutor(connection).migrate([("quotas", "0001_quotas")])
    assert Usage.objects.count() == 0
    MigrationExecutor(connection).migrate([("quotas", "0002_fill_usage")])
    assert usage_rows() == recount() == {(stores["fs"], ""): (5, 1), (stores["fs2"], ""): (3, 2)}


def test_a_limit_lowered_below_the_use_refuses_growth_only(api, stores):
    assert upload(api, "l.1", b"x" * 8).status_code == 200
    assert upload(api, "l.2", b"x" * 8).status_code == 200
    set_quota(api, store=stores["fs"], max_bytes=10)  # 16 in use: nothing is deleted
    assert api.get("/api/media/l.1").status_code == 200 and len(objects(stores["fs"])) == 2
    assert api.put_content("l.1", b"x" * 9).status_code == 507  # growth
    assert api.put_content("l.1", b"x" * 4).status_code == 200  # shrinking is allowed
    assert api.patch("/api/media/update/tags", [{"pid": "l.1", "tags": ["editable"]}]).status_code == 200
    assert api.delete("/api/media/l.2").status_code == 204
    assert upload(api, "l.3", b"x" * 6).status_code == 200  # 4 + 6 = 10 fits again
    assert usage_rows() == recount() == {(stores["fs"], "alice"): (10, 2)}


def test_the_bin_gives_back_usage_and_a_restore_charges_it_again(api, stores, settings):
    """Binned media count toward no quota (deleting frees the room at once) and a restore counts
    them again, refused with 507 and nothing restored when the room was taken meanwhile."""
    settings.MEDIASTORE_TRASH_DAYS = 7
    binner = login("binner")
    set_quota(api, user="binner", max_media=1)
    assert upload(binner, "bin-1", b"one").status_code == 200
    assert binner.delete("/api/media/bin-1").status_code in (200, 204)
    assert usage_rows() == {} and recount() == {}  # the bin holds it; nobody is charged
    assert upload(binner, "bin-2", b"two").status_code == 200  # the room the delete freed
    refused = binner.post("/api/trash/bin-1/restore")
    assert_refused(refused, unit="media", limit=1, used=1, requested=1, user="binner")
    assert api.get("/api/media/bin-1").status_code == 404
    assert binner.delete("/api/media/bin-2").status_code in (200, 204)
    assert binner.post("/api/trash/bin-1/restore").status_code == 200
    assert usage_rows() == {(stores["fs"], "binner"): (3, 1)} == recount()
