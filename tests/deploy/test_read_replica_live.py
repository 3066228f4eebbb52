"""A PostgreSQL streaming replica behind a real server (mediastore/dbrouting.py, docs/scaling.md):
a throw-away primary and its replica (``pg_basebackup -R``, tests/support/pgcluster.py) on loopback
ports of their own, and gunicorn (2 workers, after bin/start's migrate and account steps) with
``POSTGRES_REPLICA_HOST``.

- searches, lists, dumps, the events feed and /api/stats are served by the replica: its own
  statistics (``pg_stat_statements`` on the standby counts the statements run there) grow, and so does
  ``mediastore_db_reads_total{database="replica"}``, by exactly the requests made;
- a client that writes and searches at once sees its write, while the replica is held 1.5 s behind
  (``recovery_min_apply_delay``) and a client that did not write does not see it yet (so the test
  would fail without read-your-writes); a second client sees it by echoing X-Mediastore-Read-After;
- the replica stopped mid-run changes no answer (the primary serves), and it serves again once back;
- docs/scaling.md's recipe runs as written.

Runs in the PostgreSQL suite only (the SQLite suite skips it: the test brings its own PostgreSQL).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest
import requests

from mediastore.dbrouting import HEALTH_SECONDS
from tests.support.pgcluster import Cluster, pg_bin
from tests.support.ports import free_port
from tests.support.processes import REPO, fetch, http_ok
from tests.support.servers import login, make_workdir, remove_workdir, server_env, skip_or_fail, start_app

pytestmark = pytest.mark.e2e

HEADER = "X-Mediastore-Read-After"
APPLY_DELAY = "1500ms"
STORE = {"type": "FilesystemStore", "bucket": "replica-test"}


@pytest.fixture(scope="module")
def site():
    if not os.environ.get("POSTGRES_DB"):
        pytest.skip("the read replica is tested in the PostgreSQL suite run")
    if pg_bin() is None:
        skip_or_fail("PostgreSQL's server programs (initdb, pg_basebackup) are not installed")
    cluster = Cluster()
    workdir = make_workdir("mediastore-replica-")
    app = None
    try:
        cluster.start()
        with psycopg.connect(**cluster.params(cluster.primary_port), autocommit=True) as conn:
            conn.execute("CREATE DATABASE mediastore")
        with psycopg.connect(**cluster.params(cluster.primary_port, "mediastore"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")  # replicated to the standby
        cluster.wait_streaming()
        port = free_port()
        env = server_env(workdir, port, 2, GUNICORN_TIMEOUT="60", **cluster.env("mediastore"))
        # bin/start's steps but collectstatic (no page here needs the hashed files), which takes
        # longer than the rest on a busy machine.
        for step in (["migrate", "-v0"], ["ensure_serviceuser"]):
            done = subprocess.run(
                [sys.executable, "manage.py", *step], cwd=REPO, env=env, capture_output=True
            )
            assert done.returncode == 0, done.stderr.decode()
        app = start_app(workdir, env, via_start_script=False)
        base = f"http://127.0.0.1:{port}"
        app.wait_until(lambda: http_ok(f"{base}/api/health"))
        writer = login(base)
        response = writer.post(f"{base}/api/identifier", json={"name": "pidtype", "pattern": ""}, timeout=30)
        assert response.status_code == 200, response.text
        yield {"base": base, "cluster": cluster, "writer": writer, "app": app}
    finally:
        if app is not None:
            app.stop()
        remove_workdir(workdir)
        cluster.close()


def replica_sql(site, sql: str):
    params = site["cluster"].params(site["cluster"].replica_port, "mediastore")
    with psycopg.connect(**params, autocommit=True) as conn:
        return conn.execute(sql).fetchone()


def primary_sql(site, sql: str, dbname: str = "mediastore"):
    with psycopg.connect(
        **site["cluster"].params(site["cluster"].primary_port, dbname), autocommit=True
    ) as conn:
        return conn.execute(sql).fetchone()


def wait_replayed(site) -> None:
    """Until the replica has replayed everything the primary has written (bounded), and the
    server's processes have checked it since (their last check is at most HEALTH_SECONDS old)."""
    target = primary_sql(site, "SELECT pg_current_wal_lsn()")[0]
    for _ in range(200):
        if replica_sql(site, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")[0]:
            time.sleep(HEALTH_SECONDS + 0.2)
            return
        time.sleep(0.1)
    raise AssertionError("the replica did not catch up with the primary")


def reads(site) -> dict[tuple[str, str], float]:
    text = fetch(f"{site['base']}/metrics").text
    found = re.findall(r'^mediastore_db_reads_total\{database="(\w+)",reason="(\w*)"\} (\S+)$', text, re.M)
    return {(database, reason): float(value) for database, reason, value in found}


def replica_statements(site) -> int:
    """Statements on the media table run by the replica itself (its pg_stat_statements)."""
    return replica_sql(
        site,
        "SELECT COALESCE(sum(calls), 0) FROM pg_stat_statements"
        " WHERE query LIKE '%media_media%' AND query NOT LIKE '%pg_stat_statements%'",
    )[0]


def create(session: requests.Session, base: str, pid: str, tag: str) -> requests.Response:
    body = {"pid": pid, "pid_type": "pidtype", "store_config": STORE, "tags": [tag]}
    return session.post(f"{base}/api/media", json=body, timeout=30)


def search(session: requests.Session, base: str, tag: str, **headers) -> list[str]:
    response = session.post(f"{base}/api/media/search", json={"tags": [tag]}, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return [media["pid"] for media in response.json()]


def set_apply_delay(site, delay: str) -> None:
    cluster = site["cluster"]
    conf = cluster.replica_dir / "postgresql.auto.conf"
    lines = [
        line for line in conf.read_text().splitlines() if not line.startswith("recovery_min_apply_delay")
    ]
    conf.write_text("\n".join([*lines, f"recovery_min_apply_delay = '{delay}'", ""]))
    cluster.run("pg_ctl", "-D", str(cluster.replica_dir), "reload")
    for _ in range(100):
        if replica_sql(site, "SHOW recovery_min_apply_delay")[0] == delay:
            return
        time.sleep(0.1)


def test_reads_of_the_routed_kinds_are_served_by_the_replica(site):
    base, writer = site["base"], site["writer"]
    tag = f"seen-{uuid.uuid4().hex[:8]}"
    for n in range(3):
        assert create(writer, base, f"replica-read-{tag}-{n}", tag).status_code == 200
    wait_replayed(site)
    reader = login(base)  # a client that wrote nothing: nothing holds it on the primary
    before, statements_before = reads(site), replica_statements(site)
    assert sorted(search(reader, base, tag)) == [f"replica-read-{tag}-{n}" for n in range(3)]
    for path in ("/api/media?limit=5", "/api/media/dump", "/api/events?limit=5", "/api/stats"):
        response = reader.get(f"{base}{path}", timeout=30)
        assert response.status_code == 200, (path, response.text)
    after = reads(site)
    assert after.get(("replica", ""), 0) - before.get(("replica", ""), 0) == 5
    assert sum(after.values()) - sum(before.values()) == 5, "every routed read went to the replica"
    assert replica_statements(site) >= statements_before + 5
    # A single media (not a routed read) and the token lookups stay on the primary.
    response = reader.get(f"{base}/api/media/replica-read-{tag}-0", timeout=30)
    assert response.status_code == 200
    assert sum(reads(site).values()) == sum(after.values())


def test_a_client_that_writes_then_searches_sees_its_write_on_a_lagging_replica(site):
    base, writer = site["base"], login(site["base"])
    bystander, echoing = login(base), login(base)
    set_apply_delay(site, APPLY_DELAY)
    try:
        # A recent commit replayed, so that the replica counts as within MEDIASTORE_REPLICA_MAX_LAG_S
        # (its lag is the age of the last commit it replayed while more WAL waits).
        assert create(writer, base, f"ryw-warm-{uuid.uuid4().hex[:8]}", "warm").status_code == 200
        wait_replayed(site)
        unseen_by_bystander = 0
        for _ in range(6):
            tag = f"ryw-{uuid.uuid4().hex[:8]}"
            response = create(writer, base, f"ryw-{tag}", tag)
            assert response.status_code == 200, response.text
            position = response.headers[HEADER]
            unseen_by_bystander += search(bystander, base, tag) == []
            assert search(writer, base, tag) == [f"ryw-{tag}"], "the writer must see its own write"
            assert search(echoing, base, tag, **{HEADER: position}) == [f"ryw-{tag}"]
        # The replica really was behind: a client with no claim on the write read the replica.
        assert unseen_by_bystander >= 1
        assert reads(site).get(("primary", "own_write"), 0) >= 1
    finally:
        set_apply_delay(site, "0")


def test_a_replica_stopped_mid_run_changes_no_answer(site):
    base, writer = site["base"], site["writer"]
    tag = f"stop-{uuid.uuid4().hex[:8]}"
    expected = sorted(f"stop-{tag}-{n}" for n in range(4))
    for pid in expected:
        assert create(writer, base, pid, tag).status_code == 200
    wait_replayed(site)
    answers: list[tuple[int, list[str] | str]] = []
    stop = threading.Event()
    readers = [login(base) for _ in range(3)]  # logged in first: a login hashes a password, slowly

    def searching(reader: requests.Session) -> None:
        for _ in range(5000):  # bounded; ends when stop is set
            if stop.is_set():
                return
            response = reader.post(f"{base}/api/media/search", json={"tags": [tag]}, timeout=30)
            ok = response.status_code == 200
            answers.append(
                (response.status_code, sorted(m["pid"] for m in response.json()) if ok else response.text)
            )

    def until(condition, what: str) -> None:
        for _ in range(600):  # bounded: 60 s
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"gave up waiting: {what}")

    threads = [threading.Thread(target=searching, args=(reader,)) for reader in readers]
    for thread in threads:
        thread.start()
    try:
        until(lambda: len(answers) >= 6, "searches before the stop")
        before = reads(site)
        site["cluster"].stop_replica()
        answered = len(answers)
        until(lambda: len(answers) >= answered + 12, "searches while the replica is down")
        stopped = reads(site)
        site["cluster"].start_replica()
        site["cluster"].wait_streaming()
        until(
            lambda: reads(site).get(("replica", ""), 0) > stopped.get(("replica", ""), 0), "the replica back"
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert all(answer == (200, expected) for answer in answers), [a for a in answers if a != (200, expected)][
        :3
    ]

    def by(database: str, counts: dict) -> float:
        return sum(value for (db, _), value in counts.items() if db == database)

    assert by("primary", stopped) >= by("primary", before) + 12, (
        "the primary served while the replica was down"
    )


def test_the_recipe_of_docs_scaling_runs_as_written(site):
    page = (REPO / "docs" / "scaling.md").read_text()
    block = page.split("## Trying it on one machine", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    token = site["writer"].headers["Authorization"]
    env = {
        "PATH": os.environ["PATH"],
        "MS": site["base"],
        "A": f"Authorization: {token}",
        "H": "Content-Type: application/json",
    }
    done = subprocess.run(["bash", "-c", block], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"(?i)x-mediastore-read-after: [0-9A-F]+/[0-9A-F]+\r?", lines[0]), lines
    assert '"pid": "scaled-1"' in lines[1] or '"pid":"scaled-1"' in lines[1], lines[1][:300]
    assert lines[2:] and all(line.startswith("mediastore_db_reads_total{database=") for line in lines[2:])
