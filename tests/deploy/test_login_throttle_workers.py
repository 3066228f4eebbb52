"""Login throttling holds across gunicorn workers, with the counters in Redis and in the file cache.

Each worker is its own process; a per-process cache (Django's default LocMemCache) would let every
worker allow its own 10 failures. Here gunicorn runs with 2 workers (started by bin/start), once
with MEDIASTORE_REDIS_URL on a Redis database of its own and once without it (the file cache under
the data directory); failed logins are sent two at a time so both workers serve them (the access
log shows which did), and the 11th is refused with 429. Logins sent all at once must not get past
the limit either: each is counted before its password is checked.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.ports import free_port
from tests.support.processes import http_ok, new_session
from tests.support.servers import (
    ADMIN_USER,
    PASSWORD,
    SERVICE_USER,
    make_workdir,
    remove_workdir,
    require_redis,
    server_env,
    start_app,
)

# Its server runs on SQLite in its own directory whatever the suite runs on: once is enough.
pytestmark = [pytest.mark.e2e, pytest.mark.any_database]

WORKERS = 2
LIMIT = 10  # the default MEDIASTORE_LOGIN_RATE, 10/m
# Not the RAM store tests' database (15), and one per database of the suite: the counters are per
# username, and bin/test may run the SQLite and PostgreSQL suites at the same time.
REDIS_URL = f"redis://127.0.0.1:6379/{13 if os.environ.get('POSTGRES_DB') else 14}"


@pytest.fixture(scope="module", params=["redis", "files"])
def server(request):
    extra = {}
    if request.param == "redis":
        require_redis(REDIS_URL)
        extra["MEDIASTORE_REDIS_URL"] = REDIS_URL
    workdir = make_workdir("mediastore-throttle-")
    port = free_port()
    env = server_env(workdir, port, WORKERS, **extra)
    app = start_app(workdir, env)
    try:
        app.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/api/health"))
        yield {"base": f"http://127.0.0.1:{port}", "app": app}
    finally:
        app.stop()
        remove_workdir(workdir)
        if request.param == "redis":
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            for name in client.scan_iter(match="mediastore-cache:*login-failures:*"):
                client.delete(name)


def unique_address() -> str:
    return f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::"


def login(base: str, username: str, password: str, address: str):
    """A login through the server's trusted local proxy path (the peer is 127.0.0.1, as nginx)."""
    with new_session() as session:
        return session.post(
            f"{base}/api/login",
            json={"username": username, "password": password},
            headers={"X-Forwarded-For": address},
            timeout=60,
        )


def fail_in_pairs(base: str, attempts: list[tuple[str, str]]) -> None:
    """Send (username, address) wrong-password logins two at a time, so both workers take some."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = list(pool.map(lambda a: login(base, a[0], "wrong", a[1]).status_code, attempts))
    assert codes == [401] * len(attempts)


def login_pids(app, marker_count: int) -> set[str]:
    """Worker pids of the first ``marker_count`` 401 logins in the access log."""
    deadline = time.monotonic() + 10  # a worker logs its line after the response went out
    while True:
        pids = re.findall(r'"POST /api/login HTTP/1\.1" 401 .* pid=<(\d+)>', app.log())
        if len(pids) >= marker_count or time.monotonic() > deadline:
            return set(pids[:marker_count])
        time.sleep(0.1)


def test_failures_for_one_username_are_counted_across_workers(server):
    base, prefix = server["base"], unique_address()
    fail_in_pairs(base, [(ADMIN_USER, f"{prefix}{n + 1:x}") for n in range(LIMIT)])
    assert len(login_pids(server["app"], LIMIT)) == WORKERS, "one worker took every login: proves nothing"

    response = login(base, ADMIN_USER, PASSWORD, f"{prefix}ff")
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert "too many failed logins" in response.json()["detail"]


def test_failures_from_one_address_are_counted_across_workers(server):
    base, address = server["base"], f"{unique_address()}1"
    fail_in_pairs(base, [(f"nobody-{n}", address) for n in range(LIMIT)])

    response = login(base, SERVICE_USER, PASSWORD, address)
    assert response.status_code == 429, response.text
    assert login(base, SERVICE_USER, PASSWORD, f"{unique_address()}2").status_code == 200


CONCURRENT = 40


def test_concurrent_failures_check_the_password_at_most_the_limit(server):
    """Regression: 40 wrong-password logins sent at once had their password checked 17-20 times
    against a limit of 10 (each read the count before any had added to it). Every answer that is
    not a 429 is a checked password."""
    base, address = server["base"], f"{unique_address()}1"
    username = f"nobody-{secrets.token_hex(4)}"  # a count of its own; unknown users are hashed too
    start = threading.Barrier(CONCURRENT, timeout=60)

    def attempt(_):
        with new_session() as session:
            start.wait()
            return session.post(
                f"{base}/api/login",
                json={"username": username, "password": "wrong"},
                headers={"X-Forwarded-For": address},
                timeout=120,
            ).status_code

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        codes = list(pool.map(attempt, range(CONCURRENT)))
    assert set(codes) <= {401, 429}, codes
    assert codes.count(401) <= LIMIT, f"{codes.count(401)} passwords checked: {sorted(codes)}"
    assert codes.count(401) >= 1  # someone got through to the check: the server was not just refusing
