"""The pipeline's own client, amplify-storage-utils' ``MediaStore``, unchanged, on every store type.

Regression: its ``put`` first posts the mediadata without base64 "to see whether it gets a
presigned URL" and then posts again with base64 for the same pid; on any store but a BucketStore
the first post was 422 and ``put`` failed. The client runs as the pipeline runs it (a scoped token,
``put`` of bytes, ``get``, ``exists``, ``delete``, ``keys``), from a pinned commit of its
repository's snapshot, imported in a subprocess from an extracted tree (never copied into this
repository), against gunicorn with 4 workers on the suite's database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest

from stores.backends import STORE_TYPES
from tests.support.servers import MIRROR, Server, skip_or_fail

pytestmark = pytest.mark.e2e

STORAGE_UTILS_GIT = MIRROR / "WHOIGit+amplify-storage-utils" / "repo"
PINNED = "cfa5d6f12c301bf72302522f920c2cca6817318a"  # version 1.8

CLIENT_RUN = r"""
import json, os, sys
import httpx
from storage.mediastore import MediaStore

base, token, store_json, prefix = sys.argv[1:5]
store = json.loads(store_json)
out = {}
with MediaStore(base, token=token, store_config=store, pid_type="pidtype") as ms:
    data = {f"{prefix}-{i}": os.urandom(1000 * (i + 1)) + bytes([i]) for i in range(3)}
    for key, value in data.items():
        ms.put(key, value)  # bytes: httpx sends a bytearray as an iterable of ints
    out["got"] = all(bytes(ms.get(key)) == value for key, value in data.items())
    out["exists"] = [ms.exists(key) for key in data]
    out["listed"] = sorted(k for k in ms.keys() if k.startswith(prefix))
    first = next(iter(data))
    ms.put(first, data[first])  # a retry of the same put
    try:
        ms.put(first, b"other bytes")
        out["other"] = "accepted"
    except httpx.HTTPStatusError as exc:
        out["other"] = exc.response.status_code
    out["after_retries"] = bytes(ms.get(first)) == data[first]
    ms.delete(first)
    out["exists_after_delete"] = ms.exists(first)
    try:
        ms.delete(first)
        out["delete_again"] = "no error"
    except KeyError:
        out["delete_again"] = "KeyError"
    try:
        ms.get(first)
        out["get_deleted"] = "no error"
    except httpx.HTTPStatusError as exc:
        out["get_deleted"] = exc.response.status_code
print("RESULT=" + json.dumps(out))
"""


def extract_pinned(into) -> None:
    if not STORAGE_UTILS_GIT.is_dir():
        skip_or_fail(f"no snapshot of amplify-storage-utils at {STORAGE_UTILS_GIT}")
    into.mkdir(parents=True)
    archive = into.with_suffix(".tar")
    with open(archive, "wb") as out:
        done = subprocess.run(
            ["git", f"--git-dir={STORAGE_UTILS_GIT}", "archive", PINNED], stdout=out, timeout=60
        )
    if done.returncode != 0:
        skip_or_fail(f"the snapshot at {STORAGE_UTILS_GIT} lacks the pinned commit {PINNED}")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()


@pytest.fixture(scope="module")
def server(s3_server, tmp_path_factory):
    # The client first: a missing snapshot fails the test before a server is started (it was left
    # running when this failed after the start).
    client = tmp_path_factory.mktemp("storage-utils") / "tree"
    extract_pinned(client)
    srv = Server("mediastore-storage-utils-", 4)
    try:
        srv.add_s3(s3_server)
        srv.client_src = client / "src"
        yield srv
    finally:
        srv.close()


def store_body(store_type: str, s3_server, s3_bucket: str) -> dict:
    if store_type == "BucketStore":
        return {"type": store_type, "bucket": f"{s3_bucket}/pipeline", "s3_url": s3_server.url}
    suffix = {"ZipStore": ".zip", "SqliteStore": ".sqlite"}.get(store_type, "")
    return {"type": store_type, "bucket": f"pipeline-{store_type.lower()}{suffix}"}


@pytest.mark.parametrize("store_type", STORE_TYPES)
def test_storage_utils_media_store_works_on_every_store(server, s3_server, s3_bucket, tmp_path, store_type):
    created = server.session.post(
        f"{server.base}/api/store", json=store_body(store_type, s3_server, s3_bucket), timeout=30
    )
    assert created.status_code == 200, created.text
    listed = server.session.get(f"{server.base}/api/stores", timeout=30).json()
    [store] = [s for s in listed if s["pk"] == created.json()["pk"]]  # as GET /api/stores gives it
    script = tmp_path / "run_client.py"
    script.write_text(CLIENT_RUN)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}  # loopback only
    env.update(PYTHONPATH=str(server.client_src), NO_PROXY="127.0.0.1,localhost")
    # The pipeline's own token: read, write and delete, nothing else, expiring in an hour.
    made = server.session.post(
        f"{server.base}/api/tokens",
        json={"name": f"pipeline-{store_type}", "scopes": ["read", "write", "delete"], "expires_in": 3600},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    prefix = f"pipeline-{store_type.lower()}"
    args = [sys.executable, str(script), server.base, token, json.dumps(store), prefix]
    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    out = json.loads(result.stdout.split("RESULT=", 1)[1])
    assert out == {
        "got": True,
        "exists": [True, True, True],
        "listed": [f"{prefix}-{i}" for i in range(3)],
        "other": 409,
        "after_retries": True,
        "exists_after_delete": False,
        "delete_again": "KeyError",
        "get_deleted": 404,
    }
    for i in (1, 2):  # what the client stored is what the server holds, verified
        media = server.media(f"{prefix}-{i}")
        assert media["store_status"] == "READY" and media["store_config"]["pk"] == store["pk"]
        assert server.verify(f"{prefix}-{i}")["ok"] is True
