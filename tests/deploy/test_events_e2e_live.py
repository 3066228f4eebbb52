"""Issue 11's end-to-end test: 1,000 changes from concurrent writers, followed over HTTP and AMQP
while the broker connection is cut and restored, and nothing lost, repeated or reordered.

On PostgreSQL, ten writer threads make 1,000 changes through gunicorn with four workers (creates
one by one and in bulk, metadata and tag updates in bulk, byte PUTs and deletes; many on ten
shared media, so transactions contend and commit out of order, widened by the
``events.before_commit`` delay). At the same time an HTTP consumer long-polls ``GET /api/events``
and an AMQP consumer reads a queue bound to the exchange a running ``manage.py relay_events``
publishes to. A TCP proxy between the relay and the broker cuts the connection part-way and
accepts connections again once the relay has failed to reconnect twice; the relay must resume by
itself. Afterwards, each consumer's events, duplicates dropped by cursor, must be exactly the
outbox (every event once, in commit order), and the outbox exactly the writers' acknowledged
changes, in each media's order.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter, defaultdict

import pytest

from tests.deploy.broker import (
    CuttingProxy,
    Route,
    amqp_connection,
    relay,
    require_broker,
    unpublished,
    wait_for,
)
from tests.deploy.feed import follow_feed
from tests.support.servers import Server

pytestmark = pytest.mark.e2e

WORKERS = 4
WRITERS = 10
SHARED_MEDIA = 10
CHANGES = 1000
PER_WRITER = (CHANGES - SHARED_MEDIA) // WRITERS
STORE = {"type": "FilesystemStore", "bucket": "events-e2e"}
CUT_AFTER_BYTES = 250_000  # about a fifth of what the relay sends for 1,000 events
DEADLINE_SECONDS = 300


@pytest.fixture(scope="module")
def server():
    if not os.environ.get("POSTGRES_DB"):
        pytest.skip("runs on PostgreSQL (the suite's PostgreSQL pass); test_events_live covers SQLite")
    require_broker()
    srv = Server("mediastore-events-e2e-", WORKERS, MEDIASTORE_FAILPOINTS="events.before_commit=delay")
    try:
        yield srv
    finally:
        srv.close()


class Writer:
    """One client making PER_WRITER changes, remembering each change the server acknowledged as
    (pid, event type), in order. Its own media (created, changed, deleted) are touched by no other
    writer; the shared ones by all."""

    def __init__(self, server: Server, number: int, shared: list[str]) -> None:
        self.server, self.number, self.shared = server, number, shared
        self.rng = random.Random(f"events-e2e-writer-{number}")
        self.live: list[str] = []  # own media, not deleted
        self.created = 0
        self.acked: list[tuple[str, str]] = []
        self.errors: list = []

    def new_pids(self, count: int) -> list[str]:
        self.created += count
        return [f"w{self.number}-{i}" for i in range(self.created - count, self.created)]

    def targets(self, most: int) -> list[str]:
        pool = self.live + self.shared
        return self.rng.sample(pool, min(self.rng.randint(1, 4), most, len(pool)))

    def run(self, start: threading.Barrier) -> None:
        session = self.server.client()
        base = self.server.base
        start.wait(timeout=60)
        planned = 0
        for op in range(PER_WRITER):  # every operation makes at least one change
            left = PER_WRITER - planned
            if left <= 0:
                break
            kinds = ["create", "bulk_create", "metadata", "metadata", "tags", "tags", "content", "content"]
            kind = self.rng.choice(kinds + (["delete"] if len(self.live) > 2 else []))
            unique = f"w{self.number}-op{op}"
            if kind == "create":
                [pid] = pids = self.new_pids(1)
                body = {"pid": pid, "pid_type": "pidtype", "store_config": STORE}
                response = session.post(f"{base}/api/media", json=body, timeout=60)
                event = "media.created"
            elif kind == "bulk_create":
                pids = self.new_pids(min(self.rng.randint(2, 6), left))
                body = [{"pid": pid, "pid_type": "pidtype", "store_config": STORE} for pid in pids]
                response = session.post(f"{base}/api/media/create", json=body, timeout=60)
                event = "media.created"
            elif kind == "metadata":
                pids = self.targets(left)
                body = [{"pid": pid, "keys": [f"w{self.number}"], "data": unique} for pid in pids]
                response = session.put(f"{base}/api/media/update/metadata", json=body, timeout=60)
                event = "media.updated"
            elif kind == "tags":
                pids = self.targets(left)
                body = [{"pid": pid, "tags": [unique]} for pid in pids]
                response = session.put(f"{base}/api/media/update/tags", json=body, timeout=60)
                event = "media.tags_changed"
            elif kind == "content":
                pids = self.targets(1)
                data = f"{unique} ".encode() + self.rng.randbytes(self.rng.randint(10, 4000))
                response = session.put(f"{base}/api/media/{pids[0]}/content", data=data, timeout=60)
                event = "media.bytes_stored"
            else:
                pids = [self.live.pop(self.rng.randrange(len(self.live)))]
                if self.rng.random() < 0.5:
                    response = session.delete(f"{base}/api/media/{pids[0]}", timeout=60)
                else:
                    response = session.post(f"{base}/api/media/delete", json=pids, timeout=60)
                event = "media.deleted"
            planned += len(pids)
            bulk = kind in ("metadata", "tags") or (kind == "delete" and response.request.method == "POST")
            if response.status_code not in (200, 204) or (bulk and response.json()["failures"]):
                self.errors.append((kind, pids, response.status_code, response.text[:300]))
                continue
            self.acked += [(pid, event) for pid in pids]
            if kind in ("create", "bulk_create"):
                self.live += pids


def consume_queue(queue: str, stop: threading.Event, got: list, errors: list) -> None:
    """Read ``queue`` (acking each message) until it is idle once ``stop`` is set (set when the
    relay published every event: all of them are in the queue by then)."""
    connection = amqp_connection()
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=200)
        deadline = time.monotonic() + DEADLINE_SECONDS
        for method, properties, body in channel.consume(queue, inactivity_timeout=0.5):
            if method is not None:
                got.append((method.routing_key, json.loads(body), properties))
                channel.basic_ack(method.delivery_tag)
            elif stop.is_set():
                break
            if time.monotonic() > deadline:
                errors.append(("amqp", f"still consuming after the deadline ({len(got)} messages)"))
                break
        channel.cancel()
    finally:
        connection.close()


def first_of_each_cursor(events: list[dict]) -> list[dict]:
    """Duplicates dropped by cursor, as a consumer does (the first delivery of each is kept)."""
    kept: dict[str, dict] = {}
    for event in events:
        kept.setdefault(event["cursor"], event)
    return list(kept.values())


def outbox(server: Server) -> list[dict]:
    """Every outbox row, in numbering order, as (cursor, type, pid, version, published)."""
    code = (
        "import json; from media.models import MediaEvent; print(json.dumps([{'cursor': str(e.seq), "
        "'type': e.type, 'pid': e.pid, 'version': e.version, 'published': e.published is not None} "
        "for e in MediaEvent.objects.order_by('seq')]))"
    )
    return json.loads(server.manage("shell", "-c", code).strip().splitlines()[-1])


def short(event: dict) -> tuple:
    return (event["cursor"], event["type"], event["pid"], event["version"])


def test_http_and_amqp_consumers_get_every_change_once_in_order_through_a_broker_cut(server):
    route = Route()
    proxy = CuttingProxy(cut_after=CUT_AFTER_BYTES)
    process = relay(server, route, "relay-e2e", "--batch-size", "50", port=proxy.port)
    stop = threading.Event()
    fed, queued, errors = [], [], []
    consumers = [  # daemons: a stuck thread ends with the test run, after the test failed
        threading.Thread(
            target=follow_feed, args=(server, stop, fed, errors), kwargs={"limit": 100}, daemon=True
        ),
        threading.Thread(target=consume_queue, args=(route.queue, stop, queued, errors), daemon=True),
    ]
    shared = [f"shared-{i}" for i in range(SHARED_MEDIA)]
    writers = [Writer(server, n, shared) for n in range(WRITERS)]
    start = threading.Barrier(WRITERS)
    threads = [threading.Thread(target=writer.run, args=(start,), daemon=True) for writer in writers]
    try:
        for thread in consumers:
            thread.start()  # from the very start: they must see the shared media being created
        for pid in shared:
            server.create(pid, STORE)
        for thread in threads:
            thread.start()
        # The proxy cuts the relay's connection once it forwarded CUT_AFTER_BYTES; the relay keeps
        # failing to reconnect (with backoff) until the proxy listens again.
        wait_for(proxy.cut.is_set, "the proxy cut the broker connection", process, timeout=DEADLINE_SECONDS)
        wait_for(lambda: process.log().count("retrying in") >= 2, "two failed reconnects", process)
        proxy.reopen()
        for thread in threads:
            thread.join(timeout=DEADLINE_SECONDS)
        assert not any(thread.is_alive() for thread in threads), "writers did not finish"
        # Every change is committed; the consumers stop once they have read what is there (for the
        # AMQP one: once the relay has published everything).
        wait_for(lambda: unpublished(server) == 0, "the relay published every event", process, timeout=120)
        stop.set()
        for thread in consumers:
            thread.join(timeout=DEADLINE_SECONDS + 30)
        assert not any(thread.is_alive() for thread in consumers), "a consumer did not finish"
        process.proc.send_signal(signal.SIGTERM)
        assert process.proc.wait(timeout=60) == 0, process.log()[-5000:]
    finally:
        stop.set()
        process.stop(signal.SIGKILL)
        proxy.close()
        route.close()
    assert not errors, errors[:5]
    assert not [e for writer in writers for e in writer.errors], [writer.errors[:3] for writer in writers]
    log = process.log()
    assert log.count("connected to") >= 2, log[-5000:]  # it came back by itself after the cut

    # The outbox is exactly the acknowledged changes: 1,000, numbered without gaps.
    rows = outbox(server)
    assert [int(row["cursor"]) for row in rows] == list(range(1, CHANGES + 1))
    assert all(row["published"] for row in rows)
    acknowledged = Counter((pid, "media.created") for pid in shared)
    for writer in writers:
        acknowledged.update(writer.acked)
    assert Counter((row["pid"], row["type"]) for row in rows) == acknowledged

    # In each media's order: versions 1, 2, ... (a delete repeats the last); a writer's own media
    # changed in the order that writer made the changes.
    by_media: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_media[row["pid"]].append(row)
    for pid, events in by_media.items():
        versions = [event["version"] for event in events]
        if events[-1]["type"] == "media.deleted":
            assert versions[-1] == versions[-2], (pid, versions)
            versions.pop()
        assert versions == list(range(1, len(versions) + 1)), (pid, versions)
    for writer in writers:
        mine: dict[str, list[str]] = defaultdict(list)
        for pid, event in writer.acked:
            if not pid.startswith("shared-"):
                mine[pid].append(event)
        for pid, types in mine.items():
            assert [event["type"] for event in by_media[pid]] == types, pid
    final = {
        media["pid"]: int(media["version"])
        for media in server.session.get(f"{server.base}/api/media/dump", timeout=60).json()
    }
    assert final == {
        pid: events[-1]["version"]
        for pid, events in by_media.items()
        if events[-1]["type"] != "media.deleted"
    }

    # The HTTP consumer: every event once, in commit order.
    assert [short(event) for event in fed] == [short(row) for row in rows]
    # The AMQP consumer: after dropping the re-sent duplicates, the same, with the feed's bodies.
    bodies = [body for _, body, _ in queued]
    assert [short(event) for event in first_of_each_cursor(bodies)] == [short(row) for row in rows]
    assert first_of_each_cursor(bodies) == fed
    for key, body, properties in queued:
        assert key == body["type"]
        assert properties.delivery_mode == 2 and properties.content_type == "application/json"
