"""Search plans on PostgreSQL stay on their indexes whatever ``ANALYZE`` samples (issue 14).

Regression: the pid infix wildcard and a pid prefix in the default order were answered by walking
the primary key and filtering every row when one ANALYZE sample made the planner guess that matches
were common and evenly spread (2 of 7 samples at a million rows: 0.4-0.6 s instead of 30 ms).
Searches with an indexed filter now collect their candidates in a MATERIALIZED CTE first
(media/search/pages.py), so the only choice left is index or full scan. This loads rows with
``generate_series`` (enough for the planner's choices to matter), runs ANALYZE several times and
reads each plan with ``EXPLAIN (FORMAT JSON)``.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.db import connection

from media import search
from media.models import Media, SearchIndex
from media.schemas import MediaSearch
from media.search.indexes import indexed_paths
from media.search.rows import rows_sql
from tests.conftest import create_media

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans of PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]

ROWS = 60_000
ROUNDS = 4

LOAD = f"""
INSERT INTO media_media (pid, pid_type, store_config_id, store_key, store_status, identifiers, metadata,
                         tag_list, size, checksum, etag, content_type, created, updated, mark, version)
SELECT 'D' || to_char(t, 'YYYYMMDD"T"HH24MISS') || '_IFCB' || (100 + i % 37), 'bin', %s, 'k/' || i, 'READY',
       jsonb_build_object('local', 'run-' || (i % 5000) || '-' || i, 'doi', '10.5555/ifcb.' || i),
       jsonb_build_object('station', i % 50, 'cruise', 'EN' || (600 + i % 2000),
                          'sample', jsonb_build_object('depth', (i * 7919 % 50000) / 100.0),
                          'flags', CASE WHEN i % 97 = 0 THEN '["ringing"]'::jsonb ELSE '["ok"]'::jsonb END),
       '[]', 1, '', '', '', t, t, i, 1
FROM generate_series(1, {ROWS}) AS i,
     LATERAL (SELECT timestamptz '2016-01-01 00:00:00+00' + i * interval '300 seconds' AS t) AS moment
"""

# Each media carries one of 200 tags, and a third of them also "frequent": in taggit's rows and in
# tag_list alike, as media/tags.py keeps them.
TAGS = """
UPDATE media_media SET tag_list = CASE WHEN id % 3 = 0
    THEN jsonb_build_array('frequent', 'tag' || (id * 31 % 200))
    ELSE jsonb_build_array('tag' || (id * 31 % 200)) END;
INSERT INTO taggit_tag (name, slug) SELECT 'tag' || n, 'tag' || n FROM generate_series(0, 199) AS n;
INSERT INTO taggit_tag (name, slug) VALUES ('frequent', 'frequent');
INSERT INTO media_taggedmedia (content_object_id, tag_id)
SELECT m.id, tag.id FROM media_media AS m JOIN taggit_tag AS tag ON m.tag_list ? tag.name;
"""

# Every shape an index serves, with the indexes that may answer it.
CASES = {
    "pid prefix": ({"pid": "D201611*", "limit": 100}, {"media_pid_c", "media_pid_trgm"}),
    "pid infix": ({"pid": "*T1530*_IFCB11?"}, {"media_pid_trgm"}),
    "identifier wildcard": ({"identifier": "10.5555/ifcb.1234?"}, {"media_identifier_values_trgm"}),
    "identifiers exact": ({"identifiers": {"doi": "10.5555/ifcb.4242"}}, {"media_identifiers_gin"}),
    "identifier type prefix": ({"identifiers": {"doi": "10.5555/ifcb.4242*"}}, {"media_id_"}),
    "any tag": ({"tags": ["tag7", "tag8"], "limit": 100}, {"media_tag_list_gin"}),
    "all tags": ({"tags_all": ["frequent", "tag7"], "limit": 100}, {"media_tag_list_gin"}),
    # Tags with other filters (issue 34): containment in tag_list, so the tag index and the other
    # filter's index meet in one bitmap (or the more selective one alone), never taggit's rows.
    "common tag + metadata eq": (
        {"tags": ["frequent"], "metadata": [{"path": "cruise", "op": "eq", "value": "EN1234"}], "limit": 100},
        {"media_tag_list_gin", "media_metadata_gin"},
    ),
    "all tags + metadata eq + list item": (
        {
            "tags_all": ["frequent", "tag7"],
            "metadata": [
                {"path": "station", "op": "eq", "value": 7},
                {"path": "flags", "op": "contains", "value": "ok"},
            ],
            "limit": 100,
        },
        {"media_tag_list_gin", "media_metadata_gin"},
    ),
    "identifier wildcard + common tag": (
        {"identifier": "10.5555/ifcb.77*", "tags": ["frequent"], "limit": 100},
        {"media_identifier_values_trgm", "media_pid_trgm", "media_tag_list_gin"},
    ),
    "identifier type + common tag": (
        {"identifiers": {"doi": "10.5555/ifcb.3*"}, "tags": ["frequent"], "limit": 100},
        {"media_id_", "media_tag_list_gin"},
    ),
    "pid prefix + tag + nested eq": (
        {
            "pid": "D2016*",
            "tags": ["tag5"],
            "metadata": [{"path": "sample.depth", "op": "eq", "value": 1.5}],
            "limit": 100,
        },
        {"media_pid_c", "media_tag_list_gin", "media_metadata_gin"},
    ),
    "metadata eq": (
        {"metadata": [{"path": "cruise", "op": "eq", "value": "EN1234"}]},
        {"media_metadata_gin"},
    ),
    "metadata contains": (
        {"metadata": [{"path": "flags", "op": "contains", "value": "ringing"}], "limit": 100},
        {"media_metadata_gin"},
    ),
    "indexed range": (
        {
            "metadata": [
                {"path": "sample.depth", "op": "gte", "value": 100},
                {"path": "sample.depth", "op": "lt", "value": 100.5},
            ]
        },
        {"media_md_number_"},
    ),
}


@contextmanager
def indexes_built_after():
    """Rows loaded in the block, the media table's indexes built after it: the block's inserts write
    no entries into them (with GIN fast update off, migration 0013, loading 60,000 rows entry by
    entry took 2-3 minutes here; built afterwards, seconds). Every index of the media table that
    backs no constraint is dropped before the block and created again from its own definition
    after it (also when the block fails), so the plans read the same indexes, built whole rather
    than grown row by row (denser: an index scan looks a little cheaper to the planner than on a
    site's grown ones). The tag table's B-trees stay and grow as on a site."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'media_media'::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        )
        definitions = cursor.fetchall()
        for name, _ in definitions:
            cursor.execute(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for _, definition in definitions:
                cursor.execute(definition)


def nodes(plan: dict, inside_cte: bool = False):
    """Every node of a JSON plan, with whether it lies under the candidates CTE."""
    inside_cte = inside_cte or plan.get("Subplan Name") == "CTE candidates"
    yield plan, inside_cte
    for child in plan.get("Plans", []):
        yield from nodes(child, inside_cte)


def explain(sql: str, params) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        document = cursor.fetchone()[0]
    return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]


def check(name: str, sql: str, params, wanted: set[str]) -> None:
    found = list(nodes(explain(sql, params)))
    # Tags are containment in tag_list on PostgreSQL (only a search by one tag alone reads taggit's).
    assert not [n for n, _ in found if n.get("Relation Name") == "media_taggedmedia"], name
    media_scans = [n for n, _ in found if n.get("Relation Name") == "media_media"]
    assert not [n for n in media_scans if n["Node Type"] == "Seq Scan"], (name, media_scans)
    # A filtered walk of the primary key with no bound (no Index Cond): the plan that flipped. The
    # bounded walk's lookups (id = w.id) and its window (no filter, under a LIMIT) are fine.
    walks = [
        n
        for n in media_scans
        if n.get("Index Name") == "media_media_pkey" and "Filter" in n and "Index Cond" not in n
    ]
    assert not walks, f"{name}: walks the primary key filtering rows"
    used = {n.get("Index Name", "") for n, _ in found}
    assert any(index.startswith(prefix) for index in used for prefix in wanted), (name, used)


@pytest.fixture
def loaded(db, id_types):
    from stores.models import StoreConfig

    store = StoreConfig.objects.create(type="DictStore", bucket="plans")
    with indexes_built_after(), connection.cursor() as cursor:
        cursor.execute(LOAD.replace("%", "%%").replace("%%s", "%s"), [store.pk])
        cursor.execute(TAGS)
    call_command("search_index", "add", "sample.depth", "--as", "number", verbosity=0)
    call_command("search_index", "add-identifier", "doi", verbosity=0)
    assert Media.objects.count() == ROWS and SearchIndex.objects.count() == 2


def test_indexed_searches_keep_their_index_plans_after_every_analyze(loaded):
    paths = indexed_paths()
    for round_no in range(ROUNDS):
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE media_media")
            cursor.execute("ANALYZE media_taggedmedia")
        for name, (body, wanted) in CASES.items():
            filters = MediaSearch.model_validate(body)
            plan = search.search_plan(filters, paths)
            assert plan.candidates_first, name
            conditions = search.conditions_for(filters, paths)
            ids_sql, params = search.page_ids_sql(
                conditions,
                order_by=None,
                limit=filters.limit + 1,
                offset=0,
                candidates_first=True,
                walk=plan.walk,
            )
            check(f"{name} (page, round {round_no})", rows_sql(ids_sql, None), params, wanted)
            check(
                f"{name} (count, round {round_no})",
                *search.count_sql(conditions, 10_001, candidates_first=True),
                wanted,
            )


def test_indexed_range_is_exact_and_unindexed_range_says_seqscan(loaded, api, settings):
    """The indexed SQL gives the same matches as the generic one, and the header tells a scan."""
    body = {
        "metadata": [
            {"path": "sample.depth", "op": "gte", "value": 100},
            {"path": "sample.depth", "op": "lt", "value": 101},
        ]
    }
    settings.MEDIASTORE_SEARCH_SEQSCAN_ROWS = ROWS // 2
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE media_media")
    indexed = api.post("/api/media/search", body)
    assert "X-Search-Plan" not in indexed.headers
    expected = sorted(m.pk for m in Media.objects.all() if 100 <= m.metadata["sample"]["depth"] < 101)
    assert expected and [m["pk"] for m in indexed.json()] == expected
    call_command("search_index", "drop", "sample.depth", verbosity=0)
    scanned = api.post("/api/media/search", body)
    assert scanned.headers["X-Search-Plan"] == "seqscan"
    assert scanned.json() == indexed.json()


def generic_plan(sql: str, params: list) -> dict:
    """The plan PostgreSQL keeps for ``sql`` once prepared (the generic plan, whatever the values),
    run with ``params`` (EXPLAIN ANALYZE of the prepared statement)."""
    numbered = sql
    for n in range(1, len(params) + 1):
        numbered = numbered.replace("%s", f"${n}", 1)
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        try:
            cursor.execute(f"PREPARE one_tag_page AS {numbered}")
            try:
                cursor.execute(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE one_tag_page({', '.join(['%s'] * len(params))})",
                    params,
                )
                document = cursor.fetchone()[0]
            finally:
                cursor.execute("DEALLOCATE one_tag_page")
        finally:
            cursor.execute("RESET plan_cache_mode")
    return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]


def rows_read(ids_sql: str, params: list) -> list[tuple[str, str | None, int]]:
    """Each read of the media or tag table in the prepared (generic) plan of a page, run: node
    type, index, and the rows it read (returned and filtered out, over all its loops)."""
    found = [node for node, _ in nodes(generic_plan(rows_sql(ids_sql, None), params))]
    return [
        (
            n["Node Type"],
            n.get("Index Name"),
            (n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"],
        )
        for n in found
        if n.get("Relation Name") in ("media_media", "media_taggedmedia")
    ]


def test_a_one_tag_page_reads_only_its_rows_from_the_tag_index_whatever_the_tag(loaded):
    """Issue 34: a search whose only filter is one tag is prepared (one plan for every tag), so that
    plan must suit a tag on a third of the media and one on a handful: the tag index read in id
    order, stopping when the page is full, never every match sorted."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO taggit_tag (name, slug) VALUES ('common', 'common'), ('rare', 'rare')")
        cursor.execute(
            "INSERT INTO media_taggedmedia (content_object_id, tag_id) "
            "SELECT m.id, t.id FROM media_media m, taggit_tag t "
            "WHERE (t.name = 'common' AND m.id % 3 = 0) OR (t.name = 'rare' AND m.id % 9973 = 0)"
        )
    for round_no, limit in enumerate([100, 1000] * (ROUNDS // 2)):  # 1000: the default page
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE media_taggedmedia")
            cursor.execute("ANALYZE media_media")
        for tag in ("common", "rare", "tag7", "no-such-tag"):
            filters = MediaSearch.model_validate({"tags": [tag], "limit": limit})
            conditions = search.conditions_for(filters)
            assert conditions.one_tag == tag
            ids_sql, params = search.page_ids_sql(conditions, order_by=None, limit=limit + 1, offset=0)
            found = [node for node, _ in nodes(generic_plan(rows_sql(ids_sql, None), params))]
            tag_reads = [n for n in found if n.get("Relation Name") == "media_taggedmedia"]
            assert tag_reads, (tag, round_no)
            for node in tag_reads:
                assert node["Node Type"] in ("Index Scan", "Index Only Scan"), (
                    tag,
                    round_no,
                    node["Node Type"],
                )
                assert node["Index Name"] == "media_tagged_tag_object", (tag, round_no, node["Index Name"])
                assert node["Actual Rows"] <= limit + 1, (tag, round_no, node["Actual Rows"])
            media_scans = [n for n in found if n.get("Relation Name") == "media_media"]
            assert not [n for n in media_scans if n["Node Type"] == "Seq Scan"], (tag, round_no)


@pytest.mark.parametrize("rare", ["m.id %% 9973 = 0", "m.id > (SELECT max(id) - 10 FROM media_media)"])
def test_a_one_tag_page_stays_on_the_tag_index_when_there_are_few_tags(db, id_types, rare):
    """A site with a handful of tags (one on every media, one on half, one on a few): the tag is
    named inside the statement, so the planner knows only 1 / (number of tags) of its frequency,
    for every tag alike. That estimate must not turn the page of a rare or unknown tag into a walk
    of every media (the primary key merged with the tag index, or the media column's index of the
    tag rows filtered by tag): a page reads its rows and those before them, whatever the tag."""
    from stores.models import StoreConfig

    store = StoreConfig.objects.create(type="DictStore", bucket="plans")
    with indexes_built_after(), connection.cursor() as cursor:
        cursor.execute(LOAD.replace("%", "%%").replace("%%s", "%s"), [store.pk])
        cursor.execute(
            "INSERT INTO taggit_tag (name, slug) VALUES ('all', 'all'), ('half', 'half'), ('rare', 'rare')"
        )
        cursor.execute(
            "INSERT INTO media_taggedmedia (content_object_id, tag_id) "
            "SELECT m.id, t.id FROM media_media m, taggit_tag t WHERE t.name = 'all' "
            f"OR (t.name = 'half' AND m.id %% 2 = 0) OR (t.name = 'rare' AND {rare})",
            [],
        )
    limit = 100
    for round_no in range(ROUNDS):
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE media_taggedmedia")
            cursor.execute("ANALYZE media_media")
        for tag in ("all", "half", "rare", "no-such-tag"):
            conditions = search.conditions_for(MediaSearch.model_validate({"tags": [tag], "limit": limit}))
            ids_sql, params = search.page_ids_sql(conditions, order_by=None, limit=limit + 1, offset=0)
            read = rows_read(ids_sql, params)
            # "half": a page of 101 holds every other media of 202 (read through the primary key).
            assert max(rows for *_, rows in read) <= 2 * (limit + 1), (tag, round_no, read)


@pytest.mark.parametrize("tags", [3, 203])
def test_a_one_tag_page_reads_only_its_rows_whatever_the_number_of_tags_and_the_page(db, id_types, tags):
    """The tag is named inside the statement, so the planner estimates every tag at 1/(number of
    tags) of the tag rows, prepared or not. That estimate must not change what a page reads: on a
    site with three tags (one on every media, one on half, one on 6 of 60,000) or with 200 more, a
    page of 100 or of 1000 (the default), after an offset or after a cursor, reads its rows and
    those skipped before them, for a common, a rare and an unknown tag alike (no walk of every
    media through the primary key, no read and sort of every match)."""
    from stores.models import StoreConfig

    store = StoreConfig.objects.create(type="DictStore", bucket="plans")
    with indexes_built_after(), connection.cursor() as cursor:
        cursor.execute(LOAD.replace("%", "%%").replace("%%s", "%s"), [store.pk])
        if tags > 3:
            cursor.execute(TAGS)
        cursor.execute(
            "INSERT INTO taggit_tag (name, slug) VALUES ('all', 'all'), ('half', 'half'), ('rare', 'rare')"
        )
        cursor.execute(
            "INSERT INTO media_taggedmedia (content_object_id, tag_id) "
            "SELECT m.id, t.id FROM media_media m, taggit_tag t WHERE t.name = 'all' "
            "OR (t.name = 'half' AND m.id % 2 = 0) OR (t.name = 'rare' AND m.id % 9973 = 0)"
        )
        cursor.execute("SELECT min(id) FROM media_media")
        middle = cursor.fetchone()[0] + ROWS // 2
    pages = [(100, 0, None), (1000, 0, None), (100, 500, None), (100, 0, [middle])]
    too_many = []
    for round_no in range(ROUNDS):
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE media_taggedmedia")
            cursor.execute("ANALYZE media_media")
        for tag in ("all", "half", "rare", "no-such-tag"):
            for limit, offset, key in pages:
                conditions = search.conditions_for(MediaSearch.model_validate({"tags": [tag]}))
                if key is not None:
                    conditions = search.filters.after_key(conditions, None, key)
                ids_sql, params = search.page_ids_sql(
                    conditions, order_by=None, limit=limit + 1, offset=offset, key=key
                )
                read = rows_read(ids_sql, params)
                # A page of "half" spans twice its media, and the tag rows of three tags beside them.
                most = max(read, key=lambda node: node[2])
                if most[2] > 4 * (offset + limit + 1):
                    too_many.append((tag, limit, offset, key is not None, round_no, *most))
    assert not too_many, too_many


def test_every_gin_index_of_the_media_writes_its_entries_at_once(db):
    """A GIN index's pending list (fast update) is read by every search through it, and grew with
    every insert until VACUUM: bulk create's check for taken pids went from 67 to 400-700 ms a call
    after 4,000 media in a fresh database. Migration 0013 turns it off; a GIN index added later
    must too."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, coalesce(c.reloptions, '{}') FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
            "WHERE i.indrelid = 'media_media'::regclass AND a.amname = 'gin'"
        )
        found = dict(cursor.fetchall())
    assert {"media_pid_trgm", "media_metadata_gin", "media_tag_list_gin"} <= found.keys()
    assert {name: options for name, options in found.items() if "fastupdate=off" not in options} == {}


def test_bulk_create_looks_taken_pids_up_on_the_pid_b_tree(db, id_types):
    """Bulk create's check for taken pids (``media.pids.with_pids``: ``pid COLLATE "C" IN (...)``)
    is answered by the ``media_pid_c`` B-tree whatever ANALYZE samples: a plain ``pid IN (...)``
    also matches the trigram GIN index's equality, which the planner chose after a few thousand
    new media (400-700 ms a call while its pending list grew; docs/performance.md, "Bulk create")."""
    from media.pids import with_pids
    from stores.models import StoreConfig

    store = StoreConfig.objects.create(type="DictStore", bucket="pid-plans")
    with indexes_built_after(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO media_media (pid, pid_type, store_config_id, store_key, store_status, identifiers, "
            "metadata, tag_list, size, checksum, etag, content_type, created, updated, mark, version) "
            "SELECT 'bulk-' || i, 'bin', %s, 'k/' || i, 'PENDING', '{}', '{}', '[]', NULL, '', '', '', "
            "now(), now(), i, 1 FROM generate_series(1, 40000) AS i",
            [store.pk],
        )
    pids = {f"bulk-{i}" for i in range(1, 40000, 800)} | {f"new-{i}" for i in range(50)}  # a call's 100
    query = with_pids(Media.objects.all(), pids).values_list("pid", "expires_at", "hold_since", "hold_until")
    assert len(query) == 50
    sql, params = query.query.sql_with_params()
    for _ in range(ROUNDS):
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE media_media")
        found = [n for n, _ in nodes(explain(sql, params))]
        assert not [n for n in found if n["Node Type"] == "Seq Scan"], found
        assert {n["Index Name"] for n in found if "Index Name" in n} == {"media_pid_c"}, found


def test_every_lookup_of_many_pids_goes_through_the_pid_b_tree(db, api, id_types):
    """Ingest's check for stored pids, ``POST /api/media/read`` and renames look many pids up as
    bulk create does (``with_pids``), not as a plain ``pid IN (...)`` the trigram index may answer."""
    from django.test.utils import CaptureQueriesContext

    from media.selectors import media_read_many, media_stored

    create_media(api, "many-1")
    with CaptureQueriesContext(connection) as captured:
        assert list(media_stored(["many-1", "many-2"])) == ["many-1"]
        assert [m.pid for m in media_read_many(["many-2", "many-1"])] == ["many-1"]
        renamed = api.patch("/api/media/update", {"pids": ["many-1"], "medias": [{"new_pid": "many-3"}]})
    assert renamed.status_code == 200 and renamed.json()["successes"] == ["many-1"]
    lookups = [q["sql"] for q in captured.captured_queries if '"pid" COLLATE "C" IN' in q["sql"]]
    assert len(lookups) >= 3, [q["sql"] for q in captured.captured_queries]
    assert not [q["sql"] for q in captured.captured_queries if '"media_media"."pid" IN' in q["sql"]]
