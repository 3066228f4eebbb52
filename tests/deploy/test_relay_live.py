"""The AMQP relay (``manage.py relay_events``) against the RabbitMQ on 127.0.0.1:5672.

The relay runs as a real subprocess beside a real server (``tests.support.servers.Server``, on the suite's
database kind) whose HTTP API makes the changes; each test publishes to an exchange and reads a
queue of its own (deleted afterwards) and compares what arrived with what the feed serves: every
event, in feed order after dropping duplicates by cursor, with the feed's JSON body and the event
type as routing key, each marked published in the database. Faults are real: a crash right after
the first confirm, a TCP proxy that cuts the broker connection mid-run, SIGKILL mid-batch, and
two relays at once on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid

import pytest

from tests.support.ports import free_port
from tests.support.processes import REPO, Process
from tests.support.servers import Server, skip_or_fail

pytestmark = pytest.mark.e2e

BROKER = ("127.0.0.1", 5672)
STORE = {"type": "FilesystemStore", "bucket": "relay-live"}
DEADLINE_SECONDS = 180


def broker_url(port: int = BROKER[1]) -> str:
    return f"amqp://guest:guest@127.0.0.1:{port}/%2F?connection_attempts=1&socket_timeout=5"


def amqp_connection():
    import pika

    return pika.BlockingConnection(pika.URLParameters(broker_url()))


@pytest.fixture(scope="module")
def server():
    import pika.exceptions

    try:
        amqp_connection().close()
    except pika.exceptions.AMQPError as exc:
        skip_or_fail(f"RabbitMQ at {BROKER[0]}:{BROKER[1]} unreachable: {exc!r}", ci_too=True)
    srv = Server("mediastore-relay-", 2)
    try:
        yield srv
    finally:
        srv.close()


class Route:
    """A fresh exchange (durable topic, as the relay declares it) and a queue bound to all media
    events; both deleted by ``close``."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.exchange, self.queue = f"test-relay-{tag}", f"test-relay-{tag}"
        with self.channel() as channel:
            channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
            channel.queue_declare(self.queue)
            channel.queue_bind(self.queue, self.exchange, routing_key="media.#")

    @contextlib.contextmanager
    def channel(self):
        connection = amqp_connection()
        try:
            yield connection.channel()
        finally:
            connection.close()

    def count(self) -> int:
        with self.channel() as channel:
            return channel.queue_declare(self.queue, passive=True).method.message_count

    def drain(self) -> list[tuple[str, dict, object]]:
        """Every message in the queue as (routing key, body, properties), in queue order."""
        got = []
        with self.channel() as channel:
            for _ in range(100_000):
                method, properties, body = channel.basic_get(self.queue, auto_ack=True)
                if method is None:
                    break
                got.append((method.routing_key, json.loads(body), properties))
        return got

    def close(self) -> None:
        with self.channel() as channel:
            channel.queue_delete(self.queue)
            channel.exchange_delete(self.exchange)


@pytest.fixture
def route():
    route = Route()
    try:
        yield route
    finally:
        route.close()


def make_changes(server: Server, prefix: str, media: int = 30, rounds: int = 3) -> list[dict]:
    """Creates and bulk metadata updates (several events per media); returns their feed items."""
    start = server.session.get(f"{server.base}/api/events", params={"limit": 1000}, timeout=30).json()
    after = start["next"]
    while start["items"]:  # skip what earlier tests left
        start = server.session.get(f"{server.base}/api/events", params={"after": after}, timeout=30).json()
        after = start["next"]
    pids = [f"{prefix}-{i}" for i in range(media)]
    for pid in pids:
        server.create(pid, STORE)
    for round_ in range(rounds):
        body = [{"pid": pid, "keys": ["round"], "data": round_} for pid in pids]
        response = server.session.put(f"{server.base}/api/media/update/metadata", json=body, timeout=60)
        assert response.status_code == 200 and not response.json()["failures"], response.text
    items = server.session.get(
        f"{server.base}/api/events", params={"after": after, "limit": 1000}, timeout=30
    ).json()["items"]
    assert len(items) == media * (rounds + 1)
    return items


def relay(server: Server, route: Route, name: str, *args: str, port: int = BROKER[1], **env: str) -> Process:
    environment = {
        **server.env,
        "PYTHONUNBUFFERED": "1",
        "MEDIASTORE_AMQP_URL": broker_url(port),
        "MEDIASTORE_AMQP_EXCHANGE": route.exchange,
        **env,
    }
    args = [sys.executable, "manage.py", "relay_events", "--max-seconds", str(DEADLINE_SECONDS), *args]
    return Process(name, args, environment, server.workdir / f"{name}.log")


def finish(process: Process) -> str:
    """Wait for a relay that exits by itself; its log, after asserting it exited cleanly."""
    try:
        code = process.proc.wait(timeout=DEADLINE_SECONDS + 30)
    finally:
        process.stop(signal.SIGKILL)
    assert code == 0, process.log()[-5000:]
    return process.log()


def unpublished(server: Server) -> int:
    code = "from media.models import MediaEvent; print(MediaEvent.objects.filter(published=None).count())"
    return int(server.manage("shell", "-c", code).split()[-1])


def assert_delivered(messages: list, items: list[dict], *, duplicates: bool) -> None:
    """After dropping duplicates by cursor: exactly the feed's items, in its order, same bodies."""
    cursors = [body["cursor"] for _, body, _ in messages]
    if not duplicates:
        assert len(cursors) == len(set(cursors)), "an event was published twice"
    first: dict[str, tuple] = {}
    for key, body, properties in messages:
        first.setdefault(body["cursor"], (key, body, properties))
    assert list(first) == [item["cursor"] for item in items]  # none lost, commit order
    for item in items:
        key, body, properties = first[item["cursor"]]
        assert body == item
        assert key == item["type"]
        assert properties.delivery_mode == 2 and properties.content_type == "application/json"


def wait_for(condition, what: str, process: Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached; relay log:\n{process.log()[-5000:]}")
        time.sleep(0.05)


def test_the_relay_publishes_every_event_once_in_order_as_the_feed_shows_it(server, route):
    items = make_changes(server, "once")
    assert {item["type"] for item in items} == {"media.created", "media.updated"}
    log = finish(relay(server, route, "relay-once", "--exit-when-idle", "--batch-size", "25"))
    assert "nothing left to publish" in log
    assert_delivered(route.drain(), items, duplicates=False)
    assert unpublished(server) == 0


def test_an_event_is_marked_published_only_after_the_broker_confirmed_it(server, route):
    """The relay dies right after the first confirm: that event reached the queue but is not
    marked, so the next run sends it again (at least once) and nothing is lost."""
    items = make_changes(server, "confirm", media=5, rounds=1)
    crashing = relay(server, route, "relay-crash", MEDIASTORE_FAILPOINTS="relay.after_confirm=crash")
    assert crashing.proc.wait(timeout=DEADLINE_SECONDS) == 70, crashing.log()
    crashing.stop()
    assert unpublished(server) == len(items)
    assert [body["cursor"] for _, body, _ in route.drain()] == [items[0]["cursor"]]

    finish(relay(server, route, "relay-after-crash", "--exit-when-idle"))
    assert_delivered(route.drain(), items, duplicates=False)  # the queue was drained before
    assert unpublished(server) == 0


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to the broker; after ``cut_after`` bytes towards the broker it
    closes every connection and stops listening until ``reopen``."""

    def __init__(self, cut_after: int) -> None:
        self.port = free_port()
        self.cut_after: int | None = cut_after
        self.forwarded = 0
        self.cut = threading.Event()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.reopen()

    def reopen(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(1000):
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection(BROKER, timeout=5)
            except OSError:
                return
            upstream.settimeout(None)
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, to_broker: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
            except OSError:
                break
            if to_broker:
                with self.lock:
                    self.forwarded += len(data)
                    trip = self.cut_after is not None and self.forwarded >= self.cut_after
                    if trip:
                        self.cut_after = None
                if trip:
                    self.close()
                    self.cut.set()
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self.lock:
            doomed, self.sockets = [self.listener, *self.sockets], []
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_the_relay_resumes_by_itself_after_the_broker_connection_is_cut(server, route):
    items = make_changes(server, "cut", media=40, rounds=3)  # 160 messages of about 1 KB
    proxy = CuttingProxy(cut_after=40_000)
    try:
        process = relay(server, route, "relay-cut", "--exit-when-idle", "--batch-size", "20", port=proxy.port)
        wait_for(proxy.cut.is_set, "proxy cut the connection", process)
        # the broker is unreachable for a while: the relay keeps trying (with backoff) ...
        wait_for(lambda: process.log().count("retrying in") >= 2, "two failed reconnects", process)
        assert unpublished(server) > 0
        proxy.reopen()  # ... and gets through once it is back
        log = finish(process)
    finally:
        proxy.close()
    assert log.count("connected to") >= 2
    assert_delivered(route.drain(), items, duplicates=True)
    assert unpublished(server) == 0


def test_a_relay_killed_mid_batch_loses_nothing_after_restart(server, route):
    items = make_changes(server, "kill", media=30, rounds=2)
    slow = relay(
        server, route, "relay-kill", "--batch-size", "50", MEDIASTORE_FAILPOINTS="relay.after_confirm=delay"
    )
    wait_for(lambda: route.count() >= 10, "10 messages published", slow)
    os.killpg(slow.proc.pid, signal.SIGKILL)
    slow.proc.wait(timeout=30)
    slow.stop()
    assert unpublished(server) > 0

    finish(relay(server, route, "relay-restarted", "--exit-when-idle"))
    assert_delivered(route.drain(), items, duplicates=True)
    assert unpublished(server) == 0


def test_two_relays_at_once_publish_each_event_once_in_order(server, route):
    if not server.database:
        pytest.skip("row leases need PostgreSQL; on SQLite one relay runs at a time (next test)")
    items = make_changes(server, "two", media=30, rounds=3)
    # Small batches, a short pause per message and one after each batch (when the lease is free)
    # make the two take turns.
    slow = {"MEDIASTORE_FAILPOINTS": "relay.after_confirm=delay,relay.after_batch=delay"}
    options = ("--exit-when-idle", "--batch-size", "5", "--poll-seconds", "0.05")
    first = relay(server, route, "relay-first", *options, **slow)
    second = relay(server, route, "relay-second", *options, **slow)
    logs = [finish(first), finish(second)]
    assert_delivered(route.drain(), items, duplicates=False)
    assert unpublished(server) == 0
    assert sum(log.count("published") for log in logs) >= len(items) // 5


def test_sigterm_stops_the_relay_cleanly_and_sqlite_allows_one_relay(server, route):
    items = make_changes(server, "term", media=3, rounds=0)
    running = relay(server, route, "relay-term")
    wait_for(lambda: "published 3 events" in running.log(), "first batch published", running)
    if not server.database:
        second = relay(server, route, "relay-refused", "--exit-when-idle")
        assert second.proc.wait(timeout=60) != 0
        second.stop()
        assert "another relay_events runs on this database" in second.log()
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(timeout=30) == 0, running.log()
    running.stop()
    assert running.log().rstrip().endswith("stopped")
    assert_delivered(route.drain(), items, duplicates=False)


class Delivered(Exception):
    """Ends the README's endless consumer once it printed what the test waits for."""


def readme_amqp_consumer() -> str:
    section = (REPO / "README.md").read_text().split("## Events: a changes feed", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 2)[2].split("```", 1)[0]


def test_the_readme_amqp_consumer_example_receives_the_events(server, route):
    items = make_changes(server, "readme", media=3, rounds=1)
    queue = f"{route.queue}-readme"
    printed: list[tuple] = []

    def collect(*args) -> None:
        printed.append(args)
        if len(printed) == len(items):
            raise Delivered

    try:
        with route.channel() as channel:  # as the example declares it, so it is there before publishing
            channel.queue_declare(queue, durable=True)
            channel.queue_bind(queue, route.exchange, routing_key="media.#")
        finish(relay(server, route, "relay-readme", "--exit-when-idle"))
        names = {"AMQP_URL": broker_url(), "EXCHANGE": route.exchange, "QUEUE": queue, "print": collect}
        with pytest.raises(Delivered):
            exec(readme_amqp_consumer(), names)  # the README.md example, unchanged
    finally:
        with route.channel() as channel:
            channel.queue_delete(queue)
    assert [(int(c), t, p, v) for c, t, p, v in printed] == [
        (int(item["cursor"]), item["type"], item["pid"], item["version"]) for item in items
    ]
