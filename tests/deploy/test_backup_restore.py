"""Backup and restore as docs/production.md ("Running without Docker", 8.) says: ``pg_dump -Fc``
of the database and a tar of the data directory (without ``cache/``), taken with the server
stopped; restored with ``pg_restore --no-owner --role=<owner>`` into a fresh database owned by
that role and ``tar -x`` into a fresh data directory; a new server on them verifies and serves
every media unchanged.

The docs run the PostgreSQL tools as the ``postgres`` system user on the server's host; here they
connect to the test PostgreSQL (tests/support/postgres.py pg_params) with the same options.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.processes import http_ok
from tests.support.servers import (
    ThrowAwayDatabase,
    login,
    make_workdir,
    remove_workdir,
    server_env,
    skip_or_fail,
    start_app,
)

pytestmark = pytest.mark.e2e

# Local store types, each as its own store; the RAM store (DictStore) is ephemeral by design and
# BucketStore bytes are in S3 (left to the bucket's versioning): neither is in a backup.
STORES = [
    {"type": "FilesystemStore", "bucket": "products/files"},
    {"type": "HashdirStore", "bucket": "products/hashed"},
    {"type": "SqliteStore", "bucket": "products/objects.sqlite"},
    {"type": "ZipStore", "bucket": "products/archive.zip"},
]


def pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} is not on PATH (apt-get install postgresql-client)", ci_too=True)
    return path


def pg_args(database: ThrowAwayDatabase) -> tuple[list[str], dict[str, str]]:
    p = database.params
    env = {**os.environ, "PGPASSWORD": p["password"]}
    return ["-h", p["host"], "-p", p["port"], "-U", p["user"]], env


class Running:
    """bin/start on a database and data directory, with the service user logged in."""

    def __init__(self, workdir: Path, database: ThrowAwayDatabase) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.env = server_env(workdir, port, 2, **database.env())
        self.app = start_app(workdir, self.env)
        self.app.wait_until(lambda: http_ok(f"{self.base}/api/health"))
        self.session = login(self.base)

    def stop(self) -> None:
        self.app.stop()


def populate(server: Running) -> dict[str, bytes]:
    """Three media per store: two streamed (PUT .../content), one uploaded as base64; one streamed
    media then gets new bytes, so its store also holds a replaced object's history."""
    session, base = server.session, server.base
    assert session.post(f"{base}/api/identifier", json={"name": "backup", "pattern": ""}).status_code == 200
    media = {}
    for store in STORES:
        for n in range(2):
            pid = f"backup-{store['type']}-{n}-{uuid.uuid4().hex[:8]}"
            body = {"pid": pid, "pid_type": "backup", "store_config": store}
            assert session.post(f"{base}/api/media", json=body, timeout=30).status_code == 200
            for _ in range(1 + n):  # the second one's bytes are replaced once
                data = os.urandom(50_000 + n * 7_000)
                put = session.put(f"{base}/api/media/{pid}/content", data=data, timeout=60)
                assert put.status_code == 200, put.text
            media[pid] = data
        pid = f"backup-{store['type']}-b64-{uuid.uuid4().hex[:8]}"
        data = os.urandom(3_000)
        body = {
            "mediadata": {"pid": pid, "pid_type": "backup", "store_config": store},
            "base64": base64.b64encode(data).decode(),
        }
        upload = session.post(f"{base}/api/upload", json=body, timeout=60)
        assert upload.status_code == 200, upload.text
        media[pid] = data
    return media


@pytest.fixture(scope="module")
def tools():
    if shutil.which("tar") is None:
        skip_or_fail("tar is not on PATH")
    return {name: pg_tool(name) for name in ("pg_dump", "pg_restore")}


def test_backup_and_restore_into_a_fresh_database_and_data_directory(tools, tmp_path):
    old_db, new_db = ThrowAwayDatabase(), ThrowAwayDatabase()
    old_dir, new_dir = make_workdir("mediastore-backup-"), make_workdir("mediastore-restore-")
    server = None
    try:
        old_db.create()
        server = Running(old_dir, old_db)
        media = populate(server)
        server.stop()  # the docs: stop the server, so database and files match exactly
        server = None

        backup = tmp_path / "backup"
        backup.mkdir()
        connect, pg_env = pg_args(old_db)
        dump = [tools["pg_dump"], *connect, "-Fc", "-f", str(backup / "db.dump"), old_db.name]
        subprocess.run(dump, env=pg_env, check=True, capture_output=True, timeout=300)
        data_dir = old_dir / "data"
        assert (data_dir / "stores" / "products" / "archive.zip").is_file()
        archive = [
            "tar", "-C", str(data_dir), "--exclude=./cache", "-czf", str(backup / "data.tgz"), ".",
        ]  # fmt: skip
        subprocess.run(archive, check=True, capture_output=True, timeout=300)
        remove_workdir(old_dir)  # nothing of the old installation is left to read from
        old_db.drop()

        # The docs: a fresh database owned by the server's role, restored as that role.
        new_db.create()
        connect, pg_env = pg_args(new_db)
        role = f"{new_db.name}_owner"
        new_db.admin_sql(f'CREATE ROLE "{role}" NOLOGIN', f'ALTER DATABASE "{new_db.name}" OWNER TO "{role}"')
        restore = [tools["pg_restore"], *connect, "--no-owner", f"--role={role}", "-d", new_db.name]
        with open(backup / "db.dump", "rb") as dump_file:  # on standard input, as in the docs
            subprocess.run(restore, env=pg_env, stdin=dump_file, check=True, capture_output=True, timeout=300)
        (new_dir / "data").mkdir()
        unpack = ["tar", "-C", str(new_dir / "data"), "-xzpf", str(backup / "data.tgz")]
        subprocess.run(unpack, check=True, capture_output=True, timeout=300)

        server = Running(new_dir, new_db)
        listed = server.session.get(f"{server.base}/api/media", params={"pid": "backup-*"}, timeout=30)
        assert listed.json()["count"] == len(media) == 3 * len(STORES)
        for pid, data in media.items():
            verified = server.session.get(f"{server.base}/api/media/{pid}/verify", timeout=60).json()
            assert verified["ok"] and not verified["missing"], verified
            content = server.session.get(f"{server.base}/api/media/{pid}/content", timeout=60)
            assert content.status_code == 200, (pid, content.text[:300])
            assert hashlib.sha256(content.content).digest() == hashlib.sha256(data).digest(), pid
    finally:
        if server is not None:
            server.stop()
        remove_workdir(old_dir)
        remove_workdir(new_dir)
        old_db.drop()
        new_db.drop()
        new_db.admin_sql(f'DROP ROLE IF EXISTS "{new_db.name}_owner"')
