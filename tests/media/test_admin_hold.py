"""Holds placed and released from the admin's media page (media.admin_hold): the same service as
``POST``/``DELETE /api/media/{pid}/hold``, for the group admins only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from media.models import Media
from tests.conftest import create_media
from tests.permissions_support import staff

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_an_admin_places_and_releases_a_hold_from_the_page(api, id_types):
    admin = staff("ada", "admins")
    create_media(api, "kept")
    pk = Media.objects.get(pid="kept").pk
    page = admin.get(f"/admin/media/media/{pk}/change/")
    assert "Not on hold." in text_of(page) and f'href="/admin/media/media/{pk}/hold/">Place a hold' in (
        page.content.decode()
    )
    assert admin.get(f"/admin/media/media/{pk}/hold/").status_code == 200

    placed = admin.post(
        f"/admin/media/media/{pk}/hold/", {"reason": "case 21", "freeze": "on", "_place": "1"}
    )

    assert placed.status_code == 302 and placed["Location"] == f"/admin/media/media/{pk}/change/"
    hold = api.get("/api/media/kept").json()["hold"]
    assert (
        hold["reason"] == "case 21"
        and hold["freeze"] is True
        and hold["by"] == "ada"
        and hold["until"] is None
    )
    assert api.delete("/api/media/kept").status_code == 423
    assert "On hold (frozen) until released: case 21." in text_of(
        admin.get(f"/admin/media/media/{pk}/change/")
    )
    row = Media.history.filter(id=pk).latest("history_id")
    assert row.history_change_reason == "hold placed: case 21" and row.history_user.username == "ada"

    released = admin.post(f"/admin/media/media/{pk}/hold/", {"_release": "1"})

    assert released.status_code == 302 and api.get("/api/media/kept").json()["hold"] is None
    assert Media.history.filter(id=pk).latest("history_id").history_change_reason == "hold released"


def test_a_hold_in_the_past_or_without_a_reason_is_refused_with_the_form_shown(api, id_types):
    admin = staff("ada", "admins")
    create_media(api, "kept")
    pk = Media.objects.get(pid="kept").pk
    past = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    for body, said in [
        ({"reason": "x", "until": past}, "in the past"),
        ({"reason": ""}, "This field is required"),
    ]:
        answer = admin.post(f"/admin/media/media/{pk}/hold/", {**body, "_place": "1"})
        assert answer.status_code in {200, 302}
        if answer.status_code == 302:  # the service refused it: the message is on the next page
            answer = admin.get(answer["Location"])
        assert said in text_of(answer), text_of(answer)
        assert api.get("/api/media/kept").json()["hold"] is None


def test_writers_and_readers_see_the_hold_but_cannot_change_it(api, id_types):
    writer = staff("wanda", "writers")
    reader = staff("rita", "readers")
    create_media(api, "kept")
    assert api.post("/api/media/kept/hold", {"reason": "audit"}).status_code == 200
    pk = Media.objects.get(pid="kept").pk
    for client in (writer, reader):
        page = client.get(f"/admin/media/media/{pk}/change/")
        assert "On hold until released: audit." in text_of(page) and "/hold/" not in page.content.decode()
        assert client.get(f"/admin/media/media/{pk}/hold/").status_code == 403
        assert client.post(f"/admin/media/media/{pk}/hold/", {"_release": "1"}).status_code == 403
    assert api.get("/api/media/kept").json()["hold"]["reason"] == "audit"
