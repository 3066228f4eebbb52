"""Deployment tests: configuration files, gunicorn start-up, and end-to-end runs (marker ``e2e``)."""

from __future__ import annotations

import os

import pytest

from tests.deploy.broker import Route
from tests.support.ports import free_port
from tests.support.processes import http_ok
from tests.support.servers import ThrowAwayDatabase, make_workdir, remove_workdir, server_env, start_app


@pytest.fixture(scope="session")
def bare_gunicorn():
    """bin/start (migrate, accounts, collectstatic with the production storage) and gunicorn with
    2 workers, debug off, nothing in front: a deployment without nginx, reached over plain HTTP.

    The database is of the test run's kind: a throw-away PostgreSQL database when the suite runs on
    PostgreSQL (POSTGRES_DB set), else SQLite in the server's own data directory. Plain HTTP needs
    DJANGO_SECURE_COOKIES=false for the admin's session cookie, as dotenv says.
    """
    database = ThrowAwayDatabase() if os.environ.get("POSTGRES_DB") else None
    if database is not None:
        database.create()
    workdir = make_workdir("mediastore-bare-")
    port = free_port()
    extra = database.env() if database is not None else {}
    env = server_env(workdir, port, 2, DJANGO_SECURE_COOKIES="false", **extra)
    app = start_app(workdir, env)
    try:
        app.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/api/health"))
        yield {"base": f"http://127.0.0.1:{port}", "app": app, "static_root": workdir / "static"}
    finally:
        app.stop()
        remove_workdir(workdir)
        if database is not None:
            database.drop()


@pytest.fixture
def route():
    """A fresh exchange and queue of its own on the shared broker (tests/deploy/broker.py)."""
    route = Route()
    try:
        yield route
    finally:
        route.close()
