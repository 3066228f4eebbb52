"""Benchmark of media search on PostgreSQL (a script run by hand, not a test).

    python bench/search.py --rows 1000000            # load once (minutes), then measure
    python bench/search.py --rows 1000000            # again: reuses the loaded database
    python bench/search.py --rows 200000 --reload    # drop and load again

It creates its own database (``--db``, default ``mediastore_bench``; the name must contain "bench"),
migrates it up to 0002, loads N media with COPY (pids, identifiers, nested metadata, tags in
taggit's rows and in ``tag_list``), applies migration 0003 (the search indexes) and VACUUM ANALYZE,
then times each search ``--runs`` times and prints p50/p95 of:

- ``service``: ``media.search.media_search`` (the page query, the capped COUNT, model rows), and
- ``http``: the whole ``POST /api/media/search`` (or ``GET /api/media``) through Django's test
  client: token check, validation, the queries, JSON of every item;

plus the uncapped ``COUNT(*)`` that an exact ``X-Total-Count`` would cost, and the scan lines of
``EXPLAIN`` for the page and count queries. Connection settings: POSTGRES_HOST/PORT/USER/PASSWORD.
"""

# Over the ~400-line rule on purpose: a bench is read top to bottom as one script (data, load,
# cases, measures, targets); split, its parts would only be used here.
from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.postgres import django_on, ensure_bench_database  # noqa: E402

TAGS = [f"tag{i:03d}" for i in range(200)]
FLAGS = ["ok", "bubbles", "focus", "low_count", "high_count", "ringing", "flow", "debubbled"]
START = datetime(2016, 1, 1, tzinfo=UTC)
IFCB = range(100, 137)


# --- data -----------------------------------------------------------------------------------


def zipf_tags(rng: random.Random, weights: list[float]) -> list[str]:
    count = rng.choices([0, 1, 2, 3, 4], weights=[10, 25, 30, 20, 15])[0]
    return sorted(set(rng.choices(TAGS, weights=weights, k=count)))


def make_row(i: int, rng: random.Random, weights: list[float]) -> tuple:
    """One media: 70% IFCB bins (pid a bin id), 20% DOIs, 10% local sample ids."""
    when = START + timedelta(seconds=300 * i)
    inst = IFCB[i % len(IFCB)]
    bin_id = f"D{when:%Y%m%dT%H%M%S}_IFCB{inst}"
    kind = i % 10
    if kind < 7:
        pid, pid_type = bin_id, "bin"
        identifiers = {"local": f"run-{i % 5000}-{i}"}
        if i % 2:
            identifiers["doi"] = f"10.5555/ifcb.{i}"
    elif kind < 9:
        pid, pid_type = f"10.5555/ifcb.{i}", "doi"
        identifiers = {"bin": bin_id}
    else:
        pid, pid_type = f"sample-{rng.getrandbits(64):016x}-{i}", "local"
        identifiers = {}
    metadata = {
        "instrument": {"name": f"IFCB{inst}", "serial": inst, "firmware": f"v{i % 7}.{i % 3}"},
        "cruise": f"EN{600 + i % 2000}",
        "station": i % 50,
        "sample": {
            "depth": round(rng.uniform(0, 500), 2),
            "temperature": round(rng.uniform(-2, 30), 3),
            "volume_ml": round(rng.uniform(1, 5), 3),
            "time": when.isoformat(),
        },
        "quality": {"score": round(rng.random(), 4), "flags": rng.sample(FLAGS, rng.randint(0, 3))},
        "roi_count": rng.randint(0, 20000),
        "processed": bool(i % 3),
    }
    if i % 4 == 0:
        metadata["notes"] = rng.choice(["calm sea", "rough sea", "bloom", "cleaning", ""])
    tags = zipf_tags(rng, weights)
    return pid, pid_type, identifiers, metadata, tags, when


def load(rows: int, seed: int) -> None:
    """COPY ``rows`` media and their taggit rows; ids and marks are 1..rows."""
    from django.db import connection
    from taggit.models import Tag

    from identifiers.models import IdentifierType
    from stores.models import StoreConfig

    for name in ("bin", "doi", "local"):
        IdentifierType.objects.get_or_create(name=name)
    stores = [StoreConfig.objects.get_or_create(type="DictStore", bucket=f"bench{i}")[0].pk for i in range(3)]
    tag_ids = {t: Tag.objects.get_or_create(name=t, defaults={"slug": t})[0].pk for t in TAGS}
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(TAGS))]
    started = time.perf_counter()
    tagged: list[tuple[int, int, int]] = []
    connection.ensure_connection()
    raw = connection.connection  # the psycopg connection (autocommit), for COPY
    columns = (
        "id, pid, pid_type, store_config_id, store_key, store_status, identifiers, metadata, tag_list, "
        "size, checksum, etag, content_type, created, updated, mark, version"
    )
    with raw.cursor() as cur, cur.copy(f"COPY media_media ({columns}) FROM STDIN") as copy:
        for i in range(1, rows + 1):
            pid, pid_type, identifiers, metadata, tags, when = make_row(i, rng, weights)
            status = "READY" if i % 5 else "PENDING"
            copy.write_row(
                (
                    i,
                    pid,
                    pid_type,
                    stores[i % 3],
                    f"key/{i}",
                    status,
                    json.dumps(identifiers),
                    json.dumps(metadata),
                    json.dumps(tags),
                    1000 + i % 100000,
                    "",
                    "",
                    "",
                    when,
                    when + timedelta(days=i % 30),
                    i,
                    1,
                )
            )
            tagged += [(len(tagged) + n + 1, i, tag_ids[t]) for n, t in enumerate(tags)]
            if i % 200000 == 0:
                print(f"  {i} media ({time.perf_counter() - started:.0f} s)", flush=True)
    with (
        raw.cursor() as cur,
        cur.copy("COPY media_taggedmedia (id, content_object_id, tag_id) FROM STDIN") as copy,
    ):
        for row in tagged:
            copy.write_row(row)
    with raw.cursor() as cur:
        cur.execute("SELECT setval(pg_get_serial_sequence('media_media', 'id'), %s)", [rows])
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('media_taggedmedia', 'id'), %s)", [max(len(tagged), 1)]
        )
        cur.execute("SELECT setval('media_mark_seq', %s)", [rows])
    print(
        f"loaded {rows} media and {len(tagged)} tag rows in {time.perf_counter() - started:.0f} s", flush=True
    )


def reindex() -> None:
    """Apply migration 0003 again (after changing it): drop its indexes, create them, analyze."""
    from django.core.management import call_command
    from django.db import connection

    t = time.perf_counter()
    call_command("migrate", "media", "0002", verbosity=0)
    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    print(f"migration 0003 applied again in {time.perf_counter() - t:.0f} s", flush=True)


def prepare(db: str, rows: int, reload: bool, seed: int, again: bool) -> None:
    from django.core.management import call_command
    from django.db import connection

    fresh = ensure_bench_database(db, reload)
    django_on(db)
    if not fresh:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM media_media")
            have = cur.fetchone()[0]
        if have != rows:
            sys.exit(f"database {db} holds {have} media, not {rows}: run with --reload")
        call_command("migrate", verbosity=0)
        if again:
            reindex()
        return
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("migrate", "media", "0002", verbosity=0)  # load first, index after: much faster
    load(rows, seed)
    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migration 0003 (search indexes) on loaded data: {time.perf_counter() - t:.0f} s", flush=True)
    connection.ensure_connection()
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    print(f"ready in {time.perf_counter() - started:.0f} s", flush=True)


# --- measuring ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timed(call, runs: int) -> tuple[float, float]:
    call()  # warm-up
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples), percentile(samples, 0.95)


def explain(sql: str, params) -> list[str]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + sql, params)
        plan = [row[0] for row in cur.fetchall()]
    keep = (
        "Scan",
        "Join",
        "Loop",
        "Hash",
        "Bitmap",
        "Sort",
        "Limit",
        "Aggregate",
        "Gather",
        "Index Cond",
        "CTE",
    )
    return [line.rstrip() for line in plan if any(word in line for word in keep)]


def token() -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username="bench")
    user.is_superuser = user.is_staff = True  # every permission (the searches need view_media)
    user.set_password("bench-password-123")
    user.save()
    response = Client().post(
        "/api/login",
        json.dumps({"username": "bench", "password": "bench-password-123"}),
        content_type="application/json",
    )
    return response.json()["token"]


CASES = [
    ("pid prefix wildcard", {"pid": "D20230615*"}),
    ("pid infix wildcard", {"pid": "*T1530*_IFCB11?"}),
    ("identifier wildcard", {"identifier": "10.5555/ifcb.12345?"}),
    ("identifiers {bin: exact}", {"identifiers": {"bin": "D20200101T001500_IFCB103"}}),
    ("any tag (2 rare)", {"tags": ["tag150", "tag199"]}),
    ("any tag (1 common)", {"tags": ["tag002"]}),
    ("all tags (2 common)", {"tags_all": ["tag000", "tag001"]}),
    ("all tags (common+rare)", {"tags_all": ["tag000", "tag120"]}),
    ("metadata eq", {"metadata": [{"path": "cruise", "op": "eq", "value": "EN1234"}]}),
    (
        "metadata contains list item",
        {"metadata": [{"path": "quality.flags", "op": "contains", "value": "ringing"}]},
    ),
    ("metadata range (wide)", {"metadata": [{"path": "sample.depth", "op": "gte", "value": 250}]}),
    (
        "metadata range (narrow)",
        {
            "metadata": [
                {"path": "sample.depth", "op": "gte", "value": 100},
                {"path": "sample.depth", "op": "lt", "value": 100.5},
            ]
        },
    ),
    (
        "three filters",
        {"pid": "D2023*", "tags": ["tag010"], "metadata": [{"path": "station", "op": "eq", "value": 3}]},
    ),
    ("order_by -created, page 3", {"pid_type": "bin", "order_by": "-created", "limit": 100, "offset": 200}),
    ("pid prefix, 100 of 73k", {"pid": "D2023*", "limit": 100}),
    ("pid prefix, order_by pid", {"pid": "D2023*", "order_by": "pid", "limit": 100}),
    # Combinations tried from outside (issue 34): a wildcard inside an identifier value, a common
    # tag with a metadata equality, nested paths, identifier types with tags and metadata.
    ("identifier wildcard inside", {"identifier": "10.5555/*.1234?", "limit": 100}),
    ("identifier type, wildcard inside", {"identifiers": {"local": "run-12*-4*"}, "limit": 100}),
    (
        "common tag + metadata eq",
        {"tags": ["tag000"], "metadata": [{"path": "cruise", "op": "eq", "value": "EN1234"}], "limit": 100},
    ),
    (
        "pid prefix + tag + nested eq",
        {
            "pid": "D2017*",
            "tags": ["tag005"],
            "metadata": [{"path": "instrument.name", "op": "eq", "value": "IFCB110"}],
            "limit": 100,
        },
    ),
    (
        "all tags + nested eq + bool",
        {
            "tags_all": ["tag000", "tag003"],
            "metadata": [
                {"path": "instrument.serial", "op": "eq", "value": 121},
                {"path": "processed", "op": "eq", "value": True},
            ],
            "limit": 100,
        },
    ),
    (
        "identifier type + common tag",
        {"identifiers": {"doi": "10.5555/ifcb.3*"}, "tags": ["tag001"], "limit": 100},
    ),
    (
        "pid type + list item + eq",
        {
            "pid_type": "doi",
            "metadata": [
                {"path": "quality.flags", "op": "contains", "value": "focus"},
                {"path": "station", "op": "eq", "value": 7},
            ],
            "limit": 100,
        },
    ),
    # More of them (issue 34, identifier types with their own index): two and three filters.
    (
        "identifier type prefix + eq",
        {
            "identifiers": {"doi": "10.5555/ifcb.2*"},
            "metadata": [{"path": "station", "op": "eq", "value": 12}],
        },
    ),
    (
        "id type + tag + range",
        {
            "identifiers": {"local": "run-42*"},
            "tags": ["tag004"],
            "metadata": [{"path": "sample.depth", "op": "lt", "value": 100}],
            "limit": 100,
        },
    ),
    ("two identifier types", {"identifiers": {"doi": "10.5555/ifcb.1*", "local": "run-7*"}, "limit": 100}),
    ("pid type + identifier type", {"pid_type": "bin", "identifiers": {"local": "run-4996-*"}, "limit": 100}),
    (
        "common tag + nested eq + pid type",
        {
            "tags": ["tag000"],
            "pid_type": "doi",
            "metadata": [{"path": "instrument.serial", "op": "eq", "value": 101}],
            "limit": 100,
        },
    ),
    (
        "identifier wildcard + common tag",
        {"identifier": "10.5555/ifcb.77*", "tags": ["tag000"], "limit": 100},
    ),
]

#: Identifier types given their own index (``manage.py search_index add-identifier``) before measuring.
IDENTIFIER_INDEXES = ("doi", "local")


def sql_timer(sql: str, params):
    """Run ``sql`` and fetch every row: database time without Django models or JSON."""
    from django.db import connection

    def run() -> None:
        with connection.cursor() as cur:
            cur.execute(sql, params)
            cur.fetchall()

    return run


_MOMENT = re.compile(r"'\d{4}-\d\d-\d\d[ T][^']*'")


def plan_shape(sql: str, params) -> str:
    """The plan's nodes and indexes without costs: equal shapes mean the same plan (the moment of
    the expiry condition, a literal that changes at every call, is left out)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("EXPLAIN (COSTS OFF) " + sql, params)
        return _MOMENT.sub("'<now>'", "\n".join(row[0] for row in cur.fetchall()))


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE media_media")
        cur.execute("ANALYZE media_taggedmedia")


def page_count(sql: str, params) -> int | None:
    """The count a page's statement gave with its rows (``counted_rows_sql``), or None."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    return rows[0][-1] if rows else None


class Case:
    """One query of the bench: its SQL, and what was measured."""

    def __init__(self, name: str, body: dict) -> None:
        from django.conf import settings

        from media import search
        from media.schemas import MediaSearch
        from media.search.pages import counts_with_page
        from media.search.rows import counted_rows_sql, rows_sql

        self.name, self.body = name, body
        filters = MediaSearch.model_validate(body)
        page, plan = search.media_search(filters)
        conditions = search.conditions_for(filters)
        cap = settings.MEDIASTORE_SEARCH_COUNT_CAP + 1
        # As the service reads it: the page's statement counts the candidates it collected.
        with_count = counts_with_page(conditions, candidates_first=plan.candidates_first)
        ids_sql, params = search.page_ids_sql(
            conditions,
            order_by=filters.order_by,
            limit=filters.limit + 1,
            offset=filters.offset,
            candidates_first=plan.candidates_first,
            walk=plan.walk,
            count_cap=cap if with_count else None,
        )
        self.page_sql = ((counted_rows_sql if with_count else rows_sql)(ids_sql, filters.order_by), params)
        self.needs_count = page.has_next or (not page.items and filters.offset > 0)
        if self.needs_count and with_count:  # no COUNT statement when the page's own counted
            self.needs_count = page_count(*self.page_sql) is None
        self.count_sql = search.count_sql(conditions, cap, candidates_first=plan.candidates_first)
        self.filters, self.page, self.plan, self.conditions = filters, page, plan, conditions
        self.sql_page = self.sql_count = self.http = None
        self.rounds: list[float] = []
        self.shapes: set[str] = set()

    def sql_p50(self) -> float:
        return self.sql_page[0] + (self.sql_count[0] if self.sql_count else 0.0)


def identifier_indexes(wanted: bool) -> None:
    """Build (or drop) the identifier type indexes of ``IDENTIFIER_INDEXES``; kept between runs."""
    from django.core.management import call_command

    from media.models import SearchIndex
    from media.search.indexes import IDENTIFIER

    have = set(SearchIndex.objects.filter(kind=IDENTIFIER).values_list("path", flat=True))
    for type_name in IDENTIFIER_INDEXES:
        if wanted and type_name not in have:
            t = time.perf_counter()
            call_command("search_index", "add-identifier", type_name, verbosity=0)
            print(f"search_index add-identifier {type_name}: {time.perf_counter() - t:.0f} s", flush=True)
        elif not wanted and type_name in have:
            call_command("search_index", "drop-identifier", type_name, verbosity=0)


def identifier_index_ab(runs: int) -> None:
    """Each case with an identifier type filter before and after ``add-identifier``, interleaved call
    by call. Before: the type's index dropped inside a transaction that is rolled back (so the
    database holds it again at once; nothing else uses this database) and search writing what it
    wrote without it, the trigram pre-filter of all identifier values. After: the index, and the
    range on it. The same rows, asserted."""
    from django.db import connection, transaction
    from django.test import Client

    from media import search
    from media.models import SearchIndex
    from media.schemas import MediaSearch
    from media.search.indexes import IDENTIFIER, indexed_paths
    from media.search.rows import rows_sql

    client = Client(headers={"Authorization": f"Bearer {token()}"})
    names = list(SearchIndex.objects.filter(kind=IDENTIFIER).values_list("name", flat=True))
    with_index = indexed_paths()
    without = {key: kinds - {IDENTIFIER} for key, kinds in with_index.items() if kinds - {IDENTIFIER}}

    def page_sql(filters: MediaSearch, paths) -> tuple[str, list]:
        plan = search.search_plan(filters, paths)
        ids_sql, params = search.page_ids_sql(
            search.conditions_for(filters, paths),
            order_by=filters.order_by,
            limit=filters.limit + 1,
            offset=filters.offset,
            candidates_first=plan.candidates_first,
            walk=plan.walk,
        )
        return rows_sql(ids_sql, filters.order_by), params

    def rows(sql: str, params) -> list:
        with connection.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def call(indexed: bool, run) -> tuple[float, object]:
        """``run()`` timed; before (not ``indexed``): with the identifier indexes and their records
        gone, inside a transaction rolled back afterwards."""
        if indexed:
            t = time.perf_counter()
            out = run()
            return (time.perf_counter() - t) * 1000, out
        with transaction.atomic():
            SearchIndex.objects.filter(kind=IDENTIFIER).delete()
            with connection.cursor() as cur:
                for name in names:
                    cur.execute(f"DROP INDEX {name}")
            t = time.perf_counter()
            out = run()
            elapsed = (time.perf_counter() - t) * 1000
            transaction.set_rollback(True)
        return elapsed, out

    print(
        f"\nidentifier type indexes ({', '.join(IDENTIFIER_INDEXES)}), before / after, interleaved"
        f" ({runs} calls each; load average {os.getloadavg()[0]:.1f}); p50 / p95 ms, ratio of p50s:"
    )
    print(
        f"{'query':34} {'sql before':>15} {'sql after':>15} {'ratio':>6}"
        f" {'http before':>15} {'http after':>15} {'ratio':>6}"
    )
    for name, body in CASES:
        if not body.get("identifiers"):
            continue
        filters = MediaSearch.model_validate(body)
        before, after = page_sql(filters, without), page_sql(filters, with_index)
        if before[0] == after[0]:
            continue
        found = {
            indexed: call(indexed, lambda s=(after if indexed else before): rows(*s))[1] for indexed in (0, 1)
        }
        assert found[0] == found[1], name
        sql: dict[bool, list[float]] = {False: [], True: []}
        http: dict[bool, list[float]] = {False: [], True: []}
        post = partial(client.post, "/api/media/search", json.dumps(body), content_type="application/json")
        for n in range(runs):
            for indexed in (n % 2 == 0, n % 2 == 1):  # alternate which goes first
                statement = after if indexed else before
                sql[indexed].append(call(indexed, lambda s=statement: rows(*s))[0])
                http[indexed].append(call(indexed, post)[0])
        p = {
            key: (statistics.median(values), percentile(values, 0.95))
            for key, values in (
                ("sb", sql[False]),
                ("sa", sql[True]),
                ("hb", http[False]),
                ("ha", http[True]),
            )
        }
        print(
            f"{name:34} {p['sb'][0]:6.1f}/{p['sb'][1]:7.1f} {p['sa'][0]:6.1f}/{p['sa'][1]:7.1f}"
            f" {p['sa'][0] / p['sb'][0]:6.3f} {p['hb'][0]:6.1f}/{p['hb'][1]:7.1f}"
            f" {p['ha'][0]:6.1f}/{p['ha'][1]:7.1f} {p['ha'][0] / p['hb'][0]:6.3f}",
            flush=True,
        )


def count_ab(runs: int) -> None:
    """Each case whose page collects every match first, with the page's statement counting them
    (now) and with a COUNT statement of its own after the page (before), interleaved call by call
    through the search service and through HTTP; the same pages and totals asserted."""
    from unittest import mock

    from django.test import Client

    from media import search
    from media.schemas import MediaSearch
    from media.search import pages

    client = Client(headers={"Authorization": f"Bearer {token()}"})
    counting = pages.counts_with_page

    def call(counted: bool, run) -> tuple[float, object]:
        with mock.patch.object(pages, "counts_with_page", counting if counted else lambda *a, **k: False):
            t = time.perf_counter()
            out = run()
            return (time.perf_counter() - t) * 1000, out

    print(
        f"\ncount with the page (after) / COUNT statement (before), interleaved ({runs} calls each;"
        f" load average {os.getloadavg()[0]:.1f}); p50 / p95 ms, ratio of p50s:"
    )
    print(
        f"{'query':34} {'service before':>15} {'service after':>15} {'ratio':>6}"
        f" {'http before':>15} {'http after':>15} {'ratio':>6}"
    )
    for name, body in CASES:
        filters = MediaSearch.model_validate(body)
        conditions = search.conditions_for(filters)
        if not counting(conditions, candidates_first=search.search_plan(filters, {}).candidates_first):
            continue
        read = partial(search.media_search, filters)

        def shown(page) -> tuple:
            return [m["pk"] for m in page.items], page.total, page.total_exact, page.has_next

        found = {counted: shown(call(counted, read)[1][0]) for counted in (0, 1)}
        assert found[0] == found[1], name
        if not found[1][3]:  # the page shows the total: no count either way
            continue
        service: dict[bool, list[float]] = {False: [], True: []}
        http: dict[bool, list[float]] = {False: [], True: []}
        post = partial(client.post, "/api/media/search", json.dumps(body), content_type="application/json")
        for n in range(runs):
            for counted in (n % 2 == 0, n % 2 == 1):  # alternate which goes first
                service[counted].append(call(counted, read)[0])
                http[counted].append(call(counted, post)[0])
        p = {
            key: (statistics.median(values), percentile(values, 0.95))
            for key, values in (
                ("sb", service[False]),
                ("sa", service[True]),
                ("hb", http[False]),
                ("ha", http[True]),
            )
        }
        print(
            f"{name:34} {p['sb'][0]:6.1f}/{p['sb'][1]:7.1f} {p['sa'][0]:6.1f}/{p['sa'][1]:7.1f}"
            f" {p['sa'][0] / p['sb'][0]:6.3f} {p['hb'][0]:6.1f}/{p['hb'][1]:7.1f}"
            f" {p['ha'][0]:6.1f}/{p['ha'][1]:7.1f} {p['ha'][0] / p['hb'][0]:6.3f}",
            flush=True,
        )


def measure(runs: int, path_index: bool, rounds: int, only_tags: bool = False) -> None:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from media import search

    bearer = token()
    client = Client(headers={"Authorization": f"Bearer {bearer}"})
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM media_media")
        total_rows = cur.fetchone()[0]
        cur.execute("SHOW jit")
        jit = cur.fetchone()[0]
    print(
        f"\n{total_rows} media; count cap {settings.MEDIASTORE_SEARCH_COUNT_CAP}; {runs} runs each;"
        f" jit={jit}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        "sql page: the page query alone (rows fetched, no models); sql count: the capped COUNT, when the\n"
        "page needs one; service: media.search.media_search (both queries + models); http: the whole\n"
        "request (auth, validation, queries, JSON of each item); exact: uncapped COUNT(*), for reference.\n"
        "plan: walk = ordered walk; cand = candidates first (MATERIALIZED CTE); w+c = a bounded walk,\n"
        "then the candidates when it did not fill the page;\n"
        "seq = the answer says X-Search-Plan: seqscan.\n"
    )
    print(
        f"{'query':30} {'plan':>8} {'page':>5} {'total':>7}  {'sql page':>13}  {'sql count':>13}"
        f"  {'service':>13}"
        f"  {'http':>13}  {'exact':>7}"
    )
    print(
        f"{'':30} {'':>8} {'':>5} {'':>7}  {'p50 / p95 ms':>13}"
        + f"  {'p50 / p95':>13}" * 3
        + f"  {'p50':>7}"
    )
    cases: list[Case] = []

    def pair(values: tuple[float, float] | None) -> str:
        return f"{values[0]:6.1f}/{values[1]:6.1f}" if values else f"{'-':>13}"

    def run_case(name: str, body: dict) -> Case:
        case = Case(name, body)
        case.sql_page = timed(sql_timer(*case.page_sql), runs)
        case.sql_count = timed(sql_timer(*case.count_sql), runs) if case.needs_count else None
        service = timed(lambda: search.media_search(case.filters), runs)
        case.http = timed(
            lambda: client.post("/api/media/search", json.dumps(body), content_type="application/json"), runs
        )
        exact = timed(sql_timer(*search.count_sql(case.conditions, 2**62)), max(3, runs // 4))
        page = case.page
        shown = f"{page.total}{'' if page.total_exact else '+'}"
        plan = ("walk" if not case.plan.candidates_first else "w+c" if case.plan.walk else "cand") + (
            " seq" if case.plan.seqscan else ""
        )
        print(
            f"{name:30} {plan:>8} {len(page.items):5} {shown:>7}  {pair(case.sql_page)}"
            f"  {pair(case.sql_count)}"
            f"  {pair(service)}  {pair(case.http)}  {exact[0]:7.1f}",
            flush=True,
        )
        cases.append(case)
        return case

    for name, body in CASES:
        if not only_tags or body.get("tags") or body.get("tags_all"):
            run_case(name, body)

    # GET /api/media, first page: no filter, default limit (1000), count capped; and smaller pages.
    gets = []
    for label, url in (
        []
        if only_tags
        else [
            ("GET /api/media (first page)", "/api/media"),
            ("GET /api/media?limit=100", "/api/media?limit=100"),
            ("GET /api/media?pid=D2023*&limit=100", "/api/media?pid=D2023*&limit=100"),
        ]
    ):
        first = client.get(url).json()
        http = timed(lambda url=url: client.get(url), runs)
        shown = f"{first['count']}{'' if first['count_exact'] else '+'}"
        gets.append((label, len(first["items"]), http))
        print(
            f"{label:30} {'':>8} {len(first['items']):5} {shown:>7}  {'':>13}  {'':>13}  {'':>13}"
            f"  {pair(http)}"
        )

    # Deep pages: follow the next links of a pid-prefix search 30 pages of 1000 deep (cursor links).
    url = "/api/media?pid=D2023*&limit=1000"
    deep: list[float] = []
    for _ in range(0 if only_tags else 30):
        t = time.perf_counter()
        answer = client.get(url).json()
        deep.append((time.perf_counter() - t) * 1000)
        if not answer["next"]:
            break
        url = answer["next"].removeprefix("http://testserver")
    if deep:
        print(
            f"{'deep pages (30 x 1000, next)':30} {'':>8} {'':>5} {'':>7}  {'':>13}  {'':>13}  {'':>13}"
            f"  {statistics.median(deep):6.1f}/{max(deep):6.1f}  (last page {deep[-1]:.1f} ms)"
        )

    if path_index and not only_tags:
        call_command("search_index", "add", "sample.depth", "--as", "number", verbosity=0)
        print("\nwith manage.py search_index add sample.depth --as number:")
        indexed = [
            run_case("metadata range (narrow) +idx", dict(CASES)["metadata range (narrow)"]),
            run_case("metadata range (wide) +idx", dict(CASES)["metadata range (wide)"]),
        ]
        for case in indexed:  # while the index exists
            print(f"\n{case.name}:")
            for line in explain(*case.page_sql):
                print(f"  page | {line}")
            cases.remove(case)
        call_command("search_index", "drop", "sample.depth", verbosity=0)

    print(f"\nplan stability: sql page p50 (ms) after each of {rounds} ANALYZE rounds")
    for _ in range(rounds):
        analyze()
        for case in cases:
            fresh = Case(case.name, case.body)  # the plan may change with the statistics
            case.rounds.append(timed(sql_timer(*fresh.page_sql), max(3, runs // 2))[0])
            case.shapes.add(plan_shape(*fresh.page_sql))
    for case in cases:
        spread = max(case.rounds) / max(min(case.rounds), 0.01)
        print(
            f"  {case.name:30} "
            + " ".join(f"{v:7.1f}" for v in case.rounds)
            + f"   max/min {spread:4.2f}  plans {len(case.shapes)}"
        )

    print(f"\ntargets (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):")
    failures = 0

    def target(ok: bool, text: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")

    for case in cases:
        if len(case.page.items) <= 100:
            target(case.http[1] <= 100, f"{case.name}: http p95 {case.http[1]:.1f} ms <= 100 ms")
        elif len(case.page.items) >= 1000:
            ratio = case.http[0] / max(case.sql_p50(), 0.01)
            target(
                ratio <= 2,
                f"{case.name}: http p50 {case.http[0]:.1f} ms <= 2 x sql {case.sql_p50():.1f} ms"
                f" ({ratio:.2f}x)",
            )
    for label, items, http in gets:
        if items <= 100:
            target(http[1] <= 100, f"{label}: http p95 {http[1]:.1f} ms <= 100 ms")
    for case in cases:
        if not case.name.endswith("+idx"):
            spread = max(case.rounds) / max(min(case.rounds), 0.01)
            target(spread <= 2, f"{case.name}: plan stability max/min p50 {spread:.2f} <= 2")
    print(f"\n{failures} target(s) failed" if failures else "\nall targets passed")

    print("\nEXPLAIN (page query, then count query), scan lines:")
    for case in cases:
        print(f"\n{case.name}:")
        for line in explain(*case.page_sql):
            print(f"  page | {line}")
        if case.needs_count:
            for line in explain(*case.count_sql):
                print(f"  count| {line}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="media to load (default 100000)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per query (default 20)")
    parser.add_argument("--db", default="mediastore_bench", help="database name (must contain 'bench')")
    parser.add_argument("--reload", action="store_true", help="drop the database and load it again")
    parser.add_argument("--seed", type=int, default=4, help="random seed of the data")
    parser.add_argument("--reindex", action="store_true", help="apply migration 0003 again on loaded data")
    parser.add_argument(
        "--no-path-index", action="store_true", help="skip the metadata expression-index demo"
    )
    parser.add_argument("--rounds", type=int, default=5, help="ANALYZE rounds of the stability check (5)")
    parser.add_argument(
        "--no-identifier-index",
        action="store_true",
        help=f"measure without `search_index add-identifier` of {', '.join(IDENTIFIER_INDEXES)}",
    )
    parser.add_argument(
        "--only-identifier-ab", action="store_true", help="only the identifier index comparison"
    )
    parser.add_argument(
        "--no-identifier-ab", action="store_true", help="skip the identifier index comparison"
    )
    parser.add_argument(
        "--only-count-ab", action="store_true", help="only the page's own count against a COUNT statement"
    )
    parser.add_argument(
        "--only-tags", action="store_true", help="only the searches with tags (and their ANALYZE rounds)"
    )
    args = parser.parse_args()
    prepare(args.db, args.rows, args.reload, args.seed, args.reindex)
    identifier_indexes(not args.no_identifier_index)
    if args.only_count_ab:
        count_ab(args.runs)
        return
    if not (args.no_identifier_index or args.only_tags or args.no_identifier_ab):
        identifier_index_ab(args.runs)
    if not args.only_identifier_ab:
        measure(args.runs, not args.no_path_index, args.rounds, args.only_tags)


if __name__ == "__main__":
    main()
