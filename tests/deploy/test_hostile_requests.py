"""Hostile requests against a real gunicorn with ONE worker: whatever a client sends, the worker
answers it quickly and stays free for the next request.

Regression: an identifier type with pattern `(a+)+$` and creates with a pid of 40 `a`s and a `b`
pinned every gunicorn worker (catastrophic backtracking in Python's `re`), so the whole server,
health check included, stopped answering.
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.support.ports import free_port
from tests.support.processes import http_ok
from tests.support.servers import login, make_workdir, remove_workdir, server_env, start_app

# Its server runs on SQLite in its own directory whatever the suite runs on: once is enough.
pytestmark = [pytest.mark.e2e, pytest.mark.any_database]

DICT_STORE = {"type": "DictStore", "bucket": "hostile"}


@pytest.fixture(scope="module")
def server():
    workdir = make_workdir("mediastore-hostile-")
    port = free_port()
    app = start_app(workdir, server_env(workdir, port, 1))  # SQLite in workdir, one worker
    try:
        base = f"http://127.0.0.1:{port}"
        app.wait_until(lambda: http_ok(f"{base}/api/health"))
        yield {"base": base, "app": app}
    finally:
        app.stop()
        remove_workdir(workdir)


def health_answers(base: str) -> bool:
    with requests.Session() as session:
        session.trust_env = False
        return session.get(f"{base}/api/health", timeout=10).status_code == 200


def test_hostile_pattern_does_not_pin_the_only_worker(server):
    base = server["base"]
    session = login(base)
    assert session.post(f"{base}/api/identifier", json={"name": "evil", "pattern": "(a+)+$"}, timeout=10).ok
    for _ in range(4):
        response = session.post(
            f"{base}/api/media",
            json={"pid": "a" * 40 + "b", "pid_type": "evil", "store_config": DICT_STORE},
            timeout=20,
        )
        assert response.status_code == 422, response.text
    assert health_answers(base)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"pid": "x", "pid_type": "evil", "store_config": {}, "metadata": {"x": 1e400}}', 422),
        (b"[" * 100_000 + b"]" * 100_000, 422),
        (b'{"pid": "\\u0000", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 422),
        (b'{"pid": "a", "pid": "b", "pid_type": "evil", "store_config": {}}', 422),
    ],
    ids=["1e400", "deep", "deep-with-nul-escape", "duplicate-key"],
)
def test_hostile_json_is_a_4xx_with_debug_off(server, body, status):
    session = login(server["base"])
    response = session.post(
        f"{server['base']}/api/media", data=body, headers={"Content-Type": "application/json"}, timeout=20
    )
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    assert health_answers(server["base"])


def test_absurd_range_and_100k_tags_are_refused_quickly(server):
    """Regression: `Range: bytes=0-<5,000 digits>` was a 500, and an update with 100,000 tags took
    110 s (one statement set per tag) while holding the media's row lock."""
    base = server["base"]
    session = login(base)
    media = {"pid": "edge1", "pid_type": "edge", "store_config": DICT_STORE}
    assert session.post(f"{base}/api/identifier", json={"name": "edge", "pattern": ""}, timeout=10).ok
    upload = session.post(f"{base}/api/upload", json={"mediadata": media, "base64": "aGVsbG8="}, timeout=20)
    assert upload.status_code == 200, upload.text

    response = session.get(f"{base}/api/media/edge1/content", headers={"Range": "bytes=0-" + "9" * 5000})
    assert (response.status_code, response.headers["Content-Range"]) == (416, "bytes */5")
    response = session.get(f"{base}/api/media/edge1/content", headers={"Range": "bytes=1-" + "9" * 20})
    assert (response.status_code, response.content) == (206, b"ello")

    tags = [f"tag-{i}" for i in range(100_000)]
    started = time.monotonic()
    response = session.post(f"{base}/api/media", json={**media, "pid": "edge2", "tags": tags}, timeout=60)
    assert response.status_code == 422, response.text
    assert "MEDIASTORE_MAX_TAGS" in response.json()["detail"][0]["error"]
    item = {"pid": "edge1", "tags": tags}
    response = session.patch(f"{base}/api/media/update/tags", json=[item], timeout=60)
    assert response.status_code == 200, response.text
    [failure] = response.json()["failures"]
    assert failure["error"] == "ValidationError" and "at most 1000 tags" in failure["msg"]
    assert time.monotonic() - started < 20
    assert session.get(f"{base}/api/media/edge1", timeout=10).json()["tags"] == []
    item = {"pid": "edge1", "tags": tags[:1000]}
    assert session.put(f"{base}/api/media/update/tags", json=[item], timeout=60).json()["failures"] == []
    assert len(session.get(f"{base}/api/media/edge1", timeout=10).json()["tags"]) == 1000
    assert health_answers(base)
