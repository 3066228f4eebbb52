"""PUT /api/media/{pid}/content through a real gunicorn: the body's framing decides what is stored.

Regression: gunicorn marks every request's input as terminated (``wsgi.input_terminated``), so a
PUT with neither Content-Length nor Transfer-Encoding was taken for an empty chunked body: 200, and
the stored bytes were replaced by nothing. The PUTs here are written by hand (a raw socket or
``http.client``) so that exactly the framing under test goes over the wire.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import uuid

import pytest

from tests.support.ports import free_port
from tests.support.processes import http_ok
from tests.support.servers import login, make_workdir, remove_workdir, server_env, start_app

# Its server runs on SQLite in its own directory whatever the suite runs on: once is enough.
pytestmark = [pytest.mark.e2e, pytest.mark.any_database]

ORIGINAL = os.urandom(100_000) + b"original"


@pytest.fixture(scope="module")
def server():
    """One gunicorn worker started by bin/start on its own SQLite database and storage root."""
    workdir = make_workdir("mediastore-framing-")
    port = free_port()
    app = start_app(workdir, server_env(workdir, port, 1))
    base = f"http://127.0.0.1:{port}"
    try:
        app.wait_until(lambda: http_ok(f"{base}/api/health"))
        session = login(base)
        assert session.post(f"{base}/api/identifier", json={"name": "local", "pattern": ""}, timeout=30).ok
        yield {"base": base, "port": port, "session": session}
    finally:
        app.stop()
        remove_workdir(workdir)


@pytest.fixture
def media(server) -> str:
    """A media in a FilesystemStore holding ORIGINAL, put there with a Content-Length."""
    base, session = server["base"], server["session"]
    pid = f"framing-{uuid.uuid4().hex}"
    store = {"type": "FilesystemStore", "bucket": "framing"}
    created = session.post(f"{base}/api/media", json={"pid": pid, "pid_type": "local", "store_config": store})
    assert created.status_code == 200, created.text
    status, body = put(server, pid, ORIGINAL, {"Content-Length": str(len(ORIGINAL))})
    assert status == 200, body
    return pid


def put(server, pid: str, body, headers: dict[str, str]) -> tuple[int, bytes]:
    """PUT with exactly these framing headers; an iterable body goes out chunked (http.client)."""
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
    try:
        headers = {"Authorization": server["session"].headers["Authorization"], **headers}
        conn.request("PUT", f"/api/media/{pid}/content", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def put_without_length(server, pid: str, body: bytes) -> tuple[int, bytes]:
    """PUT with neither Content-Length nor Transfer-Encoding: the body (if any) ends with the
    connection's write side. http.client always adds one of the two, so this is a raw socket."""
    auth = server["session"].headers["Authorization"]
    head = (
        f"PUT /api/media/{pid}/content HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
        "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=60) as sock:
        sock.sendall(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def stored(server, pid: str) -> tuple[dict, bytes, dict]:
    base, session = server["base"], server["session"]
    media = session.get(f"{base}/api/media/{pid}", timeout=30).json()
    content = session.get(f"{base}/api/media/{pid}/content", timeout=60)
    assert content.status_code == 200, content.text
    verify = session.get(f"{base}/api/media/{pid}/verify", timeout=60).json()
    return media, content.content, verify


@pytest.mark.parametrize("body", [b"", b"new bytes"], ids=["no-body", "body-until-close"])
def test_a_put_without_length_or_chunking_is_411_and_keeps_the_bytes(server, media, body):
    status, answer = put_without_length(server, media, body)
    assert status == 411, answer
    assert b"Content-Length" in answer
    record, content, verify = stored(server, media)
    assert content == ORIGINAL
    assert record["size"] == len(ORIGINAL)
    assert verify["ok"] is True, verify


def test_content_length_zero_stores_an_empty_object(server, media):
    status, answer = put(server, media, None, {"Content-Length": "0"})
    assert status == 200, answer
    record, content, verify = stored(server, media)
    assert (record["size"], content) == (0, b"")
    assert verify["ok"] is True and verify["size"] == 0, verify


def test_a_chunked_body_is_streamed_whole(server, media):
    data = os.urandom(3 << 20) + b"chunked tail"
    pieces = (data[pos : pos + 65536] for pos in range(0, len(data), 65536))
    status, answer = put(server, media, pieces, {"Content-Type": "application/x-test"})
    assert status == 200, answer
    record, content, verify = stored(server, media)
    assert content == data
    assert record["size"] == len(data) and record["content_type"] == "application/x-test"
    assert verify["ok"] is True, verify


@pytest.mark.parametrize("size", [0, 3 << 20], ids=["small", "3MiB"])
def test_a_chunked_json_body_is_411_and_creates_nothing(server, size):
    """Django reads a body without Content-Length as empty: a chunked upload was answered 422
    "payload: Field required" although the client had sent it."""
    pid = f"chunked-json-{uuid.uuid4().hex}"
    store = {"type": "FilesystemStore", "bucket": "framing"}
    head = json.dumps({"mediadata": {"pid": pid, "pid_type": "local", "store_config": store}})
    text = head[:-1] + ', "base64": "' + "QUJD" * (size // 4) + '"}'
    pieces = (text[pos : pos + 65536].encode() for pos in range(0, len(text), 65536))
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
    try:
        headers = {
            "Authorization": server["session"].headers["Authorization"],
            "Content-Type": "application/json",
        }
        try:
            conn.request("POST", "/api/upload", body=pieces, headers=headers)
        except BrokenPipeError:
            pass  # the server answered before reading it all and closed; the answer is still there
        response = conn.getresponse()
        status, answer = response.status, response.read()
    finally:
        conn.close()
    assert status == 411, answer
    assert b"Content-Length" in answer and b"chunked" in answer
    base, session = server["base"], server["session"]
    assert session.get(f"{base}/api/media/{pid}", timeout=30).status_code == 404
