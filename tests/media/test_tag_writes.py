"""Tag writes whose statements do not grow with the number of tags."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from taggit.models import Tag

from media.models import Media, TaggedMedia
from tests.conftest import media_body

pytestmark = pytest.mark.django_db


def tags(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def stored_tags(pid: str) -> list[str]:
    media = Media.objects.get(pid=pid)
    rows = sorted(TaggedMedia.objects.filter(content_object=media).values_list("tag__name", flat=True))
    assert rows == media.tag_list  # taggit's rows follow the list
    return media.tag_list


# --- statements -------------------------------------------------------------------------------


def statements(call) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = call()
    assert response.status_code == 200, response.content[:500]
    assert "failures" not in response.json() or response.json()["failures"] == []
    return len(ctx.captured_queries)


WRITES = {
    "create": lambda api, pid, t: api.post("/api/media/create", [media_body(pid, tags=t)]),
    "replace": lambda api, pid, t: api.put("/api/media/update/tags", [{"pid": pid, "tags": t}]),
    "add": lambda api, pid, t: api.patch("/api/media/update/tags", [{"pid": pid, "tags": t}]),
}


@pytest.mark.parametrize("write", WRITES)
def test_tag_writes_cost_the_same_statements_for_5_and_500_tags(api, id_types, write):
    """Regression: each new tag was created with statements of its own, and on SQLite the links were
    inserted in batches of 999 parameters."""
    assert api.post("/api/media", media_body("warm", tags=["shared"])).status_code == 200  # the store
    counts = []
    for n in (5, 500):
        pid = f"m{n}"
        if write != "create":
            assert api.post("/api/media", media_body(pid, tags=["old"])).status_code == 200
        # New tags (created here), a tag other media have, and names whose slugs collide.
        names = [*tags(n, f"new{n}-"), "shared", f"Slug {n}", f"slug-{n}"]
        counts.append(statements(lambda pid=pid, names=names: WRITES[write](api, pid, names)))
        expected = sorted({*names, "old"} if write == "add" else names)
        assert stored_tags(pid) == expected
    assert counts[0] == counts[1], counts
    slugs = dict(Tag.objects.filter(name__in=["Slug 5", "slug-5"]).values_list("name", "slug"))
    assert sorted(slugs.values()) == ["slug-5", "slug-5_1"]


def test_a_slug_taken_unseen_falls_back_to_taggits_own_choice(api, id_types):
    """The one query for taken slugs sees plain slugs only; a suffixed one taken too (`foo_1`) makes
    the insert skip that tag, which is then created as taggit would (`foo_2`)."""
    Tag.objects.create(name="foo")
    Tag.objects.create(name="other", slug="foo_1")
    assert api.post("/api/media", media_body("m1", tags=["Foo", "bar"])).status_code == 200
    assert stored_tags("m1") == ["Foo", "bar"]
    assert Tag.objects.get(name="Foo").slug == "foo_2"
