"""gunicorn.conf.py: settings from the environment, the RAM-store start-up line, and a real start-up."""

from __future__ import annotations

import os
import re
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.processes import REPO, fetch
from tests.support.servers import make_workdir, remove_workdir, server_env, start_app


def load_conf(monkeypatch, env_file: str = "", **environ: str) -> dict:
    """Run gunicorn.conf.py against a private copy of the environment (it may load an env file)."""
    ours = ("WEB_CONCURRENCY", "GUNICORN_BIND", "GUNICORN_TIMEOUT", "MEDIASTORE_REDIS_URL")
    private = {k: v for k, v in os.environ.items() if k not in ours}
    private.update(environ, MEDIASTORE_ENV_FILE=env_file)
    monkeypatch.setattr(os, "environ", private)
    return runpy.run_path(str(REPO / "gunicorn.conf.py"))


class FakeServer:
    def __init__(self, workers: int) -> None:
        self.cfg = type("Cfg", (), {"workers": workers})()
        self.warnings: list[str] = []
        self.infos: list[str] = []
        self.log = type(
            "Log",
            (),
            {
                "warning": lambda _, msg, *a: self.warnings.append(msg % a if a else msg),
                "info": lambda _, msg, *a: self.infos.append(msg % a if a else msg),
            },
        )()


def test_defaults(monkeypatch):
    conf = load_conf(monkeypatch)
    assert conf["workers"] == 2
    assert conf["bind"] == ["0.0.0.0:8000"]
    assert conf["timeout"] == 300
    assert conf["accesslog"] == "-"
    if Path("/dev/shm").is_dir():
        assert conf["worker_tmp_dir"] == "/dev/shm"


def test_environment_wins(monkeypatch):
    conf = load_conf(monkeypatch, WEB_CONCURRENCY="5", GUNICORN_BIND="127.0.0.1:9001", GUNICORN_TIMEOUT="900")
    assert (conf["workers"], conf["bind"], conf["timeout"]) == (5, ["127.0.0.1:9001"], 900)


def test_env_file_is_read_like_the_settings_read_it(monkeypatch, tmp_path):
    env_file = tmp_path / "site.env"
    env_file.write_text("WEB_CONCURRENCY=3\nGUNICORN_TIMEOUT=\n")
    conf = load_conf(monkeypatch, env_file=str(env_file), GUNICORN_BIND="127.0.0.1:1234")
    assert (conf["workers"], conf["timeout"], conf["bind"]) == (3, 300, ["127.0.0.1:1234"])


def test_bad_number_stops_start_up_naming_the_variable(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="WEB_CONCURRENCY"):
        load_conf(monkeypatch, WEB_CONCURRENCY="many")


@pytest.mark.parametrize("workers", [1, 2, 4])
@pytest.mark.parametrize("redis_url", ["", "redis://127.0.0.1:6379/0"])
def test_start_up_says_where_the_ram_store_lives_and_warns_about_nothing(monkeypatch, workers, redis_url):
    """The earlier banner warned that several workers without Redis split the RAM store; now every
    worker of a host shares it, so there is nothing to warn about, only where it is."""
    conf = load_conf(monkeypatch, MEDIASTORE_REDIS_URL=redis_url)
    server = FakeServer(workers)
    conf["on_starting"](server)
    assert server.warnings == []
    assert len(server.infos) == 1 and "DictStore (RAM store)" in server.infos[0]
    if redis_url:
        assert "in Redis (MEDIASTORE_REDIS_URL)" in server.infos[0]
        assert redis_url not in server.infos[0]
    else:
        assert f"RAM directory (MEDIASTORE_RAM_DIR), shared by its {workers} worker(s)" in server.infos[0]


@pytest.mark.e2e
def test_gunicorn_starts_warns_and_reports_an_unreachable_database():
    """A real gunicorn from gunicorn.conf.py (no bin/start: there is no database to migrate).

    Two workers without Redis say once where the RAM store lives and warn about nothing; /api/health
    answers 503 because PostgreSQL is configured on a port where nothing listens; the access log
    names worker pids.
    """
    workdir = make_workdir("mediastore-gunicorn-")
    port = free_port()
    env = server_env(workdir, port, 2, POSTGRES_DB="nothing_here", POSTGRES_PORT=str(free_port()))
    server = start_app(workdir, env, via_start_script=False)
    try:
        server.wait_until(lambda: fetch(f"http://127.0.0.1:{port}/api/health", timeout=10).status_code)
        response = fetch(f"http://127.0.0.1:{port}/api/health", timeout=10)
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        assert fetch(f"http://127.0.0.1:{port}/api/hello", timeout=10).status_code == 200
    finally:
        server.stop(signal.SIGTERM)
        log = server.log()
        remove_workdir(workdir)
    assert log.count("DictStore (RAM store) objects are kept in this host's RAM directory") == 1, log
    assert not [line for line in log.splitlines() if "WARNING" in line and "Redis" in line], log
    assert re.search(r'"GET /api/health HTTP/1\.1" 503 .* pid=<\d+>$', log, flags=re.MULTILINE), log


def test_gunicorn_accepts_the_configuration(tmp_path):
    env = server_env(tmp_path, free_port(), 2)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--check-config",
            "-c",
            "gunicorn.conf.py",
            "mediastore.wsgi",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
