"""The published Python client's base64 upload/download round trip against 2 workers, no Redis.

Regression: with the default 2 gunicorn workers and no MEDIASTORE_REDIS_URL, the DictStore object
an upload stored lived in one worker, and the download served by the other answered 502. First the
client's exact HTTP sequence with ``requests`` (read from media_store_client/apiclient.py: login,
create_identifier, upload_media, get_download_media), then the real client from its git snapshot,
imported in a subprocess from an extracted tree (never copied into this repository).
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

from tests.support.ports import free_port
from tests.support.processes import http_ok, new_session
from tests.support.servers import (
    MIRROR,
    PASSWORD,
    SERVICE_USER,
    ThrowAwayDatabase,
    extract,
    make_workdir,
    ram_dir_of,
    remove_workdir,
    server_env,
    start_app,
)

pytestmark = pytest.mark.e2e

WORKERS = 2
CLIENT_GIT = MIRROR / "WHOIGit+amplify-mediastore-client" / "repo"
SCHEMAS_GIT = MIRROR / "WHOIGit+amplify-schemas" / "repo"


@pytest.fixture(scope="module")
def server():
    database = ThrowAwayDatabase()
    database.create()
    workdir = make_workdir("mediastore-client-")
    port = free_port()
    env = server_env(workdir, port, WORKERS, **database.env())
    ram_dir = ram_dir_of(env)
    app = start_app(workdir, env)
    try:
        app.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/api/health"))
        with new_session() as session:
            token = session.post(
                f"http://127.0.0.1:{port}/api/login",
                json={"username": SERVICE_USER, "password": PASSWORD},
                timeout=30,
            ).json()["token"]
            created = session.post(
                f"http://127.0.0.1:{port}/api/identifier",
                json={"name": "local", "pattern": ""},  # what create_identifier("local") sends
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        assert created.status_code == 200, created.text
        yield {"base": f"http://127.0.0.1:{port}", "app": app, "workdir": workdir}
    finally:
        app.stop()
        remove_workdir(workdir)
        remove_workdir(ram_dir)
        database.drop()


def served_by(app, agent: str, count: int) -> list[tuple[str, str]]:
    """(request line, worker pid) of the access-log lines sent with User-Agent ``agent``.

    A worker writes its line after the response went out: wait a moment for the last ones.
    """
    pattern = re.compile(rf'"(\w+ \S+) HTTP/1\.1" \d+ .* "{re.escape(agent)}" \S+ pid=<(\d+)>')
    deadline = time.monotonic() + 10
    while True:
        found = pattern.findall(app.log())
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def assert_some_download_left_its_uploading_worker(app, agents: list[str], downloads_each: int = 1) -> None:
    crossed = 0
    for agent in agents:
        lines = served_by(app, agent, 1 + downloads_each)
        upload = next(pid for request, pid in lines if request == "POST /api/upload")
        downloads = {pid for request, pid in lines if request.startswith("GET /api/download/")}
        crossed += bool(downloads - {upload})
    assert crossed, "every download hit the worker that took its upload: the test proves nothing"


def download_again(
    base: str, pids_and_agents: list[tuple[str, str]], expected: dict[str, bytes], times: int
) -> None:
    """More downloads of each pid (same User-Agent), 4 at a time, each checked byte for byte: with
    several per media, some land on the other worker even when the machine is busy."""
    with new_session() as session:
        token = session.post(
            f"{base}/api/login", json={"username": SERVICE_USER, "password": PASSWORD}, timeout=30
        ).json()["token"]

    def fetch_one(item: tuple[str, str]) -> None:
        pid, agent = item
        headers = {"User-Agent": agent, "Authorization": f"Bearer {token}"}
        with new_session() as session:
            response = session.get(f"{base}/api/download/{pid}", headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        assert base64.b64decode(response.json()["base64"]) == expected[pid]

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fetch_one, [item for item in pids_and_agents for _ in range(times)]))


def test_the_clients_http_sequence_round_trips_base64_through_a_ram_store(server):
    """login, upload_media (POST /api/upload, model_dump of UploadSchemaInput), get_download_media
    (GET /api/download/{pid}, then base64.b64decode of the answer's "base64"), each request on a
    new connection as the client's module-level ``requests`` calls make them; 4 threads at once."""
    base = server["base"]
    namespace = f"client-{uuid.uuid4().hex}"

    def round_trip(index: int) -> str:
        pid = f"seq-{uuid.uuid4().hex}"
        data = os.urandom(100_000 + index)
        headers = {"User-Agent": f"client-sequence/{pid}"}
        with new_session() as session:
            login = session.post(
                f"{base}/api/login", json={"username": SERVICE_USER, "password": PASSWORD}, timeout=30
            )
        assert login.status_code == 200, login.text
        headers["Authorization"] = f"Bearer {login.json()['token']}"
        body = {
            "mediadata": {
                "pid": pid,
                "pid_type": "local",
                "store_config": {"type": "DictStore", "bucket": namespace, "s3_url": ""},
                "identifiers": {},
                "metadata": {},
                "tags": [],
            },
            "base64": base64.b64encode(data).decode(),
        }
        with new_session() as session:
            upload = session.post(f"{base}/api/upload", json=body, headers=headers, timeout=60)
        assert upload.status_code == 200, upload.text
        assert upload.json()["status"] == "READY"
        with new_session() as session:
            download = session.get(f"{base}/api/download/{pid}", headers=headers, timeout=60)
        assert download.status_code == 200, download.text
        assert download.json()["mediadata"]["pid"] == pid
        assert base64.b64decode(download.json()["base64"]) == data
        uploaded[pid] = data
        return pid, headers["User-Agent"]

    uploaded: dict[str, bytes] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(round_trip, range(12)))

    assert len(done) == 12
    download_again(base, done, uploaded, times=3)
    assert_some_download_left_its_uploading_worker(server["app"], [agent for _, agent in done], 4)


# The real client, run from its snapshot. Written to a file in the temp dir and run there; it holds
# no client code, it calls it.
CLIENT_RUN = """
import base64, json, os, sys
from concurrent.futures import ThreadPoolExecutor
from media_store_client import ApiClient

base, user, password, namespace, workdir = sys.argv[1:6]

def round_trip(index):
    pid = f"real-client-{index}-{os.getpid()}"
    path = os.path.join(workdir, pid + ".bin")
    data = os.urandom(50_000 + index)
    with open(path, "wb") as handle:
        handle.write(data)
    client = ApiClient(base, user, password)
    client.headers["User-Agent"] = "published-client/" + pid  # names the request in the access log
    uploaded = client.upload_media(path, pid, "local", {"type": "DictStore", "bucket": namespace})
    assert uploaded.status_code == 200 and uploaded.response["status"] == "READY", uploaded
    downloaded = client.get_download_media(pid)
    assert base64.b64decode(downloaded.response["base64"]) == data, pid
    return client.headers["User-Agent"]

with ThreadPoolExecutor(max_workers=4) as pool:
    agents = list(pool.map(round_trip, range(8)))
print("AGENTS=" + json.dumps(agents))
"""


def test_the_published_client_round_trips_base64_through_a_ram_store(server, tmp_path):
    if not CLIENT_GIT.is_dir():
        pytest.skip(f"no snapshot of the published client at {CLIENT_GIT}")
    if not SCHEMAS_GIT.is_dir():
        pytest.skip(
            "the published client imports schemas.mediastore from amplify-schemas, which is not on PyPI "
            f"(a git dependency) and has no snapshot at {SCHEMAS_GIT}"
        )
    extract(CLIENT_GIT, tmp_path / "client")
    extract(SCHEMAS_GIT, tmp_path / "schemas")
    script = tmp_path / "run_client.py"
    script.write_text(CLIENT_RUN)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}  # loopback only
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "client"), str(tmp_path / "schemas" / "src")])
    env["NO_PROXY"] = "127.0.0.1,localhost"
    namespace = f"real-client-{uuid.uuid4().hex}"
    args = [sys.executable, str(script), server["base"], SERVICE_USER, PASSWORD, namespace, str(tmp_path)]

    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    agents = json.loads(result.stdout.split("AGENTS=", 1)[1])
    assert len(agents) == 8
    # The objects the client stored, downloaded again by this test under the client's agents.
    pids = [(agent.split("/", 1)[1], agent) for agent in agents]
    expected = {pid: (tmp_path / f"{pid}.bin").read_bytes() for pid, _ in pids}
    download_again(server["base"], pids, expected, times=3)
    assert_some_download_left_its_uploading_worker(server["app"], agents, 4)
