"""``manage.py search_index``: metadata path indexes, recorded for search and listed in the admin."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from media.models import SearchIndex
from media.search.indexes import index_name
from tests.conftest import media_body

pytestmark = pytest.mark.django_db(transaction=True)  # CREATE INDEX CONCURRENTLY needs autocommit


def run(*args: str) -> str:
    out = StringIO()
    call_command("search_index", *args, stdout=out)
    return out.getvalue()


def index_names() -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "media_media")
    return {name for name, info in constraints.items() if info["index"]}


def test_add_list_drop_and_search_uses_the_same_answers(api, id_types):
    depths = [0.5, 3, 7.25, 12, "deep", None]
    bodies = [media_body(f"m{i}", metadata={"sample": {"depth": d}}) for i, d in enumerate(depths)]
    assert api.post("/api/media/create", bodies).status_code == 200
    body = {
        "metadata": [
            {"path": "sample.depth", "op": "gt", "value": 1},
            {"path": "sample.depth", "op": "lte", "value": 12},
        ]
    }
    texts = {"metadata": [{"path": "sample.depth", "op": "gte", "value": "d"}]}
    before = [m["pid"] for m in api.post("/api/media/search", body).json()]
    before_text = [m["pid"] for m in api.post("/api/media/search", texts).json()]
    assert before == ["m1", "m2", "m3"] and before_text == ["m4"]

    assert "indexed sample.depth as number" in run("add", "sample.depth", "--as", "number")
    run("add", "sample.depth", "--as", "text")
    assert {index_name(("sample", "depth"), kind) for kind in ("number", "text")} <= index_names()
    assert run("list").splitlines() == [
        f"sample.depth\tnumber\t{index_name(('sample', 'depth'), 'number')}",
        f"sample.depth\ttext\t{index_name(('sample', 'depth'), 'text')}",
    ]
    assert [m["pid"] for m in api.post("/api/media/search", body).json()] == before
    assert [m["pid"] for m in api.post("/api/media/search", texts).json()] == before_text

    run("drop", "sample.depth")
    assert not SearchIndex.objects.exists()
    assert not {index_name(("sample", "depth"), kind) for kind in ("number", "text")} & index_names()
    with pytest.raises(CommandError, match="has no search index"):
        run("drop", "sample.depth")


@pytest.mark.parametrize("path", ["a..b", "a.0", "x'; DROP TABLE media_media; --", "a.b c"])
def test_paths_that_cannot_be_written_into_sql_are_refused(path):
    with pytest.raises(CommandError, match="indexed path"):
        run("add", path, "--as", "number")
    assert not SearchIndex.objects.exists()


def test_admin_lists_indexed_paths_read_only(admin_client):
    run("add", "sample.depth", "--as", "number")
    page = admin_client.get("/admin/media/searchindex/")
    assert page.status_code == 200 and b"sample.depth" in page.content
    assert admin_client.get("/admin/media/searchindex/add/").status_code == 403
