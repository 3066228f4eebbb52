"""The admin: every model is there, media history shows, the S3 secret is never displayed."""

import base64
import re

import pytest

from media.models import Media
from stores.models import S3Config
from tests.conftest import DICT_STORE, media_body

pytestmark = pytest.mark.django_db

# The management form of the read-only replicas inline (content.admin) that a browser sends along.
REPLICAS_FORM = {"replicas-TOTAL_FORMS": "0", "replicas-INITIAL_FORMS": "0"}


@pytest.fixture
def admin_client_logged(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/media/media/",
        "/admin/media/media/?store_status__exact=PENDING",
        "/admin/media/media/?pid_type__name__exact=local&store_config__id__exact=1&tags__id__exact=1",
        "/admin/media/media/?q=D2024",
        "/admin/identifiers/identifiertype/",
        "/admin/stores/storeconfig/",
        "/admin/stores/s3config/",
        "/admin/mediastore/apitoken/",
        "/admin/taggit/tag/",
        "/admin/content/replica/",
        "/admin/content/replica/?state__exact=GOOD",
        "/admin/content/replicationrule/",
        "/admin/content/replicationrule/add/",
    ],
)
def test_admin_pages_answer(admin_client_logged, api, id_types, url):
    api.post("/api/media", media_body("m1", identifiers={"bin": "D20240101T000000_IFCB001"}, tags=["t"]))
    response = admin_client_logged.get(url)
    assert response.status_code == 200


def test_admin_search_finds_identifier_values(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1", identifiers={"bin": "D20240101T000000_IFCB001"}))
    api.post("/api/media", media_body("m2"))
    page = admin_client_logged.get("/admin/media/media/?q=IFCB001").content.decode()
    assert ">m1<" in page and ">m2<" not in page


def test_media_history_page_shows_changes(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1"))
    api.patch("/api/media/update/tags", [{"pid": "m1", "tags": ["hello"]}])
    pk = Media.objects.get(pid="m1").pk
    response = admin_client_logged.get(f"/admin/media/media/{pk}/history/")
    assert response.status_code == 200
    assert "alice" in response.content.decode()


def test_s3_secret_is_never_displayed(admin_client_logged):
    cfg = S3Config.objects.create(url="http://s3.test", access_key="AK", secret_key="top-secret-value")
    for url in ("/admin/stores/s3config/", f"/admin/stores/s3config/{cfg.pk}/change/"):
        assert "top-secret-value" not in admin_client_logged.get(url).content.decode()


def test_s3_secret_kept_when_left_empty_and_changed_when_given(admin_client_logged):
    cfg = S3Config.objects.create(url="http://s3.test", access_key="AK", secret_key="old")
    url = f"/admin/stores/s3config/{cfg.pk}/change/"
    response = admin_client_logged.post(url, {"url": "http://s3.test", "access_key": "AK2", "secret_key": ""})
    assert response.status_code == 302
    cfg.refresh_from_db()
    assert (cfg.access_key, cfg.secret_key) == ("AK2", "old")
    admin_client_logged.post(url, {"url": "http://s3.test", "access_key": "AK2", "secret_key": "new"})
    cfg.refresh_from_db()
    assert cfg.secret_key == "new"


def test_tokens_can_be_revoked_in_admin(admin_client_logged, api, token):
    from mediastore.models import ApiToken

    row = ApiToken.objects.get()
    response = admin_client_logged.post(
        "/admin/mediastore/apitoken/", {"action": "revoke", "_selected_action": [row.pk]}
    )
    assert response.status_code == 302
    assert api.get("/api/identifier/list").status_code == 401


def test_admin_edit_of_tags_is_recorded_in_tag_list_and_history(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1"))
    media = Media.objects.get(pid="m1")
    response = admin_client_logged.post(
        f"/admin/media/media/{media.pk}/change/",
        {
            "pid": "m1",
            "pid_type": "local",
            "identifiers": "{}",
            "metadata": "{}",
            "content_type": "",
            "tags": "a, b",
            **REPLICAS_FORM,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert api.get("/api/media/m1").json()["tags"] == ["a", "b"]
    history = api.get("/api/media/m1/history").json()
    assert any(c["field"] == "tags" and c["new"] == ["a", "b"] for c in history[0]["changes"])


def test_admin_edit_applies_pid_rules(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1"))
    media = Media.objects.get(pid="m1")
    response = admin_client_logged.post(
        f"/admin/media/media/{media.pk}/change/",
        {
            "pid": "m1",
            "pid_type": "doi",
            "identifiers": "{}",
            "metadata": "{}",
            "content_type": "",
            "tags": "",
            **REPLICAS_FORM,
        },
    )
    assert response.status_code == 200  # form shown again with the error
    assert "does not match the pattern" in response.content.decode()
    assert Media.objects.get(pk=media.pk).pid_type_id == "local"


def test_admin_delete_goes_through_the_service(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1"))
    media = Media.objects.get(pid="m1")
    response = admin_client_logged.post(f"/admin/media/media/{media.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Media.objects.exists()
    assert api.get("/api/media/m1/history").json()[0]["action"] == "deleted"


def test_admin_delete_selected_removes_the_media_and_their_bytes(
    admin_client_logged, api, id_types, settings
):
    """The changelist's "delete selected" goes through content.deletes as the API does: the rows,
    with a "deleted" history row each, then the stored bytes (once the number of media is typed:
    tests/content/test_admin_actions.py)."""
    settings.MEDIASTORE_TRASH_DAYS = (
        0  # final deletes; the bin: test_admin_delete_selected_bins_and_refuses_held
    )
    for pid in ("s1", "s2", "kept"):
        body = {"mediadata": media_body(pid), "base64": base64.b64encode(pid.encode()).decode()}
        assert api.post("/api/upload", body).status_code == 200
    chosen = Media.objects.select_related("store_config").filter(pid__in=["s1", "s2"])
    objects = [(media.store_config.backend(), media.store_key) for media in chosen]
    assert all(backend.exists(key) for backend, key in objects)
    response = admin_client_logged.post(
        "/admin/media/media/",
        {
            "action": "delete_selected",
            "_selected_action": [m.pk for m in chosen],
            "apply": "1",
            "confirm": "2",
        },
    )
    assert response.status_code == 302
    assert list(Media.objects.values_list("pid", flat=True)) == ["kept"]
    assert not any(backend.exists(key) for backend, key in objects)
    for pid in ("s1", "s2"):
        assert api.get(f"/api/media/{pid}/history").json()[0]["action"] == "deleted"


def test_admin_delete_selected_bins_and_refuses_held(admin_client_logged, api, id_types, settings):
    """With the recycle bin (MEDIASTORE_TRASH_DAYS > 0) the admin's delete bins as the API's does
    (bytes kept, restorable), and a held media stays, with a message naming its hold."""
    settings.MEDIASTORE_TRASH_DAYS = 7
    for pid in ("s1", "held"):
        body = {"mediadata": media_body(pid), "base64": base64.b64encode(pid.encode()).decode()}
        assert api.post("/api/upload", body).status_code == 200
    assert api.post("/api/media/held/hold", {"reason": "case 9"}).status_code == 200
    chosen = list(Media.objects.select_related("store_config").order_by("pk"))
    response = admin_client_logged.post(
        "/admin/media/media/",
        {
            "action": "delete_selected",
            "_selected_action": [m.pk for m in chosen],
            "apply": "1",
            "confirm": "2",
        },
        follow=True,
    )
    assert "case 9" in response.content.decode()
    assert list(Media.objects.values_list("pid", flat=True)) == ["held"]
    assert chosen[0].store_config.backend().exists(chosen[0].store_key)
    assert api.post("/api/trash/s1/restore").status_code == 200
    assert admin_client_logged.get("/admin/media/binnedmedia/").status_code == 200


# --- the media change page, history page and revert (issue "The first ten minutes") -------------


def s3_store(api, s3_server, bucket: str) -> dict:
    cfg = {"url": s3_server.url, "access_key": s3_server.access_key, "secret_key": s3_server.secret_key}
    assert api.post("/api/s3cfg", cfg).status_code == 200
    return {"type": "BucketStore", "bucket": bucket, "s3_url": s3_server.url}


def upload(api, pid: str, store: dict, data: bytes, **fields):
    body = {
        "mediadata": media_body(pid, store_config=store, **fields),
        "base64": base64.b64encode(data).decode(),
    }
    response = api.post("/api/upload", body)
    assert response.status_code == 200, response.content


def test_change_page_has_one_tag_field_and_the_stored_etag(
    admin_client_logged, api, id_types, s3_server, s3_bucket
):
    """The bugs: the page showed an editable "Tags" and a read-only "Tag list", and "Etag: -"."""
    upload(api, "m1", s3_store(api, s3_server, s3_bucket), b"some bytes", tags=["b", "a,c"])
    media = Media.objects.get(pid="m1")
    assert media.etag and media.checksum.startswith("sha256:")
    page = admin_client_logged.get(f"/admin/media/media/{media.pk}/change/").content.decode()
    assert page.count('name="tags"') == 1 and "Tag list" not in page
    assert re.search(r'name="tags" value="&quot;a,c&quot;, b"', page)
    assert f"<code>{media.etag}</code>" in page and f"<code>{media.checksum}</code>" in page


def test_change_page_says_why_a_store_has_no_etag(admin_client_logged, api, id_types):
    upload(api, "m1", DICT_STORE, b"some bytes")
    api.post("/api/media", media_body("m2"))
    media, pending = Media.objects.get(pid="m1"), Media.objects.get(pid="m2")
    page = admin_client_logged.get(f"/admin/media/media/{media.pk}/change/").content.decode()
    assert "none: a DictStore reports no ETag" in page and f"<code>{media.checksum}</code>" in page
    page = admin_client_logged.get(f"/admin/media/media/{pending.pk}/change/").content.decode()
    assert page.count("none: no bytes stored yet") == 2


def test_admin_tag_edit_is_one_history_row_checked_by_the_api_rules(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1", tags=["x"]))
    media = Media.objects.get(pid="m1")
    form = {"pid": "m1", "pid_type": "local", "identifiers": "{}", "metadata": "{}", "content_type": ""}
    form.update(
        {"initial-identifiers": "{}", "initial-metadata": "{}", **REPLICAS_FORM}
    )  # hidden inputs a browser sends
    url = f"/admin/media/media/{media.pk}/change/"
    response = admin_client_logged.post(url, {**form, "tags": "t" * 101})
    assert response.status_code == 200 and "longer than 100 characters" in response.content.decode()
    assert admin_client_logged.post(url, {**form, "tags": "y, x"}).status_code == 302
    history = api.get("/api/media/m1/history").json()
    assert [e["version"] for e in history] == ["2", "1"]
    assert history[0]["user"] == "root"
    assert history[0]["changes"] == [{"field": "tags", "old": ["x"], "new": ["x", "y"]}]
    assert [m["pid"] for m in api.post("/api/media/search", {"tags": ["y"]}).json()] == ["m1"]
    # the changes feed carries the admin's edit too (it bypassed the outbox before)
    events = api.get("/api/events").json()["items"]
    assert [(e["type"], e["user"], e["changed"]) for e in events][-1] == (
        "media.tags_changed",
        "root",
        ["tags"],
    )
    # saving an unchanged form writes nothing
    assert admin_client_logged.post(url, {**form, "tags": "x, y"}).status_code == 302
    assert len(api.get("/api/media/m1/history").json()) == 2
    assert len(api.get("/api/events").json()["items"]) == len(events)


def test_history_page_lists_changes_old_to_new(admin_client_logged, api, id_types):
    """The bug: the history page's "Changes" column was empty."""
    api.post("/api/media", media_body("m1", metadata={"a": 1}))
    api.patch("/api/media/update/tags", [{"pid": "m1", "tags": ["hello"]}])
    api.put("/api/media/update/metadata", [{"pid": "m1", "keys": ["a"], "data": 2}])
    pk = Media.objects.get(pid="m1").pk
    page = admin_client_logged.get(f"/admin/media/media/{pk}/history/").content.decode()
    arrow = r"\s*&nbsp;&rarr;&nbsp;&nbsp;"
    assert re.search(r"<strong>tags:</strong>\s*\[\]" + arrow + r"\[&quot;hello&quot;\]", page)
    assert re.search(
        r"<strong>metadata:</strong>\s*\{&quot;a&quot;: 1\}" + arrow + r"\{&quot;a&quot;: 2\}", page
    )
    assert re.search(r"<strong>pid:</strong>\s*—" + arrow + r"m1", page)  # the creation row


def test_admin_revert_goes_through_the_rules_and_keeps_the_bytes(admin_client_logged, api, id_types):
    """The bug: the admin's revert restored store key, status, size and checksum blindly."""
    api.post("/api/media", media_body("m1", tags=["old"], metadata={"v": 1}))
    first = Media.history.get(pid="m1", version=1)
    api.put("/api/media/update/tags", [{"pid": "m1", "tags": ["new"]}])
    api.client.put(
        "/api/media/m1/content",
        data=b"bytes",
        content_type="text/plain",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    before = Media.objects.get(pid="m1")
    url = f"/admin/media/media/{before.pk}/history/{first.history_id}/"
    page = admin_client_logged.get(url).content.decode()
    assert "Revert to version 1" in page and page.count("never restored") == 7

    response = admin_client_logged.post(url)

    assert response.status_code == 302 and response["Location"] == f"/admin/media/media/{before.pk}/change/"
    after = Media.objects.get(pk=before.pk)
    assert after.tag_list == ["old"] and after.metadata == {"v": 1} and after.version == before.version + 1
    byte_fields = ("store_config_id", "store_key", "store_status", "size", "checksum", "etag", "content_type")
    assert [getattr(after, f) for f in byte_fields] == [getattr(before, f) for f in byte_fields]
    assert after.store_status == "READY" and api.get("/api/media/m1/verify").json()["ok"] is True
    latest = api.get("/api/media/m1/history").json()[0]
    assert (latest["user"], latest["reason"]) == ("root", "revert to version 1")
    history_page = admin_client_logged.get(f"/admin/media/media/{before.pk}/history/").content.decode()
    newest_row = history_page.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert ">root</a>" in newest_row and "revert to version 1" in newest_row
    assert re.search(r"<strong>tags:</strong>\s*\[&quot;new&quot;\]", newest_row)


def test_admin_revert_refused_by_the_rules_changes_nothing(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1"))
    first = Media.history.get(pid="m1", version=1)
    api.patch("/api/media/m1", {"new_pid": "m2"})
    api.post("/api/media", media_body("m1"))
    media = Media.objects.get(pid="m2")
    response = admin_client_logged.post(
        f"/admin/media/media/{media.pk}/history/{first.history_id}/", follow=True
    )
    assert "Not reverted: media with pid &#x27;m1&#x27; already exists" in response.content.decode()
    assert Media.objects.get(pk=media.pk).version == 2


def test_media_page_lists_its_replicas(admin_client_logged, api, id_types, settings, tmp_path):
    from django.core.management import call_command

    settings.MEDIASTORE_STORAGE_ROOT = str(tmp_path)
    body = {"mediadata": media_body("m1"), "base64": base64.b64encode(b"bytes").decode()}
    assert api.post("/api/upload", body).status_code == 200
    store = {"type": "FilesystemStore", "bucket": "copies"}
    assert api.post("/api/media/m1/replicas", {"store_config": store}).status_code == 202
    call_command("replicate", "--once", verbosity=0)
    media = Media.objects.get(pid="m1")

    page = admin_client_logged.get(f"/admin/media/media/{media.pk}/change/").content.decode()

    replica = media.replicas.get()
    assert f"FilesystemStore copies (#{replica.store_config_id})" in page and "GOOD" in page
    assert f'href="/admin/content/replica/{replica.pk}/change/"' in page


def test_replication_rules_are_edited_with_the_api_rules(admin_client_logged, api, id_types):
    from content.models import ReplicationRule

    store = api.post("/api/store", {"type": "DictStore", "bucket": "copies"}).json()["pk"]
    form = {"name": "r1", "pid_types": '["local", "nope"]', "tags": '["a"]', "copies": [store]}

    refused = admin_client_logged.post("/admin/content/replicationrule/add/", form)

    assert refused.status_code == 200 and "bad pid_type: nope" in refused.content.decode()
    made = admin_client_logged.post("/admin/content/replicationrule/add/", {**form, "pid_types": '["local"]'})
    assert made.status_code == 302
    rule = ReplicationRule.objects.get(name="r1")
    assert rule.pid_types == ["local"] and [s.pk for s in rule.copies.all()] == [store]
    assert api.get("/api/rules").json()[0]["match"] == {"pid_type": ["local"], "tags": ["a"], "store": None}


def test_admin_downloads_the_selected_media_as_one_zip(admin_client_logged, api, id_types, settings):
    """Issue 28 item 3: the changelist's action "Download selected media as zip" streams the
    archive of POST /api/download/archive for the selection."""
    import io
    import zipfile

    for pid in ("z/1", "z/2", "left-out"):
        upload(api, pid, DICT_STORE, f"bytes of {pid}".encode())
    chosen = [Media.objects.get(pid=pid).pk for pid in ("z/1", "z/2")]
    response = admin_client_logged.post(
        "/admin/media/media/", {"action": "download_zip", "_selected_action": chosen}
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert archive.read("data/z/1") == b"bytes of z/1" and archive.read("data/z/2") == b"bytes of z/2"
        assert "data/left-out" not in archive.namelist()
        assert archive.read("errors.txt") == b""
    settings.MEDIASTORE_ARCHIVE_MAX_MEDIA = 1
    response = admin_client_logged.post(
        "/admin/media/media/", {"action": "download_zip", "_selected_action": chosen}, follow=True
    )
    assert "MEDIASTORE_ARCHIVE_MAX_MEDIA" in response.content.decode()


def test_s3_config_in_admin_without_keys_with_region_and_style(admin_client_logged):
    """Keys optional (the server's credential chain), but both or neither; region and style kept
    when a form leaves them out."""
    add = "/admin/stores/s3config/add/"
    one_key = admin_client_logged.post(add, {"url": "http://s3.chain.test", "access_key": "AK"})
    assert one_key.status_code == 200 and b"or neither" in one_key.content
    assert not S3Config.objects.exists()
    fields = {"url": "http://s3.chain.test", "region": "eu-west-3", "addressing_style": "virtual"}
    assert admin_client_logged.post(add, fields).status_code == 302
    cfg = S3Config.objects.get()
    assert (cfg.access_key, cfg.secret_key_encrypted, cfg.region, cfg.addressing_style) == (
        "",
        "",
        "eu-west-3",
        "virtual",
    )
    change = f"/admin/stores/s3config/{cfg.pk}/change/"
    keys = {"url": "http://s3.chain.test", "access_key": "AK2", "secret_key": "s2"}
    assert admin_client_logged.post(change, keys).status_code == 302
    cfg.refresh_from_db()
    assert (cfg.access_key, cfg.secret_key, cfg.region, cfg.addressing_style) == (
        "AK2",
        "s2",
        "eu-west-3",
        "virtual",
    )
    assert (
        admin_client_logged.post(change, {"url": "http://s3.chain.test", "clear_keys": "on"}).status_code
        == 302
    )
    cfg.refresh_from_db()
    assert (cfg.access_key, cfg.secret_key) == ("", "")
