"""The admin's media page and list (content.media_page, media.history_story): previews, copies and
health, the history as a story with revert links, and what a reader sees."""

from __future__ import annotations

import io
import re

import pytest
from django.test import Client
from PIL import Image

from content.models import Replica, ReplicaState
from media.history_story import ADMIN_REASON, IMPORT_REASON, how
from media.models import Media
from stores.models import StoreConfig
from tests.conftest import create_media
from tests.permissions_support import staff

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def preview_dir(settings, tmp_path):
    settings.MEDIASTORE_PREVIEW_DIR = str(tmp_path / "previews")


@pytest.fixture
def writer() -> Client:
    return staff("wanda", "writers")


@pytest.fixture
def reader() -> Client:
    return staff("rita", "readers")


def png(size=(120, 80)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def page_of(client: Client, pid: str) -> str:
    response = client.get(f"/admin/media/media/{Media.objects.get(pid=pid).pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_shows_an_image_preview_served_by_the_admin(writer, api, id_types):
    create_media(api, "pic", metadata={"sample": {"depth": 5}})
    assert api.put_content("pic", png(), content_type="image/png").status_code == 200
    page = page_of(writer, "pic")
    url = re.search(r'class="ms-preview-image" src="([^"]+)"', page).group(1)
    response = writer.get(url.replace("&amp;", "&"))
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).size == (120, 80)
    assert "image/png, 3" in page or "image/png," in page
    assert "&quot;depth&quot;: 5" in page  # the metadata, pretty and escaped


def test_a_text_preview_is_escaped(writer, api, id_types):
    create_media(api, "note")
    api.put_content("note", b"<script>alert(1)</script>\nsecond line\n", content_type="text/plain")
    page = page_of(writer, "note")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\nsecond line" in page and "<script>alert(1)" not in page


def test_the_list_lazy_loads_thumbnails_and_a_missing_one_is_a_placeholder(writer, api, id_types):
    create_media(api, "pic")
    api.put_content("pic", png(), content_type="image/png")
    create_media(api, "blob")
    api.put_content("blob", b"\x00" * 10, content_type="application/x-hdf5")
    create_media(api, "empty")
    page = writer.get("/admin/media/media/").content.decode()
    urls = re.findall(r'<img src="([^"]+)" loading="lazy"', page)
    assert len(urls) == 3
    answers = {url: writer.get(url.replace("&amp;", "&")) for url in urls}
    types = sorted(response["Content-Type"] for response in answers.values())
    assert types == ["image/svg+xml", "image/svg+xml", "image/webp"]
    svgs = [b"".join(r.streaming_content) if r.streaming else r.content for r in answers.values()]
    assert any(b"x-hdf5" in svg for svg in svgs)


def test_the_history_tells_who_how_and_what_changed(writer, api, id_types):
    create_media(api, "story", metadata={"sample": {"depth": 5, "site": "A"}, "old": 1}, tags=["raw"])
    body = [{"pid": "story", "data": {"sample": {"depth": 10, "site": "A"}, "new": True}}]
    assert api.put("/api/media/update/metadata", body).status_code == 200
    api.put_content("story", b"one,two\n", content_type="text/csv")
    assert (
        api.put("/api/media/update/tags", [{"pid": "story", "tags": ["raw", "checked"]}]).status_code == 200
    )
    assert api.post("/api/media/story/revert", {"version": 2}).status_code == 200
    page = page_of(writer, "story")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "Version 2: changed" in text and "by alice API" in text
    assert "metadata sample.depth changed 5 10" in text
    assert "metadata new added — true" in text and "metadata old removed 1 —" in text
    assert "bytes (size) added — 8" in text and "bytes (checksum) added" in text
    assert "tags checked added — checked" in text
    assert "Version 5: changed" in text and " revert revert to version 2" in text
    assert "tags checked removed checked —" in text  # the revert took the tag away
    links = re.findall(r'href="(/admin/media/media/\d+/history/\d+/)">Revert to version (\d+)', page)
    assert [v for _, v in links] == ["4", "3", "2", "1"]  # not the current version


def test_an_admin_edit_is_told_as_one(writer, api, id_types):
    create_media(api, "edited")
    media = Media.objects.get(pid="edited")
    form = {
        "pid": "edited",
        "pid_type": "local",
        "identifiers": "{}",
        "metadata": '{"a": 1}',
        "tags": "",
        "content_type": "",
        "replicas-TOTAL_FORMS": "0",
        "replicas-INITIAL_FORMS": "0",
    }
    assert writer.post(f"/admin/media/media/{media.pk}/change/", form).status_code == 302
    assert Media.history.filter(id=media.pk).latest("history_id").history_change_reason == ADMIN_REASON
    assert "by wanda admin" in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page_of(writer, "edited")))


def test_revert_from_the_page_asks_then_restores_metadata_not_bytes(writer, api, id_types):
    create_media(api, "rev", metadata={"v": 1})
    api.put_content("rev", b"first", content_type="text/plain")
    api.put("/api/media/update/metadata", [{"pid": "rev", "data": {"v": 2}}])
    api.put_content("rev", b"second", content_type="text/plain")
    page = page_of(writer, "rev")
    link = dict((v, href) for href, v in re.findall(r'href="([^"]+)">Revert to version (\d+)', page))["2"]
    confirm = writer.get(link)
    assert confirm.status_code == 200 and 'value="Revert to version 2"' in confirm.content.decode()
    assert api.get("/api/media/rev").json()["metadata"] == {"v": 2}  # asking changed nothing
    assert writer.post(link, {"_revert": "1"}).status_code == 302
    after = api.get("/api/media/rev").json()
    assert after["metadata"] == {"v": 1} and after["version"] == "5"
    assert api.get("/api/download/rev").json()["base64"] == "c2Vjb25k"  # "second": bytes untouched


def test_a_reader_sees_previews_and_history_but_no_action(reader, api, id_types):
    create_media(api, "seen", metadata={"v": 1})
    api.put_content("seen", png(), content_type="image/png")
    api.put("/api/media/update/metadata", [{"pid": "seen", "data": {"v": 2}}])
    page = page_of(reader, "seen")
    assert 'class="ms-preview-image"' in page and "metadata v changed 1 2" in re.sub(
        r"\s+", " ", re.sub(r"<[^>]+>", " ", page)
    )
    assert "Revert to version" not in page and 'name="_save"' not in page and 'name="_continue"' not in page
    pk = Media.objects.get(pid="seen").pk
    row = Media.history.filter(id=pk).earliest("history_id")
    assert reader.get(f"/admin/media/media/{pk}/history/{row.history_id}/").status_code == 200
    assert (
        reader.post(f"/admin/media/media/{pk}/history/{row.history_id}/", {"_revert": "1"}).status_code == 403
    )
    assert reader.get(f"/admin/media/media/{pk}/preview/?size=64").status_code == 200
    assert api.get("/api/media/seen").json()["metadata"] == {"v": 2}


def test_copies_and_health(writer, api, id_types):
    create_media(api, "copied")
    api.put_content("copied", b"bytes")
    media = Media.objects.get(pid="copied")
    other = StoreConfig.objects.create(type="DictStore", bucket="elsewhere")
    Replica.objects.create(media=media, store_config=other, state=ReplicaState.BAD, error="checksum differs")
    Media.objects.filter(pk=media.pk).update(verify_ok=True, verified_at="2026-01-02T03:04:05Z")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page_of(writer, "copied")))
    assert "Last fixity check of the media: Jan. 2, 2026, 3:04 a.m., passed" in text
    assert "primary DictStore tests" in text and "GOOD" in text
    assert "replica DictStore elsewhere" in text and "BAD never — checksum differs" in text
    # Shown once, in this table (an inline of replicas below it listed them a second time), and
    # linked to the replica's own admin page.
    assert text.count("checksum differs") == 1
    replica = Replica.objects.get(media=media)
    assert f'href="/admin/content/replica/{replica.pk}/change/">replica</a>' in page_of(writer, "copied")


def test_the_list_filters_on_failed_verification(writer, api, id_types):
    for pid in ("fine", "failed", "bad-copy", "unchecked"):
        create_media(api, pid)
    Media.objects.filter(pid="fine").update(verify_ok=True, verified_at="2026-01-01T00:00:00Z")
    Media.objects.filter(pid="failed").update(verify_ok=False, verified_at="2026-01-01T00:00:00Z")
    Media.objects.filter(pid="bad-copy").update(verify_ok=True, verified_at="2026-01-01T00:00:00Z")
    other = StoreConfig.objects.create(type="DictStore", bucket="elsewhere")
    Replica.objects.create(
        media=Media.objects.get(pid="bad-copy"), store_config=other, state=ReplicaState.MISSING
    )

    def listed(query: str) -> set[str]:
        page = writer.get(f"/admin/media/media/?{query}").content.decode()
        return set(re.findall(r'/change/[^"]*">([^<]+)</a>', page))

    assert listed("fixity=failed") == {"failed", "bad-copy"}
    assert listed("fixity=never") == {"unchecked"}
    assert listed("fixity=passed") == {"fine"}
    assert "verify failed" in writer.get("/admin/media/media/").content.decode()


def test_every_writer_of_a_change_reason_is_told_apart():
    from content.ingest import INGEST_REASON
    from importer.plan import IMPORT_REASON as IMPORTER_REASON

    assert IMPORTER_REASON == IMPORT_REASON
    assert how(None) == how("") == "API"
    assert how(ADMIN_REASON) == "admin"
    assert how(f"{INGEST_REASON}/data/a.png") == "ingest"
    assert how(IMPORT_REASON) == "import"
    assert how("revert to version 3") == "revert"
    assert how("repaired from a GOOD replica") == "replica repair"
    assert how("promote: replica in store 2 became the primary copy") == "replica promoted"
    assert how("tus upload 5f") == "resumable upload"
    assert how("something else") == "other"


def test_bytes_missing_from_the_store_are_no_preview_on_the_page_and_502_in_the_api(
    writer, api, id_types, storage_root
):
    create_media(api, "lost", store_config={"type": "FilesystemStore", "bucket": "lost"})
    assert api.put_content("lost", png(), content_type="image/png").status_code == 200
    for path in (storage_root / "lost").rglob("*"):
        if path.is_file():
            path.unlink()
    assert api.get("/api/media/lost/preview").status_code == 502
    page = page_of(writer, "lost")
    assert "No preview (the stored bytes of media &#x27;lost&#x27; are missing from its store)." in page
    thumb = writer.get(f"/admin/media/media/{Media.objects.get(pid='lost').pk}/preview/?size=64")
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/svg+xml"


def test_a_change_nested_deeper_than_the_diff_goes_is_one_line():
    from media.history_story import MAX_DIFF_DEPTH, json_diff

    def nested(depth: int, leaf):
        return leaf if depth == 0 else {"k": nested(depth - 1, leaf)}

    lines = json_diff(nested(900, 1), nested(900, 2))
    assert len(lines) == 1 and lines[0]["path"] == ".".join(["k"] * MAX_DIFF_DEPTH)
    assert lines[0]["change"] == "changed" and lines[0]["old"] != lines[0]["new"]
