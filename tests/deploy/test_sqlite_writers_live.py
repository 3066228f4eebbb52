"""SQLite writers in line under real gunicorn: 4 gthread workers of 8 threads, 64 clients writing at
once (creates and tag updates), on the server's SQLite database (skipped on PostgreSQL, which has
no single write lock).

Every write is answered 200 (no 503 "database is locked", no 500), every acknowledged write is in
the database afterwards with its tags, and the workers queued through the lock file beside the
database (mediastore/sqlite_backend/writequeue.py), which is what keeps an unlucky writer from
losing SQLite's race for the lock again and again.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.processes import new_session
from tests.support.servers import Server

pytestmark = pytest.mark.e2e

WORKERS = 4
THREADS = 8
WRITERS = 64
WRITES_EACH = 6  # a create and a tag update, three times
DEADLINE_SECONDS = 300
STORE = {"type": "FilesystemStore", "bucket": "writers-live"}


@pytest.fixture(scope="module")
def server():
    srv = Server(
        "mediastore-sqlite-writers-", WORKERS, GUNICORN_WORKER_CLASS="gthread", GUNICORN_THREADS=str(THREADS)
    )
    try:
        yield srv
    finally:
        srv.close()


def writer(server: Server, number: int, start: threading.Barrier, acknowledged: list, failures: list) -> None:
    session = new_session(True)
    session.headers["Authorization"] = server.session.headers["Authorization"]
    base = server.base
    start.wait(timeout=60)
    for op in range(WRITES_EACH // 2):
        pid = f"writer{number}-{op}"
        response = session.post(
            f"{base}/api/media", json={"pid": pid, "pid_type": "pidtype", "store_config": STORE}, timeout=120
        )
        if response.status_code != 200:
            failures.append(("create", pid, response.status_code, response.text[:300]))
            continue
        acknowledged.append((pid, None))
        tag = f"w{number}-{op}"
        response = session.patch(
            f"{base}/api/media/update/tags", json=[{"pid": pid, "tags": [tag]}], timeout=120
        )
        if response.status_code != 200 or response.json()["failures"]:
            failures.append(("tags", pid, response.status_code, response.text[:300]))
            continue
        acknowledged.append((pid, tag))


def test_64_concurrent_writers_are_all_answered_and_all_kept(server):
    if server.database:
        pytest.skip("SQLite's single write lock; PostgreSQL writers do not queue for one")
    acknowledged: list[tuple[str, str | None]] = []
    failures: list = []
    start = threading.Barrier(WRITERS)
    threads = [
        threading.Thread(target=writer, args=(server, n, start, acknowledged, failures))
        for n in range(WRITERS)
    ]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1, DEADLINE_SECONDS - (time.monotonic() - began)))
    assert not any(thread.is_alive() for thread in threads), "writers did not finish"
    assert failures == [], failures[:5]
    assert len(acknowledged) == WRITERS * WRITES_EACH

    kept = {
        media["pid"]: set(media["tags"])
        for media in server.session.get(f"{server.base}/api/media/dump", timeout=120).json()
    }
    for pid, tag in acknowledged:
        assert pid in kept, f"acknowledged create of {pid} is missing"
        if tag is not None:
            assert tag in kept[pid], f"acknowledged tag {tag} of {pid} is missing"
    assert (server.workdir / "data" / "db.sqlite3-writers").exists(), "the workers did not queue"
    assert "database is locked" not in server.app.log()
