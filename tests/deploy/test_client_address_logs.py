"""gunicorn alone (bin/start, text logs): the access log and Django's warnings name the client.

The test's requests come from other loopback addresses than 127.0.0.1 (all of 127.0.0.0/8 is this
host), so "the client" and "a trusted proxy" (MEDIASTORE_TRUSTED_PROXIES, default 127.0.0.1 and
::1) are different peers. The same through nginx, with JSON lines: tests/deploy/test_nginx_e2e.py.
"""

from __future__ import annotations

import re
import uuid

import pytest

from tests.support.servers import Server, request_from

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server():
    server = Server("mediastore-clientlog-", 2)
    try:
        yield server
    finally:
        server.close()


def lines_with(server: Server, marker: str, *, count: int = 2) -> list[str]:
    """The log lines naming ``marker`` once ``count`` of them are there."""
    return server.app.lines_naming(marker, count)


def test_a_spoofed_x_forwarded_for_from_an_untrusted_peer_is_not_believed(server):
    marker = f"spoof-{uuid.uuid4().hex}"
    status = request_from(
        "127.0.0.7", f"{server.base}/api/media/{marker}", headers={"X-Forwarded-For": "6.6.6.6"}
    )
    assert status == 401
    access, warning = sorted(lines_with(server, marker), key=lambda line: "Unauthorized" in line)
    assert access.startswith("127.0.0.7 - "), access
    assert re.search(
        r"\[WARNING\] django\.request: Unauthorized: /api/media/\S+ client=127\.0\.0\.7$", warning
    )
    assert "6.6.6.6" not in access + warning


def test_behind_a_trusted_proxy_the_forwarded_client_is_logged(server):
    """127.0.0.1 is trusted (nginx on this host): the right-most entry it appended is the client,
    and what the client itself put left of it is not."""
    marker = f"proxied-{uuid.uuid4().hex}"
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9"}
    assert request_from("127.0.0.1", f"{server.base}/api/media/{marker}", headers=headers) == 401
    access, warning = sorted(lines_with(server, marker), key=lambda line: "Unauthorized" in line)
    assert access.startswith("203.0.113.9 - "), access
    assert warning.endswith(" client=203.0.113.9"), warning
