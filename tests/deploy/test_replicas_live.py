"""Replicas on a real deployment: gunicorn (``bin/start``), a moto S3 server over HTTP, and
``manage.py replicate`` workers as processes of their own, on the suite's database.

Sizes are kept small for a slow CI box: 40 media instead of the issue's 200, and an 8 MiB object
instead of 50 MiB for the copies that are interrupted (the worker's copy is slowed down by the
``replica.copy_chunk=slow`` failpoint, 0.5 s per MiB, so the test can act while it runs).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import REPO, Process
from tests.support.s3 import MotoProcess, isolated_environment
from tests.support.servers import Server, sha256_label

pytestmark = pytest.mark.e2e

EIGHT_MIB = 8 << 20


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    moto = MotoProcess(
        tmp_path_factory.mktemp("moto"), isolated_environment(dict(os.environ), drop_proxies=True)
    )
    moto.start()
    try:
        yield moto
    finally:
        moto.stop()


@pytest.fixture(scope="module")
def server(moto):
    server = Server("mediastore-replicas-", 2)
    try:
        server.add_s3(moto.server)
        yield server
    finally:
        server.close()


def store_root(server: Server) -> Path:
    """The storage root the server resolves local stores in (its settings compute it)."""
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.MEDIASTORE_STORAGE_ROOT)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=server.env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def worker(server: Server, name: str, *args: str, **env: str) -> Process:
    return Process(
        name,
        [sys.executable, "manage.py", "replicate", "--poll-seconds", "0.3", *args],
        {**server.env, **env},
        server.workdir / f"{name}.log",
    )


def put(server: Server, pid: str, data: bytes) -> dict:
    response = server.session.put(f"{server.base}/api/media/{pid}/content", data=data, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def copies(server: Server, pid: str) -> list[dict]:
    response = server.session.get(f"{server.base}/api/media/{pid}/replicas", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def ask(server: Server, pid: str, store: dict) -> dict:
    response = server.session.post(
        f"{server.base}/api/media/{pid}/replicas", json={"store_config": store}, timeout=30
    )
    assert response.status_code == 202, response.text
    return response.json()


def wait_for(condition, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def bucket(moto, name: str) -> str:
    moto.server.client().create_bucket(Bucket=name)
    return name


def test_a_rule_and_two_workers_copy_40_media_to_s3_and_a_second_filesystem_store(server, moto):
    ship = {"type": "FilesystemStore", "bucket": "ship"}
    shore = {"type": "BucketStore", "bucket": f"{bucket(moto, 'shore')}/copies", "s3_url": moto.server.url}
    backup = {"type": "FilesystemStore", "bucket": "backup"}
    data = {f"fleet/{n}": os.urandom(1000 + n * 97) for n in range(40)}
    for pid, content in data.items():
        server.create(pid, ship, tags=["fleet"])
        put(server, pid, content)
    ship_pk = server.media("fleet/0")["store_config"]["pk"]
    rule = {
        "name": "fleet to shore",
        "match": {"tags": ["fleet"], "store": ship_pk},
        "copies": [shore, backup],
    }
    response = server.session.post(f"{server.base}/api/rules", json=rule, timeout=30)
    assert response.status_code == 200, response.text
    workers = [worker(server, f"worker-{n}") for n in (1, 2)]
    try:
        wait_for(
            lambda: all(
                len(cs := copies(server, pid)) == 3 and all(c["state"] == "GOOD" for c in cs) for pid in data
            ),
            what="every copy GOOD",
        )
    finally:
        for w in workers:
            w.stop()
    for pid, content in data.items():
        primary, *replicas = copies(server, pid)
        assert len(replicas) == 2
        assert {c["checksum"] for c in (primary, *replicas)} == {sha256_label(content)}
    root = store_root(server)
    for pid in list(data)[:5]:
        [fs_copy] = [c for c in copies(server, pid) if c["store_config"]["bucket"] == "backup"]
        assert (root / "backup" / fs_copy["store_key"]).read_bytes() == data[pid]
    logs = [w.log() for w in workers]
    copied = [sum(line.startswith("good ") for line in log.splitlines()) for log in logs]
    assert sum(copied) == 80, logs  # each copy made once, by one of the two workers


def test_verify_repair_restores_a_corrupt_and_a_deleted_primary(server):
    ship = {"type": "FilesystemStore", "bucket": "ship2"}
    backup = {"type": "FilesystemStore", "bucket": "backup2"}
    data = {"rot/1": b"one product " * 1000, "gone/2": b"another product " * 1000}
    for pid, content in data.items():
        server.create(pid, ship)
        put(server, pid, content)
        ask(server, pid, backup)
    server.manage("replicate", "--once")
    root = store_root(server)
    paths = {pid: root / "ship2" / copies(server, pid)[0]["store_key"] for pid in data}
    paths["rot/1"].write_bytes(b"X" + data["rot/1"][1:])
    paths["gone/2"].unlink()

    done = subprocess.run(
        [sys.executable, "manage.py", "verify", "--no-progress", "--repair"],
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "REPAIRED rot/1" in done.stdout and "REPAIRED gone/2" in done.stdout
    for pid, content in data.items():
        primary = copies(server, pid)[0]
        assert primary["state"] == "GOOD"
        assert (root / "ship2" / primary["store_key"]).read_bytes() == content
        assert server.content(pid) == content
    feed = server.session.get(f"{server.base}/api/events", params={"types": "replica.repaired"}, timeout=30)
    repaired = [item["pid"] for item in feed.json()["items"]]
    assert sorted(repaired) == sorted(data)


def slow_copy_started(server: Server, directory: str) -> bool:
    path = store_root(server) / directory
    return path.is_dir() and any(p.name.startswith(".tmp-") for p in path.iterdir())


def test_new_bytes_written_during_a_copy_never_leave_the_old_bytes_good(server):
    ship = {"type": "FilesystemStore", "bucket": "ship3"}
    mirror = {"type": "FilesystemStore", "bucket": "mirror3"}
    old, new = os.urandom(EIGHT_MIB), b"the new bytes"
    server.create("race/1", ship)
    put(server, "race/1", old)
    ask(server, "race/1", mirror)
    slow = worker(server, "slow-worker", "--once", MEDIASTORE_FAILPOINTS="replica.copy_chunk=slow")
    try:
        wait_for(lambda: slow_copy_started(server, "mirror3"), 60, "the copy to start")
        put(server, "race/1", new)  # while the old bytes are being copied
        slow.proc.wait(timeout=120)
    finally:
        slow.stop()
    assert "stale race/1" in slow.log(), slow.log()
    replica = copies(server, "race/1")[1]
    assert replica["state"] != "GOOD"  # the old bytes were copied, and not marked GOOD

    server.manage("replicate", "--once")

    replica = copies(server, "race/1")[1]
    assert replica["state"] == "GOOD" and replica["checksum"] == sha256_label(new)
    assert (store_root(server) / "mirror3" / replica["store_key"]).read_bytes() == new


def test_a_worker_killed_mid_copy_is_taken_over_by_a_second_one(server):
    ship = {"type": "FilesystemStore", "bucket": "ship4"}
    mirror = {"type": "FilesystemStore", "bucket": "mirror4"}
    data = os.urandom(EIGHT_MIB)
    server.create("killed/1", ship)
    put(server, "killed/1", data)
    ask(server, "killed/1", mirror)
    lease = {"MEDIASTORE_REPLICA_LEASE_SECONDS": "3"}
    first = worker(server, "killed-worker", MEDIASTORE_FAILPOINTS="replica.copy_chunk=slow", **lease)
    try:
        wait_for(lambda: slow_copy_started(server, "mirror4"), 60, "the copy to start")
        os.killpg(first.pid, signal.SIGKILL)
        first.proc.wait(timeout=30)
    finally:
        first.stop()
    assert copies(server, "killed/1")[1]["state"] == "COPYING"  # no GOOD replica without its bytes

    second = worker(server, "second-worker", **lease)
    try:
        wait_for(lambda: copies(server, "killed/1")[1]["state"] == "GOOD", 60, "the second worker's copy")
    finally:
        second.stop()
    replica = copies(server, "killed/1")[1]
    assert replica["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (store_root(server) / "mirror4" / replica["store_key"]).read_bytes() == data


def test_with_s3_down_media_are_served_from_their_filesystem_replica(server, tmp_path):
    """Last in the module: the media left with a BAD primary make later worker runs report failed
    repairs. A moto server of this test's own is stopped; the media whose primary is there are read from
    their filesystem replica, intact, with the header naming the replica."""
    own = MotoProcess(tmp_path, isolated_environment(dict(os.environ), drop_proxies=True))
    s3 = own.start()
    try:
        server.add_s3(s3)
        s3.client().create_bucket(Bucket="primary")
        primary = {"type": "BucketStore", "bucket": "primary/p", "s3_url": s3.url}
        local = {"type": "FilesystemStore", "bucket": "landed"}
        data = {f"s3media/{n}": os.urandom(20000 + n) for n in range(3)}
        for pid, content in data.items():
            server.create(pid, primary)
            put(server, pid, content)
            ask(server, pid, local)
        server.manage("replicate", "--once")
        local_pk = copies(server, "s3media/0")[1]["store_config"]["pk"]
    finally:
        own.stop()

    for pid, content in data.items():
        response = server.session.get(f"{server.base}/api/media/{pid}/content", timeout=120)
        assert response.status_code == 200, response.text
        assert response.content == content
        assert response.headers["X-Mediastore-Copy"] == f"replica; store={local_pk}"
        download = server.session.get(f"{server.base}/api/download/{pid}", timeout=120)
        assert download.status_code == 200 and download.headers["X-Mediastore-Copy"].startswith("replica")
    assert copies(server, "s3media/0")[0]["state"] == "BAD"
