"""A revoked token is refused by every gunicorn worker at its next request.

Each worker is its own process; a per-process cache of tokens would let a worker that had accepted
a token go on accepting it after ``DELETE /api/tokens/{id}``. Here gunicorn runs with 4 workers
(started by bin/start) on the suite's database; the token is used by several requests at a time, on
new connections, so several workers serve it (the access log names each request's worker pid), then
revoked, and used again the same way: every worker that had accepted it now answers 401.
"""

from __future__ import annotations

import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.servers import Server

pytestmark = pytest.mark.e2e

WORKERS = 4
REQUESTS = 24  # per round, 4 at a time


@pytest.fixture(scope="module")
def server():
    srv = Server("mediastore-revoke-", WORKERS)
    try:
        yield srv
    finally:
        srv.close()


def round_of_requests(base: str, token: str, marker: str) -> list[int]:
    """REQUESTS reads with ``token``, 4 at a time, each on a new connection (so the kernel hands them
    to whichever worker is free); the statuses. ``marker`` in the query finds them in the access log."""

    def one(n: int) -> int:
        response = requests.get(
            f"{base}/api/identifier/list?probe={marker}-{n}",
            headers={"Authorization": f"Bearer {token}", "Connection": "close"},
            timeout=30,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(REQUESTS)))


def workers_of(server: Server, marker: str, status: int) -> set[str]:
    """Worker pids of the logged requests carrying ``marker`` that answered ``status``."""
    pattern = re.compile(rf'"GET /api/identifier/list\?probe={marker}-\d+ HTTP/1\.1" {status} .* pid=<(\d+)>')
    deadline = time.monotonic() + 10  # a worker logs its line after the response went out
    while True:
        pids = pattern.findall(server.app.log())
        if len(pids) >= REQUESTS or time.monotonic() > deadline:
            return set(pids)
        time.sleep(0.1)


ROUNDS = 8  # at most, until two workers answered (the kernel chooses the worker of a connection)


def rounds_until_two_workers(
    server: Server, token: str, status: int, among: set[str] | None = None
) -> set[str]:
    """Rounds of requests until at least two workers (of ``among``, if given) answered ``status``;
    the workers that did. A loaded machine may hand one worker many connections in a row."""
    seen: set[str] = set()
    for _ in range(ROUNDS):
        marker = f"{status}-{secrets.token_hex(4)}"
        assert round_of_requests(server.base, token, marker) == [status] * REQUESTS
        seen |= workers_of(server, marker, status)
        if len(seen & among if among is not None else seen) >= 2:
            break
    return seen


def test_a_revoked_token_is_refused_by_every_worker_at_the_next_request(server):
    made = server.session.post(
        f"{server.base}/api/tokens",
        json={"name": "instrument", "scopes": ["read"], "expires_in": 3600},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    token, token_id = made.json()["token"], made.json()["id"]

    accepted_by = rounds_until_two_workers(server, token, 200)
    assert len(accepted_by) >= 2, f"workers {accepted_by} served the token: proves nothing"

    revoked = server.session.delete(f"{server.base}/api/tokens/{token_id}", timeout=30)
    assert revoked.status_code == 204, revoked.text

    refused_by = rounds_until_two_workers(server, token, 401, among=accepted_by)
    assert len(accepted_by & refused_by) >= 2, (accepted_by, refused_by)
    assert server.session.get(f"{server.base}/api/identifier/list", timeout=30).status_code == 200
