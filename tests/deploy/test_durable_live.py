"""Durable names, observed for real: gunicorn (started by ``bin/start``) runs under
``strace -f -y``, bytes are stored in every kind of local store and through a resumable upload,
and the trace must show, in the worker that wrote, an fsync of the directory after the rename into
it (and of the parent of every directory created on the way). Without those fsyncs a power cut
after the media turned READY could forget the file's name (mediastore/durable.py); removing any of
them fails this test.
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
def traced_server():
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
