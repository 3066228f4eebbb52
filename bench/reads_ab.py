"""Part 1 of ``bench/api.py`` (single reads on one worker) for two checkouts side by side, calls
interleaved, so that a change to the request path is judged against the code before it in one run
(a script, not a test).

    git -C /path/to/repo archive main | tar -x -C /tmp/base        # the code to compare against
    python bench/reads_ab.py --base /tmp/base --db postgres --rounds 300

Both servers are real (``bin/start``, one gthread worker each, on their own throw-away database of
the same kind) and run with this checkout's virtualenv; ``--base`` only changes the code gunicorn
imports (its working directory). Each round calls every endpoint once on each server, in
alternating order; the lines give each p50 over its own server's ``GET /api/hello`` p50, and the
ratio of the two servers' p50s (this checkout over the base).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import processes, servers  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from api import database, moto_server, ok  # noqa: E402  (bench/api.py, run as a script too)


def start(code: Path, kind: str) -> servers.Server:
    """A server of one gthread worker running the code in ``code``."""
    saved = servers.REPO, processes.REPO
    servers.REPO = processes.REPO = code
    try:
        with database(kind):
            return servers.Server(
                "mediastore-reads-ab-", 1, GUNICORN_WORKER_CLASS="gthread", GUNICORN_THREADS="8"
            )
    finally:
        servers.REPO, processes.REPO = saved


def calls_of(server: servers.Server, s3_url: str | None) -> dict[str, Callable[[], object]]:
    """The endpoints of ``bench/api.py`` part 1 on ``server``, with the media they read."""
    s, base = server.session, server.base
    for name in ("local", "alt"):
        s.post(f"{base}/api/identifier", json={"name": name, "pattern": ""}, timeout=30)
    fs = {"type": "FilesystemStore", "bucket": "bench"}
    item = {"pid_type": "pidtype", "store_config": fs, "metadata": {"instrument": {"id": 1}}}
    pid = f"read-{uuid.uuid4().hex[:12]}"
    ok(s.post(f"{base}/api/media", json={**item, "pid": pid, "tags": ["t1"]}, timeout=30))
    tag = f"ten-{uuid.uuid4().hex[:8]}"
    ten = [{**item, "pid": f"ten-{uuid.uuid4().hex[:12]}", "tags": [tag]} for _ in range(10)]
    ok(s.post(f"{base}/api/media/create", json=ten, timeout=30))
    calls = {
        "hello": lambda: ok(s.get(f"{base}/api/hello", timeout=30)),
        "GET /api/media/{pid}": lambda: ok(s.get(f"{base}/api/media/{pid}", timeout=30)),
        "search (10 media)": lambda: ok(s.post(f"{base}/api/media/search", json={"tags": [tag]}, timeout=30)),
    }
    if s3_url:
        import boto3

        keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}
        s3cfg = {"url": s3_url, "access_key": "bench", "secret_key": "bench-secret"}
        ok(s.post(f"{base}/api/s3cfg", json=s3cfg, timeout=30))
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", **keys).create_bucket(Bucket=bucket)
        url_pid = f"url-{uuid.uuid4().hex[:12]}"
        store = {"type": "BucketStore", "bucket": f"{bucket}/r", "s3_url": s3_url}
        body = {"mediadata": {**item, "pid": url_pid, "store_config": store}, "base64": "aGVsbG8="}
        ok(s.post(f"{base}/api/upload", json=body, timeout=60))
        url = f"{base}/api/download/url/{url_pid}"
        calls["GET /api/download/url/{pid}"] = lambda: ok(s.get(url, timeout=30))
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, type=Path, help="the checkout to compare against")
    parser.add_argument("--db", default="postgres", help="sqlite or postgres")
    parser.add_argument("--rounds", type=int, default=300, help="timed rounds")
    args = parser.parse_args()
    with moto_server() as s3_url:
        base, ours = start(args.base.resolve(), args.db), start(ROOT, args.db)
        try:
            sides = {"base": calls_of(base, s3_url), "ours": calls_of(ours, s3_url)}
            times = {side: {name: [] for name in calls} for side, calls in sides.items()}
            for _ in range(max(3, args.rounds // 10)):  # warm-up
                for calls in sides.values():
                    for call in calls.values():
                        call()
            for index in range(args.rounds):
                order = ["base", "ours"] if index % 2 == 0 else ["ours", "base"]
                for name in sides["base"]:
                    for side in order:
                        start_at = time.perf_counter()
                        sides[side][name]()
                        times[side][name].append(time.perf_counter() - start_at)
        finally:
            base.close()
            ours.close()
    p50 = {side: {name: statistics.median(v) for name, v in by.items()} for side, by in times.items()}
    print(f"{args.db}, {args.rounds} rounds, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    heads = ("base p50", "ours p50", "base/hello", "ours/hello", "ours/base")
    print(f"  {'':<32} {heads[0]:>9} {heads[1]:>9} {heads[2]:>10} {heads[3]:>10} {heads[4]:>9}")
    for name in p50["base"]:
        b, o = p50["base"][name], p50["ours"][name]
        bh, oh = b / p50["base"]["hello"], o / p50["ours"]["hello"]
        print(f"  {name:<32} {b * 1000:>7.2f}ms {o * 1000:>7.2f}ms {bh:>9.2f}x {oh:>9.2f}x {o / b:>8.2f}x")


if __name__ == "__main__":
    main()
