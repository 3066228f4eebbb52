"""Issue 27 on a real deployment (``bin/start``, gunicorn, the suite's database): media with a
one-second lifetime stop being served when it ends and are deleted by ``manage.py expire`` (a
process of its own) with ``media.expired`` events in ``/api/events``; a held media survives expire,
DELETE, PUT, a move and a bulk delete (423 each) and is deletable once released; the recipe of
docs/lifecycle.md restores a deleted media as written."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.deploy.readme import doc_example, run_example
from tests.support.servers import Server, sha256_label

pytestmark = pytest.mark.e2e

STORE = {"type": "DictStore", "bucket": "intermediates"}


class Done(Exception):
    pass


@pytest.fixture(scope="module")
def server():
    server = Server("mediastore-lifecycle-", 2)
    try:
        yield server
    finally:
        server.close()


def upload(server: Server, pid: str, data: bytes, **fields) -> dict:
    body = {
        "mediadata": {"pid": pid, "pid_type": "pidtype", "store_config": STORE, **fields},
        "base64": base64.b64encode(data).decode(),
    }
    response = server.session.post(f"{server.base}/api/upload", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return server.media(pid)


def status(server: Server, method: str, path: str, **kw) -> int:
    return server.session.request(method, f"{server.base}{path}", timeout=30, **kw).status_code


def test_one_second_lifetimes_end_and_expire_deletes_them_with_events(server):
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    for i in range(3):
        upload(server, f"tmp/{i}", b"intermediate", expires_at=soon)
    upload(server, "kept", b"product")
    for _ in range(100):  # until the second is over (bounded: 10 s)
        if status(server, "GET", "/api/media/tmp/0") == 404:
            break
        time.sleep(0.1)
    answer = server.session.get(f"{server.base}/api/media/tmp/0", timeout=30)
    assert answer.status_code == 404 and "expired at" in answer.json()["detail"]
    assert status(server, "GET", "/api/media/tmp/1/content") == 404
    listed = server.session.get(f"{server.base}/api/media", timeout=30).json()
    assert [m["pid"] for m in listed["items"]] == ["kept"]
    assert "expired 3 media" in server.manage("expire")
    feed = server.session.get(f"{server.base}/api/events", params={"types": "media.expired"}, timeout=30)
    assert sorted(e["pid"] for e in feed.json()["items"]) == ["tmp/0", "tmp/1", "tmp/2"]
    trash = server.session.get(f"{server.base}/api/trash", params={"pid_prefix": "tmp/"}, timeout=30).json()
    assert trash["count"] == 3  # expired media go to the bin like any delete


def test_a_held_media_survives_everything_until_released(server):
    upload(server, "held", b"evidence", expires_at=(datetime.now(UTC) + timedelta(seconds=1)).isoformat())
    hold = {"until": None, "reason": "inquiry 14", "freeze": False}
    assert status(server, "POST", "/api/media/held/hold", json=hold) == 200
    time.sleep(1.1)  # let its lifetime end: the hold must keep it
    server.manage("expire")
    assert status(server, "GET", "/api/media/held") == 200  # past its expiry, but held: kept and served
    assert status(server, "DELETE", "/api/media/held") == 423
    assert status(server, "PUT", "/api/media/held/content", data=b"other") == 423
    other = server.session.post(
        f"{server.base}/api/store", json={"type": "DictStore", "bucket": "b"}, timeout=30
    )
    assert status(server, "PATCH", "/api/media/held", json={"store_config": other.json()["pk"]}) == 423
    bulk = server.session.post(f"{server.base}/api/media/delete", json=["held"], timeout=30).json()
    assert bulk["failures"][0]["error"] == "Locked" and "inquiry 14" in bulk["failures"][0]["msg"]
    assert server.media("held")["hold"]["reason"] == "inquiry 14"  # past its expiry, but held: served
    assert status(server, "DELETE", "/api/media/held/hold") == 200
    assert status(server, "DELETE", "/api/media/held") == 204


def test_the_documented_restore_recipe(server):
    media = upload(server, "run42/raw.bin", b"raw data")
    printed = []
    token = server.session.headers["Authorization"].removeprefix("Bearer ")
    code = doc_example("docs/lifecycle.md", 0, ["MS", "TOKEN"]) + "\nraise Done()\n"
    outcome = run_example(
        code, {"MS": server.base, "TOKEN": token, "print": printed.append, "Done": Done}, Done, 60
    )
    assert outcome.get("delivered"), outcome
    assert printed[0][0][:2] == ("run42/raw.bin", "e2e-service")
    assert printed[1] == media["checksum"] == sha256_label(b"raw data")
    assert server.media("run42/raw.bin")["checksum"] == media["checksum"]
