"""Production-like storage, observed for real on one gunicorn (started under ``strace -f -y``):

- S3 credentials from the standard chain: the server's environment holds an IAM user's
  ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, moto checks signatures, and an S3 configuration
  without keys is probed, used and refused with a wrong environment key (none of that mocked).
- Durable names: bytes are stored in every kind of local store and through a resumable upload,
  and the trace must show, in the worker that wrote, an fsync of the directory after the rename
  into it (and of the parent of every directory created on the way). Without those fsyncs a power
  cut after the media turned READY could forget the file's name (mediastore/durable.py); removing
  any of them fails the test.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
import requests

from tests.support.ports import free_port
from tests.support.processes import REPO, Process, http_ok
from tests.support.s3 import isolated_environment
from tests.support.servers import (
    ThrowAwayDatabase,
    login,
    make_workdir,
    migrated_site,
    remove_workdir,
    server_env,
    skip_or_fail,
)

pytestmark = pytest.mark.e2e

TRACED = "fsync,fdatasync,rename,renameat,renameat2,mkdir,mkdirat"
LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<call>\w+)\((?P<args>.*)\)\s+=\s+(?P<result>-?\d+)")
FD_PATH = re.compile(r"^\d+<(?P<path>[^>]*)>")
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def traced_calls(trace: Path) -> dict[str, list[tuple[str, list[str]]]]:
    """pid -> [(call, [path arguments])] of the successful calls, in order."""
    calls: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    for line in trace.read_text(errors="replace").splitlines():
        match = LINE.match(line)
        if not match or match["result"] != "0":
            continue
        call, args = match["call"], match["args"]
        if call in ("fsync", "fdatasync"):
            fd = FD_PATH.match(args)
            paths = [fd["path"]] if fd else []
        else:
            paths = STRING.findall(args)
        calls[match["pid"]].append((call, paths))
    return calls


def synced_after(calls, pid: str, index: int, directory: str) -> bool:
    return any(c in ("fsync", "fdatasync") and p == [directory] for c, p in calls[pid][index + 1 :])


@pytest.fixture(scope="module")
def iam_keys(s3_server):
    """An IAM user's keys on moto, given to the server only through its environment."""
    return s3_server.create_credentials()


@pytest.fixture(scope="module")
def traced_server(s3_server, iam_keys):
    if shutil.which("strace") is None:
        skip_or_fail("strace is not installed (apt-get install strace)")
    database = ThrowAwayDatabase() if os.environ.get("POSTGRES_DB") else None
    workdir = make_workdir("mediastore-durable-")
    app = None
    try:
        site = migrated_site(workdir, database)  # creates the PostgreSQL database, if any
        port = free_port()
        extra = {k: v for k, v in site.items() if k.startswith("POSTGRES_")}
        env = server_env(workdir, port, 2, MEDIASTORE_RAM_DIR=str(workdir / "ram"), **extra)
        env = isolated_environment(env, drop_proxies=True)
        env.update(AWS_ACCESS_KEY_ID=iam_keys[0], AWS_SECRET_ACCESS_KEY=iam_keys[1])
        subprocess.run([sys.executable, "manage.py", "ensure_serviceuser"], cwd=REPO, env=env, check=True)
        trace = workdir / "strace.txt"
        # Only gunicorn is traced (set-up ran above); seccomp-bpf stops it at the traced calls only.
        args = ["strace", "-f", "--seccomp-bpf", "-qq", "-y", "-e", f"trace={TRACED}", "-o", str(trace)]
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        app = Process(
            "gunicorn",
            [*args, gunicorn, "-c", "gunicorn.conf.py", "mediastore.wsgi"],
            env,
            workdir / "gunicorn.log",
        )
        base = f"http://127.0.0.1:{port}"
        app.wait_until(lambda: http_ok(f"{base}/api/health"), timeout=120)
        session = login(base)
        session.post(f"{base}/api/identifier", json={"name": "pidtype", "pattern": ""}, timeout=30)
        yield base, session, app, Path(env["MEDIASTORE_DATA_DIR"]).resolve(), trace
    finally:
        if app is not None:
            app.stop()
        remove_workdir(workdir)
        if database:
            database.drop()


def upload(base: str, session: requests.Session, pid: str, store: dict) -> None:
    body = {
        "mediadata": {"pid": pid, "pid_type": "pidtype", "store_config": store},
        "base64": base64.b64encode(f"bytes of {pid}".encode()).decode(),
    }
    response = session.post(f"{base}/api/upload", json=body, timeout=60)
    assert response.status_code == 200 and response.json()["status"] == "READY", response.text


def tus_upload(base: str, session: requests.Session, pid: str, store: dict) -> None:
    data = b"resumable bytes " * 64
    meta = {"pid": pid, "pid_type": "pidtype", "store": str(store).replace("'", '"')}
    headers = {"Tus-Resumable": "1.0.0", "Authorization": session.headers["Authorization"]}
    encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
    created = requests.post(
        f"{base}/api/tus/",
        headers={**headers, "Upload-Length": str(len(data)), "Upload-Metadata": encoded},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    patched = requests.patch(
        created.headers["Location"],
        data=data,
        headers={**headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        timeout=60,
    )
    assert patched.status_code == 204, patched.text
    assert session.get(f"{base}/api/media/{pid}", timeout=30).json()["store_status"] == "READY"


def test_an_s3_config_without_keys_signs_with_the_servers_environment(traced_server, s3_server, s3_bucket):
    base, session, *_ = traced_server
    created = session.post(f"{base}/api/s3cfg", json={"url": s3_server.url}, timeout=30)
    assert created.status_code == 200, created.text
    store = {"type": "BucketStore", "bucket": f"{s3_bucket}/chain", "s3_url": s3_server.url}
    with s3_server.enforce_auth():
        response = session.post(f"{base}/api/store", json=store, timeout=60)  # probed with the chain's keys
        assert response.status_code == 200, response.text
        upload(base, session, f"chain-{uuid.uuid4().hex[:8]}", store)
        # the configuration's own keys, when given, win over the environment: wrong ones are refused
        other = f"{s3_server.url}/"
        wrong = {"url": other, "access_key": "AKIAWRONGWRONGWRONG0", "secret_key": "x"}
        assert session.post(f"{base}/api/s3cfg", json=wrong, timeout=30).status_code == 200
        refused = session.post(f"{base}/api/store", json={**store, "s3_url": other}, timeout=60)
    assert refused.status_code == 422 and "InvalidAccessKeyId" in refused.text, refused.text
    keys = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="chain/")
    assert keys.get("KeyCount") == 1  # the media's object; the probe's was deleted


def test_every_rename_and_new_directory_is_followed_by_a_directory_fsync(traced_server):
    base, session, app, data_dir, trace = traced_server
    run = uuid.uuid4().hex[:8]
    stores = {
        "fs": {"type": "FilesystemStore", "bucket": f"durable-{run}/fs"},
        "hashdir": {"type": "HashdirStore", "bucket": f"durable-{run}/hashdir"},
        "zip": {"type": "ZipStore", "bucket": f"durable-{run}/zip/objects.zip"},
        "sqlite": {"type": "SqliteStore", "bucket": f"durable-{run}/sqlite/objects.sqlite"},
    }
    for name, store in stores.items():
        upload(base, session, f"durable-{run}-{name}-1", store)
    upload(base, session, f"durable-{run}-zip-2", stores["zip"])  # appended in place: the archive is synced
    tus_upload(
        base, session, f"durable-{run}-tus", {"type": "FilesystemStore", "bucket": f"durable-{run}/tus"}
    )
    app.stop(signal.SIGTERM)  # strace has written every line once its tracees are gone

    calls = traced_calls(trace)
    root = str(data_dir / "stores" / f"durable-{run}")
    renames = mkdirs = 0
    for pid, sequence in calls.items():
        for index, (call, paths) in enumerate(sequence):
            if call.startswith("rename") and len(paths) == 2 and paths[1].startswith(root):
                renames += 1
                directory = os.path.dirname(paths[1])
                assert synced_after(calls, pid, index, directory), (
                    f"no fsync of {directory} after {call}{paths}"
                )
            if call.startswith("mkdir") and paths and paths[-1].startswith(root):
                mkdirs += 1
                parent = os.path.dirname(paths[-1].rstrip("/"))
                assert synced_after(calls, pid, index, parent), f"no fsync of {parent} after {call}{paths}"
    # fs, hashdir, tus (renamed into place) and the zip archive's first write (built aside, renamed)
    assert renames >= 4, f"only {renames} renames into {root} traced"
    assert mkdirs >= 8, f"only {mkdirs} directories created under {root} traced"

    def fsynced(path: str) -> bool:
        return any(c == "fsync" and p == [path] for sequence in calls.values() for c, p in sequence)

    assert fsynced(f"{root}/zip/objects.zip"), "the archive was not synced after a member was appended"
    assert fsynced(f"{root}/sqlite"), "the SQLite store's new file: its directory was not synced"
    assert fsynced(str(data_dir / "tus")), "the tus staging file's directory was not synced"
