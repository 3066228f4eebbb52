"""With several gunicorn workers, DictStore objects must be found by every worker.

Regression: the earlier server kept its RAM store inside one process, so with more than one worker
a download landed on a worker that never saw the upload (the published client's round trip
answered 502). Here gunicorn runs with 4 workers (started by bin/start on a throw-away PostgreSQL
database), once with MEDIASTORE_REDIS_URL set and once without it: the production default, the RAM
store in /dev/shm, shared by the host's workers.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from stores.backends.redisstore import KEY_PREFIX
from tests.support.ports import free_port
from tests.support.processes import REPO, fetch, http_ok, new_session
from tests.support.servers import (
    REDIS_URL,
    SERVICE_USER,
    ThrowAwayDatabase,
    login,
    make_workdir,
    ram_dir_of,
    remove_workdir,
    require_operations,
    require_redis,
    server_env,
    start_app,
)

pytestmark = pytest.mark.e2e

WORKERS = 4


@pytest.fixture(scope="module", params=["redis", "ram-dir"])
def server(request):
    """``redis``: MEDIASTORE_REDIS_URL set. ``ram-dir``: nothing set about the RAM store at all."""
    with_redis = request.param == "redis"
    if with_redis:
        require_redis()
    database = ThrowAwayDatabase()
    database.create()
    workdir = make_workdir("mediastore-workers-")
    port = free_port()
    extra = {"MEDIASTORE_REDIS_URL": REDIS_URL} if with_redis else {}
    env = server_env(workdir, port, WORKERS, **extra, **database.env())
    ram_dir = None if with_redis else ram_dir_of(env)
    app = start_app(workdir, env)
    try:
        app.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/api/health"))
        yield {"base": f"http://127.0.0.1:{port}", "port": port, "app": app, "env": env, "ram_dir": ram_dir}
    finally:
        app.stop()
        remove_workdir(workdir)
        if ram_dir is not None:
            remove_workdir(ram_dir)
        database.drop()


def test_start_script_prepared_the_database_and_the_accounts(server):
    log = server["app"].log()
    assert "Applying" in log or "No migrations to apply" in log
    assert f"service user '{SERVICE_USER}': created" in log
    assert log.count("DictStore (RAM store) objects are kept") == 1
    assert log.count("Booting worker") == WORKERS


def test_health_on_postgresql(server):
    response = fetch(f"{server['base']}/api/health", timeout=10)
    assert response.json() == {"status": "ok", "database": "ok"}


def test_the_images_healthcheck_command_works(server):
    """Runs the Dockerfile's HEALTHCHECK command (its port changed to this server's)."""
    dockerfile = (REPO / "Dockerfile").read_text()
    command = json.loads(re.search(r"^\s*CMD (\[\"python\".*\])$", dockerfile, flags=re.MULTILINE).group(1))
    code = command[2].replace("127.0.0.1:8000", f"127.0.0.1:{server['port']}")
    assert code != command[2]
    env = dict(server["env"])
    for hosts, ok in [("localhost,127.0.0.1", True), (".example.org,localhost", False), ("", True)]:
        env["DJANGO_ALLOWED_HOSTS"] = hosts
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=30)
        # The server allows localhost and 127.0.0.1 only; the check sends the first entry as Host.
        assert (result.returncode == 0) is ok, result.stderr


def test_upload_once_then_every_download_finds_the_bytes(server):
    require_operations(("post", "/api/upload"), ("get", "/api/download/{pid}"))
    base = server["base"]
    session = login(base)
    assert session.post(f"{base}/api/identifier", json={"name": "local", "pattern": ""}, timeout=30).ok
    namespace = f"e2e-{uuid.uuid4().hex}"
    pid = f"workers-{uuid.uuid4().hex}"
    data = os.urandom(2 << 20)
    body = {
        "mediadata": {
            "pid": pid,
            "pid_type": "local",
            "store_config": {"type": "DictStore", "bucket": namespace},
        },
        "base64": base64.b64encode(data).decode(),
    }
    try:
        response = session.post(f"{base}/api/upload", json=body, timeout=60)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "READY"

        def download(_: int) -> bytes:
            # A session per thread; each download opens its own connection.
            with new_session() as own:
                own.headers.update(session.headers)
                answer = own.get(f"{base}/api/download/{pid}", timeout=60)
            assert answer.status_code == 200, answer.text
            assert answer.json()["mediadata"]["pid"] == pid
            return base64.b64decode(answer.json()["base64"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(download, range(40)))
        assert len(results) == 40
        assert all(result == data for result in results)
        if server["ram_dir"] is not None:  # the bytes really are in the host's RAM directory
            files = [p for p in server["ram_dir"].rglob("*") if p.is_file()]
            assert [p.read_bytes() for p in files if p.stat().st_size == len(data)] == [data]
            assert str(server["ram_dir"]).startswith("/dev/shm/") or not os.path.isdir("/dev/shm")
    finally:
        if server["ram_dir"] is None:
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            for name in client.scan_iter(match=f"{KEY_PREFIX}{namespace}:*"):
                client.delete(name)

    # The access log names the worker of each request: the downloads really were spread out, and
    # some were served by a worker other than the one that took the upload.
    # A worker writes its access-log line after the response went out: give the last ones a moment.
    quoted = re.escape(pid)
    deadline = time.monotonic() + 10
    while True:
        log = server["app"].log()
        download_pids = re.findall(rf'"GET /api/download/{quoted} HTTP/1\.1" 200 .* pid=<(\d+)>', log)
        if len(download_pids) >= 40 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    upload_pids = set(re.findall(r'"POST /api/upload HTTP/1\.1" 200 .* pid=<(\d+)>', log))
    assert len(download_pids) == 40
    assert len(upload_pids) == 1
    assert set(download_pids) - upload_pids, "all downloads hit the uploading worker: the test proves nothing"
