"""Bulk create on PostgreSQL: COPY (``media.copyrows``) against the earlier ``bulk_create`` path, as
a ratio of calls interleaved in one process (a script run by hand, not a test).

    python bench/bulk_copy.py                  # 60 calls of 100 media each way, about a minute
    python bench/bulk_copy.py --calls 20 --batch 100

In a database of its own (``mediastore_bench_pgbulk``, made afresh and dropped at the end;
POSTGRES_HOST/PORT/USER/PASSWORD), it prepares batches of media like ``bench/api.py`` part 2 (2
tags, 2 identifiers and metadata each) and times ``media.services.media_insert`` on them, with COPY
and with ``copy_enabled`` patched off (the earlier path), alternating which goes first. Also prints
the statements of one call each way. Figures: docs/performance.md ("Bulk create").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.postgres import admin_connection, django_on, ensure_bench_database  # noqa: E402

DATABASE = "mediastore_bench_pgbulk"
FS = {"type": "DictStore", "bucket": "bench"}


def batch(size: int, number: int) -> list:
    from media.schemas import MediaIn

    run = uuid.uuid4().hex[:8]
    return [
        MediaIn(
            pid=f"bulk-{run}-{i}",
            pid_type="pidtype",
            store_config=FS,
            identifiers={"local": f"L{i}", "alt": f"A{i}"},
            metadata={"instrument": {"id": i % 37, "name": "IFCB"}, "depth": i * 0.5, "ok": True},
            tags=[f"t{i % 10}", f"batch{number % 10}"],
        )
        for i in range(size)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=60, help="timed calls each way")
    parser.add_argument("--batch", type=int, default=100, help="media per call")
    args = parser.parse_args()
    ensure_bench_database(DATABASE, reload=True)
    django_on(DATABASE)
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import media.copyrows as copyrows
    from identifiers.models import IdentifierType
    from media.services import media_insert, media_prepare_many

    try:
        call_command("migrate", verbosity=0)
        for name in ("pidtype", "local", "alt"):
            IdentifierType.objects.get_or_create(name=name)
        user = User.objects.create_superuser("bench", password=uuid.uuid4().hex)
        copy_enabled = copyrows.copy_enabled
        ways = {"copy": copy_enabled, "plain": lambda: False}

        def call(way: str, number: int) -> float:
            copyrows.copy_enabled = ways[way]
            try:
                objs = media_prepare_many(batch(args.batch, number), user=user)
                started = time.perf_counter()
                media_insert(objs, user=user)
                return time.perf_counter() - started
            finally:
                copyrows.copy_enabled = copy_enabled

        for way in ways:  # tags and store exist, caches warm
            call(way, 0)
        for way in ways:
            with CaptureQueriesContext(connection) as queries:
                call(way, 0)
            print(f"{way}: {len(queries.captured_queries)} statements in media_insert")
        times: dict[str, list[float]] = {way: [] for way in ways}
        for number in range(args.calls):
            order = ["copy", "plain"] if number % 2 else ["plain", "copy"]
            for way in order:
                times[way].append(call(way, number))
        p50 = {way: statistics.median(values) for way, values in times.items()}
        for way, value in p50.items():
            print(f"{way}: media_insert p50 {value * 1000:.1f} ms ({args.batch / value:.0f} media/s)")
        print(f"copy / plain {p50['copy'] / p50['plain']:.2f}  (load average {os.getloadavg()[0]:.1f})")
    finally:
        connection.close()
        with admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


if __name__ == "__main__":
    main()
