"""Benchmark of the admin's media list on PostgreSQL: its facets and the whole page (a script run by
hand, not a test).

    python bench/admin_list.py --rows 1000000        # load once (minutes; bench/search.py's data)
    python bench/admin_list.py --rows 1000000        # again: reuses the loaded database

It loads the media of ``bench/search.py`` (same generator, same indexes) into its own database
(``--db``, default ``mediastore_bench_admin_list``) and times, for a few filters of the list, p50 and
p95 of ``media.admin_search.facets`` alone (counts per tag and per pid type over at most
``FACET_SCAN`` matches) and of the whole ``GET /admin/media/media/?...`` as a superuser through
Django's test client (search, facets, Django's row count and the page of 100 rows).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.search import prepare, timed  # noqa: E402

CASES = [
    ("no filter", ""),
    ("common tag", "tags_all=tag000"),
    ("pid prefix (one day)", "pid=D20160102*"),
    ("metadata eq", "metadata=station:eq:7"),
    ("three filters", "pid=D2016*&tags_all=tag001&metadata=station:eq:7"),
    ("rare tag", "tags_all=tag199"),
]


def measure(runs: int) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment

    from media import admin_search
    from media.admin import MediaAdmin
    from media.models import Media

    setup_test_environment()
    user_model = get_user_model()
    user = user_model.objects.filter(username="bench-admin").first() or user_model.objects.create_superuser(
        "bench-admin", "bench@example.org", "bench"
    )
    client = Client()
    client.force_login(user)
    print(f"FACET_SCAN = {admin_search.FACET_SCAN}; page of {MediaAdmin.list_per_page} rows")
    print(f"{'case':24} {'matches':>9} {'facets p50/p95 ms':>19} {'page p50/p95 ms':>17}")
    for name, query in CASES:
        params = {}
        for part in filter(None, query.split("&")):
            key, _, value = part.partition("=")
            params.setdefault(key, []).append(value)
        queryset = admin_search.matching(Media.objects.all(), admin_search.search_filters(params))
        facets = admin_search.facets(queryset, params)
        matches = f"{facets.scanned}{'+' if facets.more else ''}"
        f50, f95 = timed(lambda q=queryset, p=params: admin_search.facets(q, p), runs)

        def page(query=query) -> None:
            response = client.get(f"/admin/media/media/?{query}")
            assert response.status_code == 200, response.status_code

        p50, p95 = timed(page, runs)
        print(f"{name:24} {matches:>9} {f50:>9.1f}/{f95:<9.1f} {p50:>8.1f}/{p95:<8.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="media to load (default 100000)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per case (default 10)")
    parser.add_argument(
        "--db", default="mediastore_bench_admin_list", help="database name (must contain 'bench')"
    )
    parser.add_argument("--reload", action="store_true", help="drop the database and load it again")
    args = parser.parse_args()
    started = time.perf_counter()
    prepare(args.db, args.rows, args.reload, seed=4, again=False)
    print(f"database ready in {time.perf_counter() - started:.0f} s")
    measure(args.runs)


if __name__ == "__main__":
    main()
