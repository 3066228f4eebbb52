"""``manage.py search_index``: metadata path and identifier type indexes, recorded for search and
listed in the admin."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from media.models import SearchIndex
from media.search.indexes import identifier_index_name, identifier_indexed, index_name, indexed_paths
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


RUN_VALUES = [
    "run-12-4",
    "run-12x-4y",
    "run-1-2",
    "Run-12-4",
    "50%_off",
    "50x_off",
    "a\\b-1",
    "été-1",
    "run-12",
]
IDENTIFIER_SEARCHES = {
    "run-12*": ["i0", "i1", "i8"],
    "run-12*-4*": ["i0", "i1"],
    "run-1?-4": ["i0"],
    "50%*": ["i4"],  # % and _ are plain characters of the value
    "50?_off": ["i4", "i5"],
    "a\\\\b*": ["i6"],
    "été*": ["i7"],
    "*-4": ["i0", "i3"],  # no literal prefix: the trigram pre-filter, index or not
    "run-12": ["i8"],
}


def test_identifier_type_index_gives_the_same_answers(api, id_types):
    """``add-identifier`` on PostgreSQL indexes one type's values and search uses it for a literal
    prefix; every answer stays the same. SQLite keeps no such index and says so."""
    assert api.post("/api/identifier", {"name": "run", "pattern": ""}).status_code == 200
    bodies = [media_body(f"i{n}", identifiers={"run": value}) for n, value in enumerate(RUN_VALUES)]
    bodies.append(media_body("i9", identifiers={"doi": "10.5555/run-12-4"}))
    created = api.post("/api/media/create", bodies)
    assert created.status_code == 200, created.content

    def answers() -> dict[str, list[str]]:
        return {
            pattern: [
                m["pid"] for m in api.post("/api/media/search", {"identifiers": {"run": pattern}}).json()
            ]
            for pattern in IDENTIFIER_SEARCHES
        }

    assert answers() == IDENTIFIER_SEARCHES
    said = run("add-identifier", "run")
    if connection.vendor != "postgresql":
        assert "identifier indexes are for PostgreSQL" in said and "nothing was done" in said
        assert not SearchIndex.objects.exists()
        return
    name = identifier_index_name("run")
    assert said == f"indexed identifier type run ({name})\n" and name in index_names()
    assert run("list").splitlines() == [f"run\tidentifier\t{name}"]
    assert identifier_indexed("run", indexed_paths()) and not identifier_indexed("doi", indexed_paths())
    assert answers() == IDENTIFIER_SEARCHES

    assert run("drop-identifier", "run") == "dropped the index of identifier type run\n"
    assert not SearchIndex.objects.exists() and name not in index_names()
    assert answers() == IDENTIFIER_SEARCHES
    with pytest.raises(CommandError, match="has no search index"):
        run("drop-identifier", "run")


@pytest.mark.parametrize("name", ["doi'; DROP TABLE media_media; --", "_x", "a b"])
def test_identifier_types_that_cannot_be_written_into_sql_are_refused(name):
    with pytest.raises(CommandError, match="not an identifier type name"):
        run("add-identifier", name)
    assert not SearchIndex.objects.exists()
