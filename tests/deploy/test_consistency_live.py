"""Bytes and record never disagree, with real gunicorn workers racing and real workers crashing.

Regressions: four clients PUTting different bodies to one media left the row describing one
writer's bytes while the store held another's (10 of 30 trials); a store move racing a PUT lost
the acknowledged PUT (6 of 16 trials). Both need several processes, which the Django test client
cannot give. The server runs on the same database kind as the rest of the suite (a throw-away
PostgreSQL database when the suite runs on PostgreSQL, else SQLite).
"""

from __future__ import annotations

import base64
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from stores.backends import LOCAL_STORE_TYPES, S3_STORE_TYPES
from tests.support.processes import http_ok
from tests.support.servers import Server
from tests.support.servers import sha256_label as sha

pytestmark = pytest.mark.e2e

WORKERS = 4
WRITERS = 4
ROUNDS = 20
MOVE_ROUNDS = 10
READS_PER_ROUND = 20


@pytest.fixture(scope="module")
def server(s3_server):
    srv = Server("mediastore-consistency-", WORKERS)
    srv.add_s3(s3_server)
    try:
        yield srv
    finally:
        srv.close()


def store_of(store_type: str, name: str, s3_server, bucket: str | None = None) -> dict:
    if store_type == "BucketStore":
        return {"type": store_type, "bucket": f"{bucket}/{name}", "s3_url": s3_server.url}
    suffix = {"ZipStore": ".zip", "SqliteStore": ".sqlite"}.get(store_type, "")
    return {"type": store_type, "bucket": f"{name}{suffix}"}


def put(session: requests.Session, base: str, pid: str, body: bytes) -> int:
    try:
        return session.put(f"{base}/api/media/{pid}/content", data=body, timeout=120).status_code
    except requests.ConnectionError:
        return 0


@pytest.mark.parametrize("store_type", [*LOCAL_STORE_TYPES, *S3_STORE_TYPES])
def test_concurrent_puts_leave_one_acknowledged_body_that_verifies(server, s3_server, s3_bucket, store_type):
    rng = random.Random(f"puts-{store_type}")
    pid = f"race-{store_type}"
    server.create(pid, store_of(store_type, f"race-{store_type.lower()}", s3_server, s3_bucket))
    clients = [server.client() for _ in range(WRITERS)]
    reader = server.client()
    previous = None
    with ThreadPoolExecutor(WRITERS + 1) as pool:
        for round_no in range(ROUNDS):
            bodies = [
                f"round {round_no} writer {w} ".encode() + rng.randbytes(rng.randint(1_000, 200_000))
                for w in range(WRITERS)
            ]
            start = threading.Barrier(WRITERS + 1)
            done = threading.Event()

            def write(w: int, start=start, bodies=bodies) -> int:
                start.wait(timeout=30)
                return put(clients[w], server.base, pid, bodies[w])

            def read(start=start, done=done) -> list[tuple[int, bytes]]:
                """GETs racing the writers: each must be a whole body, old or new, never an error."""
                start.wait(timeout=30)
                seen = []
                for _ in range(READS_PER_ROUND):
                    response = reader.get(f"{server.base}/api/media/{pid}/content", timeout=60)
                    seen.append((response.status_code, response.content))
                    if done.is_set():
                        break
                return seen

            reads = pool.submit(read)
            statuses = list(pool.map(write, range(WRITERS)))
            done.set()
            acknowledged = [body for body, status in zip(bodies, statuses, strict=True) if status == 200]
            assert acknowledged, f"round {round_no}: no PUT succeeded: {statuses}"
            assert set(statuses) <= {200, 409}, statuses
            for status, seen in reads.result(timeout=120):
                if previous is None and status == 409:
                    continue  # the first round may read before any bytes exist
                assert status == 200, (
                    f"round {round_no}: a read racing the writers got {status}: {seen[:300]!r}"
                )
                assert seen == previous or seen in bodies, f"round {round_no}: a read got mixed bytes"
            stored = server.content(pid)
            assert stored in acknowledged, f"round {round_no}: stored bytes are no acknowledged body"
            media = server.media(pid)
            assert (media["size"], media["checksum"]) == (len(stored), sha(stored))
            report = server.verify(pid)
            assert report["ok"] is True, report
            previous = stored
    listed = server.manage("collect_orphans", "--older-than", "0", "--list")
    line = next(ln for ln in listed.splitlines() if f"race-{store_type.lower()}" in ln)
    assert ": 0 orphans" in line, listed  # every superseded object was removed


def test_a_move_racing_a_put_never_loses_the_acknowledged_put(server, s3_server):
    rng = random.Random("move-vs-put")
    pid = "move-race"
    stores = [store_of("FilesystemStore", "move-a", s3_server), store_of("HashdirStore", "move-b", s3_server)]
    server.create(pid, stores[0])
    assert put(server.session, server.base, pid, b"initial " + rng.randbytes(300_000)) == 200
    mover, writer = server.client(), server.client()
    outcomes = []
    for round_no in range(MOVE_ROUNDS):
        body = f"put of round {round_no} ".encode() + rng.randbytes(rng.randint(100_000, 600_000))
        target = stores[(round_no + 1) % 2]
        delay = rng.uniform(0, 0.05)
        results: dict[str, int] = {}

        def move(results=results, target=target) -> None:
            results["move"] = mover.patch(
                f"{server.base}/api/media/{pid}", json={"store_config": target}, timeout=120
            ).status_code

        def write(results=results, delay=delay, body=body) -> None:
            time.sleep(delay)
            results["put"] = put(writer, server.base, pid, body)

        threads = [threading.Thread(target=move), threading.Thread(target=write)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        outcomes.append((results["move"], results["put"]))
        assert results["put"] in (200, 409) and results["move"] in (204, 409), results
        stored = server.content(pid)
        if results["put"] == 200:
            assert stored == body, f"round {round_no}: the acknowledged PUT was lost ({results})"
        assert server.verify(pid)["ok"] is True
    assert any(put_status == 200 for _, put_status in outcomes)


@pytest.mark.parametrize("failpoint", ["content.before_switch", "content.after_switch"])
def test_a_worker_crash_between_the_phases_leaves_a_consistent_media(failpoint):
    """The worker dies (os._exit) right before or right after the switch: no READY row without
    its bytes, and collect_orphans finds the one object left behind."""
    server = Server("mediastore-crash-", 1, MEDIASTORE_FAILPOINTS=f"{failpoint}=crash")
    try:
        old, new = b"old bytes " * 1000, b"new bytes " * 3000
        # A base64 upload creates the media with the old bytes (it switches nothing, so it does not
        # reach the failpoint); the PUT of the new bytes then crashes the worker.
        upload = {
            "mediadata": {
                "pid": "crash2",
                "pid_type": "pidtype",
                "store_config": {"type": "FilesystemStore", "bucket": "crash"},
            },
            "base64": base64.b64encode(old).decode(),
        }
        assert server.session.post(f"{server.base}/api/upload", json=upload, timeout=30).status_code == 200
        assert put(server.client(), server.base, "crash2", new) in (0, 502)  # the worker died mid-request
        server.app.wait_until(lambda: http_ok(f"{server.base}/api/health"))  # gunicorn replaced it
        media = server.media("crash2")
        expected = old if failpoint == "content.before_switch" else new
        assert media["store_status"] == "READY"
        assert server.content("crash2") == expected
        assert server.verify("crash2")["ok"] is True
        leftover = len(new) if failpoint == "content.before_switch" else len(old)
        report = server.manage("collect_orphans", "--older-than", "0", "--list")
        assert f"1 orphaned objects, {leftover / 1024:.1f} KiB ({leftover} bytes)" in report, report
        server.manage("collect_orphans", "--older-than", "0", "--delete")
        assert "0 orphaned objects" in server.manage("collect_orphans", "--older-than", "0")
        assert server.content("crash2") == expected
    finally:
        server.close()
