"""CPU of ``POST /api/media/create`` (100 media a call, as ``bench/api.py`` part 2 sends them) on
PostgreSQL, this checkout against another, call by call (a script run by hand, not a test).

    python bench/bulk_cpu.py --base /tmp/base-main          # 40 calls each way after 5 to warm up
    python bench/bulk_cpu.py --base /tmp/base-main --calls 60

Each checkout runs in a process of its own, on a fresh database of its own
(``mediastore_bench_cpu_<random>``, dropped at the end; POSTGRES_HOST/PORT/USER/PASSWORD), and
serves the calls through ``django.test.Client``; ``time.process_time()`` around each call is the
web process's CPU, which the database's work does not count in. The two processes take turns call
by call (which goes first alternates), so a change of the machine's load falls on both alike: on a
loaded machine, compare the ratios, not the milliseconds. Prints the p50 of each side, the ratio of
the p50s and the quartiles of the per-pair ratios. Figures: docs/performance.md ("Bulk create").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def worker(checkout: str) -> None:
    """Serve calls for ``checkout``: one line on stdin (the call's JSON body), one call, one line
    out (CPU and wall ms). The bodies come from the parent: importing ``bench/api.py`` here would
    put this checkout's code ahead of the other's on ``sys.path``."""
    sys.path.insert(0, checkout)
    os.chdir(checkout)
    from tests.support.postgres import admin_connection, django_on, ensure_bench_database

    name = f"mediastore_bench_cpu_{uuid.uuid4().hex[:8]}"
    ensure_bench_database(name, reload=True)
    django_on(name)
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from identifiers.models import IdentifierType

    try:
        call_command("migrate", verbosity=0)
        for type_name in ("pidtype", "local", "alt"):
            IdentifierType.objects.get_or_create(name=type_name)
        password = uuid.uuid4().hex
        User.objects.create_superuser("bench", password=password)
        client = Client()
        login = json.dumps({"username": "bench", "password": password})
        token = client.post("/api/login", login, content_type="application/json").json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        print("ready", flush=True)
        for body in sys.stdin:
            cpu, wall = time.process_time(), time.perf_counter()
            response = client.post(
                "/api/media/create", body, content_type="application/json", headers=headers
            )
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if response.status_code != 200:
                raise SystemExit(f"{checkout}: {response.status_code} {response.content[:300]!r}")
            print(json.dumps([cpu * 1000, wall * 1000]), flush=True)
    finally:
        connection.close()
        with admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def quartiles(values: list[float]) -> list[float]:
    ordered = sorted(values)
    return [round(ordered[int(q * (len(ordered) - 1))], 3) for q in (0.25, 0.5, 0.75)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the other checkout (e.g. a worktree of main)")
    parser.add_argument("--calls", type=int, default=40, help="timed calls each way")
    parser.add_argument("--warm", type=int, default=5, help="calls each way before timing")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    sides = {"base": args.base, "this": str(ROOT)}
    procs = {
        side: subprocess.Popen(
            [sys.executable, __file__, "--base", "-", "--worker", checkout],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for side, checkout in sides.items()
    }
    for side, proc in procs.items():
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"the {side} worker did not start")

    from api import media_item  # bench/api.py's items (2 identifiers, 2 tags, nested metadata)

    def call(side: str, body: str) -> list[float]:
        procs[side].stdin.write(body + "\n")
        procs[side].stdin.flush()
        return json.loads(procs[side].stdout.readline())

    times: dict[str, list[list[float]]] = {side: [] for side in sides}
    try:
        for number in range(args.warm + args.calls):
            items = [media_item(f"cpu-{number}-{i}", number * 100 + i, number % 10) for i in range(100)]
            body = json.dumps(items)  # one line: json.dumps escapes newlines inside strings
            for side in ("base", "this") if number % 2 else ("this", "base"):
                result = call(side, body)
                if number >= args.warm:
                    times[side].append(result)
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    cpu = {side: [t[0] for t in values] for side, values in times.items()}
    wall = {side: [t[1] for t in values] for side, values in times.items()}
    p50 = {side: statistics.median(values) for side, values in cpu.items()}
    pairs = [this / base for this, base in zip(cpu["this"], cpu["base"], strict=True)]
    for side in sides:
        print(f"{side}: CPU p50 {p50[side]:.1f} ms a call, wall p50 {statistics.median(wall[side]):.1f} ms")
    print(
        f"this / base: {p50['this'] / p50['base']:.3f} (per-pair ratios, quartiles {quartiles(pairs)}; "
        f"load average {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
