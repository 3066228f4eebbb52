"""Benchmark of ``GET /api/stats`` on PostgreSQL (a script run by hand, not a test).

    python bench/stats.py                  # 1,000,000 media: load once (a few minutes), then measure
    python bench/stats.py                  # again: reuses the loaded database
    python bench/stats.py --smoke          # 10,000 media in its own database, a quick check
    python bench/stats.py --rows 300000 --reload

It creates its own database (``--db``, default ``mediastore_bench_stats``, or
``mediastore_bench_stats_smoke`` with ``--smoke``; the name must contain "bench"), migrates it,
loads N media with one ``INSERT ... SELECT FROM generate_series`` (the tally triggers fire once
for the statement; 5 pid types, 6 stores, 10%
PENDING, sizes up to 1 MB, created over the last 400 days, every 10,000th media with a failed
fixity check), runs VACUUM ANALYZE, then times ``--runs`` times (after a warm-up) and prints
p50/p95 of:

- ``selector``: ``status.selectors.stats()``, the figures without the store probes;
- ``http``: the whole ``GET /api/stats?health=false`` through Django's test client (token check,
  the queries, the JSON);

against the target of 200 ms (PASS when the http p95 is below it), and the plan of the grouped
query (on PostgreSQL it reads the tally the triggers keep, status/models.py, not the media). The
store probes of ``health=true`` are left out: they measure the stores, not the database.
Connection settings: POSTGRES_HOST/PORT/USER/PASSWORD.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.postgres import django_on, ensure_bench_database  # noqa: E402

TARGET_MS = 200.0
PID_TYPES = ["bin", "doi", "sample", "image", "cast"]
STORES = [
    ("FilesystemStore", "archive"),
    ("FilesystemStore", "incoming"),
    ("HashdirStore", "hashed"),
    ("SqliteStore", "small.sqlite"),
    ("DictStore", "scratch"),
    ("ZipStore", "old.zip"),
]


def load(rows: int) -> None:
    """Identifier types, stores and ``rows`` media, all in SQL (nothing per row in Python)."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        for name in PID_TYPES:
            cursor.execute("INSERT INTO identifiers_identifiertype (name, pattern) VALUES (%s, '')", [name])
        store_ids = []
        for store_type, bucket in STORES:
            cursor.execute(
                "INSERT INTO stores_storeconfig (type, bucket) VALUES (%s, %s) RETURNING id",
                [store_type, bucket],
            )
            store_ids.append(cursor.fetchone()[0])
        cursor.execute(
            """
            INSERT INTO media_media (pid, pid_type, store_config_id, store_key, store_status, identifiers,
                metadata, tag_list, size, checksum, etag, content_type, created, updated, mark, version,
                verified_at, verify_ok, verify_error)
            SELECT 'bench-' || i,
                   (%(types)s::text[])[1 + i %% 5],
                   (%(stores)s::bigint[])[1 + (i / 7) %% 6],
                   'key-' || i,
                   CASE WHEN i %% 10 = 0 THEN 'PENDING' ELSE 'READY' END,
                   '{}'::jsonb, '{}'::jsonb, '[]'::jsonb,
                   CASE WHEN i %% 10 = 0 THEN NULL ELSE (i * 7919) %% 1000000 END,
                   '', '', 'application/octet-stream',
                   now() - make_interval(secs => ((i * 34.56) %% (400 * 86400))::float8),
                   now(), i, 1,
                   CASE WHEN i %% 3 = 0 THEN now() - make_interval(days => (i %% 60)::int) END,
                   CASE WHEN i %% 3 = 0 THEN i %% 10000 <> 0 END,
                   CASE WHEN i %% 3 = 0 AND i %% 10000 = 0 THEN 'missing: no object is stored' ELSE '' END
            FROM generate_series(1::bigint, %(rows)s) AS i
            """,
            {"types": PID_TYPES, "stores": store_ids, "rows": rows},
        )
        cursor.execute("SELECT setval('media_mark_seq', %s)", [rows])
    print(f"loaded {rows} media in {time.perf_counter() - started:.1f} s", flush=True)


def vacuum() -> None:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"VACUUM ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)


def timed(function, runs: int) -> list[float]:
    function()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return times


def report(label: str, times: list[float]) -> float:
    p50 = statistics.median(times)
    p95 = sorted(times)[max(0, round(0.95 * len(times)) - 1)]
    print(f"{label:10s} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   ({len(times)} runs)")
    return p95


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="10,000 media in a database of their own")
    parser.add_argument("--db", default=None)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reload", action="store_true", help="drop the database and load it again")
    args = parser.parse_args()
    rows = 10_000 if args.smoke else args.rows
    db = args.db or ("mediastore_bench_stats_smoke" if args.smoke else "mediastore_bench_stats")

    new = ensure_bench_database(db, args.reload)
    django_on(db)
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from media.models import Media
    from mediastore.models import ApiToken
    from status import selectors

    call_command("migrate", verbosity=0)  # a database loaded by an older version gets the new migrations
    if new:
        load(rows)
        vacuum()
    count = Media.objects.count()
    if count != rows:
        sys.exit(f"database {db} holds {count} media, not {rows}: use --reload")

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser("bench", None, None)
    _, token = ApiToken.objects.issue(user)
    client = Client()

    def http() -> None:
        response = client.get("/api/stats?health=false", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.content

    figures = selectors.stats()
    print(
        f"\n{rows} media in {db}: {figures['by_status']}, {len(figures['stores'])} stores, "
        f"{figures['verify_failed']} verify failures, "
        f"{sum(day['count'] for day in figures['created_per_day'])} created in the last 30 days\n"
    )
    report("selector", timed(selectors.stats, args.runs))
    p95 = report("http", timed(http, args.runs))
    verdict = "PASS" if p95 < TARGET_MS else "FAIL"
    print(f"\n{verdict}: GET /api/stats p95 {p95:.1f} ms against the target of {TARGET_MS:.0f} ms\n")

    with connection.cursor() as cursor:
        sql, params = selectors.grouped_query().query.sql_with_params()
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS OFF) {sql}", params)
        print("plan of the grouped query:")
        for (line,) in cursor.fetchall():
            print("   ", line)
    sys.exit(0 if verdict == "PASS" else 1)


if __name__ == "__main__":
    main()
