"""Slow and oversized request bodies against a real gunicorn (mediastore/bodies.py).

Regression: 40 unauthenticated ``POST /api/login`` connections sending one byte every 2 s held all
32 threads (4 workers x 8 threads) and ``/api/health`` timed out; a body declared over
``MEDIASTORE_MAX_UPLOAD_MB`` was read in full before its 413. Here gunicorn runs 2 workers x 4
threads with short deadlines, and the clients are raw sockets so that exactly the bytes under test
(and their timing) go over the wire. Every loop is bounded in count and time.
"""

from __future__ import annotations

import http.client
import os
import re
import select
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.servers import Server

pytestmark = pytest.mark.e2e

WORKERS, THREADS = 2, 4
PROGRESS_S, ANON_TOTAL_S = 3, 4  # MEDIASTORE_BODY_TIMEOUT_S, MEDIASTORE_ANON_BODY_TIMEOUT_S
SLOW_CLIENTS = 12  # more than the 8 threads
TRICKLE_S = 2  # one byte every 2 s: under the progress deadline, so only the total one stops them
ORIGINAL = os.urandom(50_000)


@pytest.fixture(scope="module")
def server():
    app = Server(
        "mediastore-slow-",
        WORKERS,
        GUNICORN_THREADS=str(THREADS),
        MEDIASTORE_BODY_TIMEOUT_S=str(PROGRESS_S),
        MEDIASTORE_ANON_BODY_TIMEOUT_S=str(ANON_TOTAL_S),
        MEDIASTORE_MAX_UPLOAD_MB="1",
    )
    try:
        app.port = int(app.base.rsplit(":", 1)[1])
        app.token = app.session.headers["Authorization"]
        yield app
    finally:
        app.close()


@pytest.fixture
def media(server) -> str:
    """A media in a FilesystemStore holding ORIGINAL."""
    pid = f"slow-{uuid.uuid4().hex}"
    server.create(pid, {"type": "FilesystemStore", "bucket": "slow"})
    response = server.session.put(f"{server.base}/api/media/{pid}/content", data=ORIGINAL, timeout=60)
    assert response.status_code == 200, response.text
    return pid


def head(method: str, path: str, length: int, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of the response on ``sock``."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes the connection (end of stream or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


class SlowClient:
    """A connection sending its headers at once, then its body one byte at a time."""

    def __init__(self, port: int, request_head: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(request_head)
        self.received = b""
        self.outcome: str | None = None  # "answered" or "closed"

    def trickle(self) -> None:
        try:
            self.sock.send(b" ")
        except OSError:
            self.outcome = self.outcome or "closed"

    def read_available(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self.received += data
        else:
            self.outcome = "answered" if self.received else "closed"

    @property
    def status(self) -> int | None:
        match = re.match(rb"HTTP/1\.1 (\d{3}) ", self.received)
        return int(match.group(1)) if match else None


def run_slow_clients(clients: list[SlowClient], until: float) -> None:
    """Trickle a byte to every open client every TRICKLE_S seconds and collect what they are sent,
    until all are answered or closed or ``until`` (monotonic) passes."""
    for client in clients:
        client.sock.setblocking(False)
    next_trickle = 0.0
    while time.monotonic() < until and any(c.outcome is None for c in clients):
        now = time.monotonic()
        if now >= next_trickle:
            for client in clients:
                if client.outcome is None:
                    client.trickle()
            next_trickle = now + TRICKLE_S
        open_socks = [c.sock for c in clients if c.outcome is None]
        readable, _, _ = select.select(open_socks, [], [], min(0.2, max(0.0, next_trickle - now)))
        for client in clients:
            if client.sock in readable:
                client.read_available()


def test_slow_unauthenticated_bodies_do_not_hold_every_thread(server, media):
    """More slow logins than threads: health and an authenticated read still answer, and every
    slow login ends with a 408 (or its connection closed) once its total deadline has passed."""
    reader = server.client()  # logged in first: the slow clients start their clocks when they connect
    login_head = head("POST", "/api/login", 200, Content_Type="application/json")
    clients = [SlowClient(server.port, login_head) for _ in range(SLOW_CLIENTS)]

    def probe():
        time.sleep(1)  # every slow client is inside a thread or queued for one
        health = reader.get(f"{server.base}/api/health", timeout=40)
        read = reader.get(f"{server.base}/api/media/{media}", timeout=40)
        return health.status_code, read.status_code

    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            probed = pool.submit(probe)
            # Without deadlines the logins would take 400 s to send their bodies and the probe
            # would time out after 40 s; with them, each wave of 8 is cut off after 4 s.
            run_slow_clients(clients, time.monotonic() + 60)
            assert probed.result(timeout=60) == (200, 200)
        outcomes = [(c.outcome, c.status) for c in clients]
        assert all(outcome is not None for outcome, _ in outcomes), outcomes
        assert all(status in (None, 408) for _, status in outcomes), outcomes
        assert any(status == 408 for _, status in outcomes), outcomes
        for client in clients:
            if client.status == 408:
                assert b"MEDIASTORE_ANON_BODY_TIMEOUT_S" in client.received, client.received
                assert b"connection: close" in client.received.lower()
    finally:
        for client in clients:
            client.sock.close()
    log = server.app.log()
    assert "Traceback" not in log and '" 500 ' not in log, log[-3000:]


def test_a_body_declared_over_the_limit_is_413_without_being_sent(server):
    """Only the headers go out: the 413 comes from Content-Length, and the connection closes."""
    declared = 2 << 20  # MEDIASTORE_MAX_UPLOAD_MB is 1 here
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head("POST", "/api/upload", declared, Content_Type="application/json"))
        status, headers, body = answer(sock)
        assert status == 413, body
        assert b"MEDIASTORE_MAX_UPLOAD_MB" in body
        assert headers.get("connection") == "close"
        assert closed_by_server(sock, within=5)


def test_a_bad_token_is_401_before_the_body_is_read(server):
    """A request with a bogus bearer token never gets to its body: 401 without the client sending
    it, and the connection closed (gunicorn would otherwise wait to drain it)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        request_head = head(
            "POST", "/api/media", 5000, Content_Type="application/json", Authorization="Bearer bogus-token"
        )
        sock.sendall(request_head)
        status, headers, body = answer(sock)
        assert status == 401, body
        assert headers.get("connection") == "close"
        assert closed_by_server(sock, within=5)


def test_an_authenticated_upload_may_be_slow_while_bytes_come(server, media):
    """Bytes every second for longer than the unauthenticated total deadline: stored whole."""
    pieces = [os.urandom(1000) for _ in range(ANON_TOTAL_S + 3)]
    data = b"".join(pieces)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head("PUT", f"/api/media/{media}/content", len(data), Authorization=server.token))
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(1)
        status, _, body = answer(sock)
    assert status == 200, body
    assert server.content(media) == data


def test_a_stalled_upload_is_408_and_stores_nothing(server, media):
    """No byte for longer than MEDIASTORE_BODY_TIMEOUT_S: 408 naming it, the connection closed,
    and the media keeps its bytes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head("PUT", f"/api/media/{media}/content", 100_000, Authorization=server.token))
        sock.sendall(os.urandom(30_000))
        status, headers, body = answer(sock)  # waits: the server answers once the deadline passed
        assert status == 408, body
        assert b"MEDIASTORE_BODY_TIMEOUT_S" in body
        assert headers.get("connection") == "close"
        assert closed_by_server(sock, within=5)
    assert server.content(media) == ORIGINAL
    assert server.verify(media)["ok"] is True
    log = server.app.log()
    assert "Traceback" not in log and '" 500 ' not in log, log[-3000:]


def test_a_stalled_admin_form_is_408_not_500(server):
    """Outside the API, Django's CSRF check reads form bodies where nothing answers a timeout:
    without BodyTimeoutMiddleware this was a 500 with a traceback in the log."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        form = "application/x-www-form-urlencoded"
        sock.sendall(head("POST", "/admin/login/", 100, Content_Type=form) + b"username=")
        status, headers, body = answer(sock)
        assert status == 408, body
        assert headers.get("connection") == "close"
    log = server.app.log()
    assert "Traceback" not in log and '" 500 ' not in log, log[-3000:]
