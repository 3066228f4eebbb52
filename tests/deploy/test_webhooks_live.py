"""Issue 31's live test: 1,000 changes made by 8 writer threads through gunicorn, pushed by two
``manage.py deliver_webhooks`` workers to two subscriptions on a loopback receiver (allowed by
MEDIASTORE_WEBHOOK_ALLOW_HOSTS) that answers 500 now and then.

Each subscription must get every event its filter lets through, acknowledged exactly once and in
cursor order, each request signed with its own secret; the only duplicates are retries, which carry
the delivery id of the first attempt at their event. On PostgreSQL the two workers lease
subscriptions with SKIP LOCKED; on SQLite the second waits as a standby.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections import defaultdict

import pytest

from tests.support.processes import Process
from tests.support.receiver import Receiver, signature_valid
from tests.support.servers import Server

pytestmark = pytest.mark.e2e

WORKERS = 4
WRITERS = 8
CHANGES = 1000
PER_WRITER = CHANGES // WRITERS
STORE = {"type": "FilesystemStore", "bucket": "webhooks-live"}
DEADLINE_SECONDS = 180


def flaky(number: int) -> int:
    """Every 40th request of each subscription (from its 5th) is answered 500, so retries happen
    throughout, to both. (Counted over all requests, the 500s once all fell on one subscription.)"""
    return 500 if number % 40 == 5 else 200


@pytest.fixture(scope="module")
def server():
    srv = Server(
        "mediastore-webhooks-",
        WORKERS,
        MEDIASTORE_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
        MEDIASTORE_WEBHOOK_BACKOFF_MS="20",
        MEDIASTORE_WEBHOOK_BACKOFF_MAX_MS="200",
        MEDIASTORE_WEBHOOK_TIMEOUT_S="5",
    )
    try:
        yield srv
    finally:
        srv.close()


def writer(server: Server, session, number: int, start: threading.Barrier, acked: list, errors: list) -> None:
    """PER_WRITER changes: creates, then tag and metadata updates of its own media (1 to 4 a request)."""
    rng = random.Random(f"webhooks-writer-{number}")
    base = server.base
    own: list[str] = []
    start.wait(timeout=60)
    made = 0
    while made < PER_WRITER:
        left = PER_WRITER - made
        if len(own) < 3 or rng.random() < 0.3:
            pid = f"w{number}-{len(own)}"
            response = session.post(
                f"{base}/api/media",
                json={"pid": pid, "pid_type": "pidtype", "store_config": STORE},
                timeout=60,
            )
            pids, ok = [pid], response.status_code == 200
            if ok:
                own.append(pid)
        else:
            pids = rng.sample(own, min(rng.randint(1, 4), left, len(own)))
            if rng.random() < 0.5:
                body = [{"pid": pid, "tags": [f"w{number}-{made}"]} for pid in pids]
                response = session.put(f"{base}/api/media/update/tags", json=body, timeout=60)
            else:
                body = [{"pid": pid, "keys": ["n"], "data": made} for pid in pids]
                response = session.put(f"{base}/api/media/update/metadata", json=body, timeout=60)
            ok = response.status_code == 200 and not response.json()["failures"]
        if not ok:
            errors.append((pids, response.status_code, response.text[:300]))
            return
        made += len(pids)
        acked.extend(pids)


def outbox(server: Server) -> list[dict]:
    items, after = [], None
    for _ in range(100):
        params = {"limit": 1000, **({"after": after} if after else {})}
        page = server.session.get(f"{server.base}/api/events", params=params, timeout=60).json()
        items += page["items"]
        after = page["next"]
        if not page["items"]:
            return items
    raise AssertionError("the feed did not end")


def test_a_thousand_changes_arrive_signed_once_each_and_in_order(server):
    with Receiver(answer=flaky) as receiver:
        subscriptions = {}
        for name, filters in [("all", {}), ("created", {"types": ["media.created"]})]:
            response = server.session.post(
                f"{server.base}/api/webhooks", json={"url": f"{receiver.url}/{name}", **filters}, timeout=30
            )
            assert response.status_code == 200, response.text
            subscriptions[name] = response.json()
        workers = [
            Process(
                f"webhooks-{n}",
                [sys.executable, "manage.py", "deliver_webhooks", "--poll-seconds", "0.1"],
                server.env,
                server.workdir / f"webhooks-{n}.log",
            )
            for n in range(2)
        ]
        try:
            start = threading.Barrier(WRITERS)
            acked: list[str] = []
            errors: list = []
            sessions = [server.client() for _ in range(WRITERS)]  # logins one by one: hashing is slow
            threads = [
                threading.Thread(target=writer, args=(server, sessions[n], n, start, acked, errors))
                for n in range(WRITERS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=DEADLINE_SECONDS)
            assert not errors, errors[:3]
            assert len(acked) == CHANGES
            events = outbox(server)
            assert len(events) == CHANGES
            wanted = {
                "all": [e["cursor"] for e in events],
                "created": [e["cursor"] for e in events if e["type"] == "media.created"],
            }

            def acknowledged(name: str) -> list[str]:
                return [
                    r.headers["X-Mediastore-Cursor"]
                    for r in list(receiver.received)
                    if r.path == f"/hook/{name}" and r.answered == 200
                ]

            deadline = time.monotonic() + DEADLINE_SECONDS
            while time.monotonic() < deadline:
                if all(len(acknowledged(name)) >= len(wanted[name]) for name in wanted):
                    break
                assert all(worker.running() for worker in workers), [w.log()[-2000:] for w in workers]
                time.sleep(0.5)
        finally:
            for worker in workers:
                worker.stop()
    for name, subscription in subscriptions.items():
        got = [r for r in receiver.received if r.path == f"/hook/{name}"]
        assert acknowledged(name) == wanted[name], name  # each once, in cursor order
        assert all(signature_valid(subscription["secret"], r.headers, r.body) for r in got), name
        other = next(s for n, s in subscriptions.items() if n != name)
        assert not any(signature_valid(other["secret"], r.headers, r.body) for r in got)
        ids: dict[str, set[str]] = defaultdict(set)
        for received in got:
            cursor = received.headers["X-Mediastore-Cursor"]
            assert json.loads(received.body)["cursor"] == cursor
            ids[cursor].add(received.headers["X-Mediastore-Delivery"])
        assert all(len(one) == 1 for one in ids.values()), name  # a retry keeps its delivery id
        assert len({next(iter(one)) for one in ids.values()}) == len(ids)  # and events differ
        retried = len(got) - len(wanted[name])
        assert retried == sum(1 for r in got if r.answered == 500) > 0, name
        state = server.session.get(f"{server.base}/api/webhooks/{subscription['id']}", timeout=30).json()
        assert state["cursor"] == events[-1]["cursor"] and state["active"] and state["attempts"] == 0
    metrics = server.session.get(f"{server.base}/metrics", timeout=30).text
    for subscription in subscriptions.values():
        assert f'mediastore_webhook_lag_events{{id="{subscription["id"]}"}} 0.0' in metrics
