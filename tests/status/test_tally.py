"""PostgreSQL keeps running totals of the media (status.models.MediaTally, by triggers); they must
always equal a GROUP BY over the media themselves, through every kind of write, and compaction
must not change them."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from media.models import Media
from status import selectors
from status.models import MediaTally
from tests.conftest import media_body

pytestmark = pytest.mark.django_db

RAM = {"type": "DictStore", "bucket": "ram"}
OTHER = {"type": "DictStore", "bucket": "other"}


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the tally is kept by PostgreSQL triggers; SQLite counts the media directly")


def live() -> set[tuple]:
    rows = (
        Media.objects.order_by()
        .values_list("store_config_id", "store_status", "pid_type_id", TruncDate("created"))
        .annotate(n=Count("pk"), b=Sum("size"))
    )
    return {(s, st, t, d, n, b or 0) for s, st, t, d, n, b in rows}


def tallied() -> set[tuple]:
    rows = (
        MediaTally.objects.order_by()
        .values_list("store_config_id", "store_status", "pid_type", "day")
        .annotate(n=Sum("count"), b=Sum("bytes"))
        .filter(n__gt=0)
    )
    return set(rows)


def test_tally_follows_every_kind_of_write(api, id_types):
    def upload(pid, size, store=RAM):
        body = {
            "mediadata": media_body(pid, store_config=store),
            "base64": base64.b64encode(b"x" * size).decode(),
        }
        assert api.post("/api/upload", body).status_code == 200

    for n in range(5):
        upload(f"u{n}", 10 * (n + 1))
    assert api.post("/api/media/create", [media_body(f"b{n}") for n in range(4)]).status_code == 200
    assert tallied() == live()

    assert api.put_content("b0", b"y" * 7).status_code == 200  # PENDING -> READY with a size
    assert api.patch("/api/media/u1", {"store_config": OTHER}).status_code == 204  # moved
    assert api.patch("/api/media/u2", {"pid_type": "doi", "new_pid": "10.1234/x"}).status_code == 204
    assert api.put("/api/media/update/metadata", [{"pid": "u3", "data": {"a": 1}}]).status_code == 200
    assert api.delete("/api/media/u4").status_code == 204
    assert api.post("/api/media/delete", ["b1", "b2"]).status_code == 200
    Media.objects.filter(pid="b3").update(created=timezone.now() - timedelta(days=3))
    assert tallied() == live()

    stats = selectors.stats()
    assert stats["media"] == Media.objects.count()
    assert stats["bytes"] == sum(Media.objects.filter(store_status="READY").values_list("size", flat=True))


def test_compaction_keeps_the_totals_and_folds_the_rows(api, id_types):
    for n in range(6):
        assert api.post("/api/media", media_body(f"m{n}")).status_code == 200
    assert api.delete("/api/media/m0").status_code == 204
    before = tallied()
    assert MediaTally.objects.filter(compacted=False).count() >= 7

    assert selectors.compact_tally(threshold=1000) is False  # not yet worth it
    assert selectors.compact_tally(threshold=0) is True

    assert tallied() == before == live()
    assert MediaTally.objects.filter(compacted=False).count() == 0
    assert MediaTally.objects.count() == len(before)


def test_a_fixity_check_adds_no_tally_row(api, id_types):
    assert api.post("/api/media", media_body("m")).status_code == 200
    rows = MediaTally.objects.count()
    Media.objects.filter(pid="m").update(verified_at=timezone.now(), verify_ok=True)
    assert MediaTally.objects.count() == rows
