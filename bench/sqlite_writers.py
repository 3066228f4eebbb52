"""SQLite writers under gthread, with and without the writer queue, side by side (issue 34; a
script, not a test).

    python bench/sqlite_writers.py                       # 4 workers x 8 threads, 50 clients, 6 rounds
    python bench/sqlite_writers.py --rounds 2 --seconds 5  # quicker
    python bench/sqlite_writers.py --variants queue,off,timeout2

Starts one real server (``bin/start``, SQLite, gthread) per variant, all at once, then runs
``bench/api.py``'s mixed workload (70% single reads, 10% search, 10% tag updates, 10% creates)
against each in turn, round after round, so that the machine's load falls on every variant alike.
Prints, per variant over all rounds: write p50 and p95 and their ratio, read p95, requests per
second and errors. Variants (environment of the server):

- ``queue``: as shipped (``MEDIASTORE_SQLITE_WRITE_QUEUE`` on);
- ``off``: no queue, SQLite's busy handler alone (``BEGIN IMMEDIATE`` all the same).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_api", ROOT / "bench" / "api.py")
bench_api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_api)

VARIANTS = {
    "queue": {"MEDIASTORE_SQLITE_WRITE_QUEUE": "true"},
    "off": {"MEDIASTORE_SQLITE_WRITE_QUEUE": "false"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="queue,off", help=f"some of {', '.join(VARIANTS)}")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10, help="seconds of each round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per variant, interleaved")
    args = parser.parse_args()
    names = args.variants.split(",")
    p = bench_api.p
    servers, pids, sessions = {}, {}, {}
    try:
        for name in names:
            server = servers[name] = bench_api.start(
                "sqlite", "gthread", args.workers, args.threads, **VARIANTS[name]
            )
            bench_api.prepare_types(server)
            pids[name] = [bench_api.new_pid("w") for _ in range(20)]
            bench_api.ok(
                server.session.post(
                    f"{server.base}/api/media/create",
                    json=[bench_api.media_item(pid, i, 0) for i, pid in enumerate(pids[name])],
                    timeout=60,
                )
            )
            sessions[name] = [server.client() for _ in range(args.clients)]
        figures = {
            name: {"reads": [], "writes": [], "requests": 0, "seconds": 0.0, "errors": 0} for name in names
        }
        for round_no in range(args.rounds):
            for name in names if round_no % 2 == 0 else reversed(names):
                rate, _m50, _m95, errors, reads, writes = bench_api.mixed(
                    servers[name], pids[name], args.clients, args.seconds, quiet=True, sessions=sessions[name]
                )
                f = figures[name]
                f["reads"] += reads
                f["writes"] += writes
                f["requests"] += len(reads) + len(writes)
                f["seconds"] += (len(reads) + len(writes)) / rate
                f["errors"] += errors
                print(
                    f"  round {round_no + 1} {name:<8} writes p50 {p(writes, 0.5) * 1000:6.0f} ms "
                    f"p95 {p(writes, 0.95) * 1000:6.0f} ms  reads p95 {p(reads, 0.95) * 1000:5.0f} ms  "
                    f"{rate:4.0f} req/s  {errors} errors  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.close()
    print(f"\n{args.workers} workers x {args.threads} threads, {args.clients} clients, {args.rounds} rounds")
    for name in names:
        f = figures[name]
        w50, w95 = p(f["writes"], 0.5), p(f["writes"], 0.95)
        print(
            f"  {name:<8} writes p50 {w50 * 1000:6.0f} ms p95 {w95 * 1000:6.0f} ms  "
            f"p95/p50 {w95 / w50:5.2f}x  "
            f"reads p95 {p(f['reads'], 0.95) * 1000:5.0f} ms  {f['requests'] / f['seconds']:4.0f} req/s  "
            f"{f['errors']} errors"
        )
    if len(names) > 1:
        base = figures[names[-1]]
        for name in names[:-1]:
            f = figures[name]
            print(
                f"  {name} / {names[-1]}: write p95 {p(f['writes'], 0.95) / p(base['writes'], 0.95):.2f}x, "
                f"write p50 {p(f['writes'], 0.5) / p(base['writes'], 0.5):.2f}x, "
                f"read p95 {p(f['reads'], 0.95) / p(base['reads'], 0.95):.2f}x, "
                f"throughput {(f['requests'] / f['seconds']) / (base['requests'] / base['seconds']):.2f}x"
            )
    sys.exit(0)


if __name__ == "__main__":
    main()
