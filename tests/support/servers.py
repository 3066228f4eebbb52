"""Servers started the way production starts them (``bin/start``), on a throw-away database of the
suite's kind, with the service user logged in; and the skip-or-fail rule.

Rule: an end-to-end test whose tools or services are missing skips with a reason on a developer
machine, and fails instead when ``MEDIASTORE_REQUIRE_E2E`` is set (or, for PostgreSQL and Redis,
``CI``), so CI cannot pass by skipping.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import requests

from tests.support.ports import free_port
from tests.support.postgres import DatabaseUnavailable, PostgresDatabase
from tests.support.processes import REPO, HarnessError, Process, http_ok, new_session

PASSWORD = "e2e-password-not-secret-7261"
SERVICE_USER = "e2e-service"
ADMIN_USER = "e2e-admin"
REDIS_URL = "redis://127.0.0.1:6379/15"
# Snapshots of the original project's repositories (git directories), when this machine has them.
MIRROR = Path("/work/.mirror")


def required(*, ci_too: bool = False) -> bool:
    return bool(os.environ.get("MEDIASTORE_REQUIRE_E2E") or (ci_too and os.environ.get("CI")))


def skip_or_fail(reason: str, *, ci_too: bool = False) -> None:
    if required(ci_too=ci_too):
        pytest.fail(
            f"{reason} (MEDIASTORE_REQUIRE_E2E{' or CI' if ci_too else ''} is set: failing, not skipping)"
        )
    pytest.skip(reason)


def require_operations(*operations: tuple[str, str]) -> None:
    """Skip (or fail, see above) unless the API has these (method, path) operations.

    The transfer endpoints are written in parallel with these tests; once they exist this never skips.
    """
    from mediastore.api import api

    paths = api.get_openapi_schema()["paths"]
    missing = [f"{m.upper()} {p}" for m, p in operations if m not in paths.get(p, {})]
    if missing:
        skip_or_fail(f"not in the API yet: {', '.join(missing)} (content/api.py)")


class ThrowAwayDatabase(PostgresDatabase):
    """A PostgreSQL database created for one test module and dropped afterwards; an unreachable
    server skips the test (fails it in CI, see ``skip_or_fail``)."""

    def create(self) -> None:
        try:
            super().create()
        except DatabaseUnavailable as exc:
            skip_or_fail(str(exc), ci_too=True)


def require_redis(url: str = REDIS_URL) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis at {url} unreachable: {exc}", ci_too=True)


def server_env(workdir: Path, port: int, workers: int, **extra: str) -> dict[str, str]:
    """A production-like environment: real settings module, debug off, no .env, nothing inherited
    from the test run's own DJANGO_/MEDIASTORE_/POSTGRES_/GUNICORN_ variables."""
    ours = ("DJANGO_", "MEDIASTORE_", "POSTGRES_", "GUNICORN_", "WEB_CONCURRENCY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        DJANGO_SETTINGS_MODULE="mediastore.settings",
        MEDIASTORE_ENV_FILE="",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="localhost,127.0.0.1",
        MEDIASTORE_DATA_DIR=str(workdir / "data"),
        DJANGO_STATIC_ROOT=str(workdir / "static"),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY=str(workers),
        DJANGO_SERVICEUSER_USERNAME=SERVICE_USER,
        DJANGO_SERVICEUSER_PASSWORD=PASSWORD,
        DJANGO_SUPERUSER_USERNAME=ADMIN_USER,
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        DJANGO_SUPERUSER_EMAIL="admin@example.org",
    )
    env.update(extra)
    return env


def migrated_site(workdir: Path, database: PostgresDatabase | None, setup: str = "") -> dict[str, str]:
    """The environment of a deployment in ``workdir`` that is not serving: its own SQLite database,
    or ``database`` (created here), migrated, with its superuser and whatever ``setup`` (Python run
    by ``manage.py shell``) makes. HarnessError names the step that failed."""
    extra = {}
    if database is not None:
        database.create()
        extra = database.env()
    env = server_env(workdir, free_port(), 1, **extra)
    steps = [["migrate", "-v0"], ["ensure_superuser"]] + ([["shell", "-c", setup]] if setup else [])
    for args in steps:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise HarnessError(
                f"manage.py {args[0]} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
    return env


def ram_dir_of(env: dict[str, str]) -> Path:
    """The RAM store directory a server started with ``env`` uses (its settings compute it)."""
    code = "import django; django.setup(); from django.conf import settings as s; print(s.MEDIASTORE_RAM_DIR)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def start_app(workdir: Path, env: dict[str, str], *, via_start_script: bool = True) -> Process:
    """``bin/start`` (migrate, accounts, collectstatic, then gunicorn), or gunicorn alone."""
    if via_start_script:
        args = [str(REPO / "bin" / "start")]
    else:
        args = [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "mediastore.wsgi"]
    return Process("gunicorn", args, env, workdir / "gunicorn.log")


def make_workdir(prefix: str) -> Path:
    """A temp directory readable by everyone: nginx workers run as ``nobody`` when started as root."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def sha256_label(data: bytes) -> str:
    """The checksum the server records for ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def login(base: str, verify: bool | str = True) -> requests.Session:
    """A session carrying the service user's bearer token."""
    session = new_session(verify)
    response = session.post(
        f"{base}/api/login", json={"username": SERVICE_USER, "password": PASSWORD}, timeout=30
    )
    assert response.status_code == 200, response.text
    session.headers["Authorization"] = f"Bearer {response.json()['token']}"
    return session


class Server:
    """``bin/start`` with ``workers`` gunicorn workers and extra environment, on the suite's
    database kind (a throw-away PostgreSQL database when the suite runs on PostgreSQL, that is when
    ``POSTGRES_DB`` is set, else SQLite in its work directory), with the service user logged in
    (``session``) and the identifier type ``pidtype`` (any pid) created; stopped by ``close``.

    Its RAM store directory is inside the work directory, so whatever a test leaves there is
    removed with it.
    """

    def __init__(self, prefix: str, workers: int, **extra: str) -> None:
        self.app: Process | None = None
        self.database = ThrowAwayDatabase() if os.environ.get("POSTGRES_DB") else None
        self.workdir = make_workdir(prefix)
        try:
            if self.database:
                self.database.create()
                extra.update(self.database.env())
            port = free_port()
            self.base = f"http://127.0.0.1:{port}"
            extra = {"GUNICORN_TIMEOUT": "60", "MEDIASTORE_RAM_DIR": str(self.workdir / "ram"), **extra}
            self.env = server_env(self.workdir, port, workers, **extra)
            self.app = start_app(self.workdir, self.env)
            self.app.wait_until(lambda: http_ok(f"{self.base}/api/health"))
            self.session = login(self.base)
            for name in ("pidtype",):
                self.session.post(
                    f"{self.base}/api/identifier", json={"name": name, "pattern": ""}, timeout=30
                )
        except BaseException:
            self.close()
            raise

    def add_s3(self, s3_server) -> None:
        """Register the moto server ``s3_server`` as an S3 configuration, for BucketStores."""
        keys = {"url": s3_server.url, "access_key": s3_server.access_key, "secret_key": s3_server.secret_key}
        response = self.session.post(f"{self.base}/api/s3cfg", json=keys, timeout=30)
        assert response.status_code == 200, response.text

    def client(self) -> requests.Session:
        """A session of its own (requests sessions are not shared between threads) carrying the
        service user's token of ``session``. Not a login each: a login hashes the password (about
        half a second of CPU with production's hasher), and ten writers logging in at once on a
        busy 2-core machine kept each other past their start barrier's timeout."""
        session = new_session(self.session.verify)
        session.headers["Authorization"] = self.session.headers["Authorization"]
        return session

    def create(self, pid: str, store: dict, **fields) -> dict:
        body = {"pid": pid, "pid_type": "pidtype", "store_config": store, **fields}
        response = self.session.post(f"{self.base}/api/media", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def media(self, pid: str) -> dict:
        return self.session.get(f"{self.base}/api/media/{pid}", timeout=30).json()

    def content(self, pid: str) -> bytes:
        response = self.session.get(f"{self.base}/api/media/{pid}/content", timeout=60)
        assert response.status_code == 200, response.text
        return response.content

    def verify(self, pid: str) -> dict:
        return self.session.get(f"{self.base}/api/media/{pid}/verify", timeout=60).json()

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def close(self) -> None:
        if self.app is not None:
            self.app.stop()
        remove_workdir(self.workdir)
        if self.database:
            self.database.drop()


def request_from(
    source: str, url: str, *, headers: dict[str, str] | None = None, cafile: str | None = None
) -> int:
    """GET ``url`` over a connection from the loopback address ``source`` (any of 127.0.0.0/8 is
    this host), so that a server sees a client other than 127.0.0.1; returns the status."""
    import http.client
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=cafile)
        conn = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=30, context=context, source_address=(source, 0)
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30, source_address=(source, 0))
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def extract(git_dir: Path, into: Path) -> None:
    """``git archive HEAD`` of a bare snapshot, unpacked into ``into``."""
    into.mkdir(parents=True)
    archive = into.with_suffix(".tar")
    with open(archive, "wb") as out:
        subprocess.run(["git", f"--git-dir={git_dir}", "archive", "HEAD"], stdout=out, check=True, timeout=60)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()
