"""The AMQP relay (``manage.py relay_events``) against the RabbitMQ on 127.0.0.1:5672.

The relay runs as a real subprocess beside a real server (``tests.support.servers.Server``, on the suite's
database kind) whose HTTP API makes the changes; each test publishes to an exchange and reads a
queue of its own (deleted afterwards) and compares what arrived with what the feed serves: every
event, in feed order after dropping duplicates by cursor, with the feed's JSON body and the event
type as routing key, each marked published in the database. Faults are real: a crash right after
the first confirm, a TCP proxy that cuts the broker connection mid-run, SIGKILL mid-batch, and
two relays at once on PostgreSQL. The AMQP consumer of docs/events.md and the original project's AMQP
utilities (``subscribe``, ``aio_subscribe``) read the relayed events as they are.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.deploy.broker import (
    DEADLINE_SECONDS,
    CuttingProxy,
    Route,
    broker_url,
    finish,
    relay,
    require_broker,
    unpublished,
    wait_for,
)
from tests.deploy.readme import doc_example, run_example
from tests.support.processes import REPO, Process
from tests.support.servers import MIRROR, Server, extract

pytestmark = pytest.mark.e2e

STORE = {"type": "FilesystemStore", "bucket": "relay-live"}


@pytest.fixture(scope="module")
def server():
    require_broker()
    srv = Server("mediastore-relay-", 2)
    try:
        yield srv
    finally:
        srv.close()


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
    """Ends the docs' endless consumer once it printed what the test waits for."""


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
        code = doc_example("docs/events.md", 1, ["AMQP_URL", "EXCHANGE", "QUEUE"])
        outcome = run_example(code, names, Delivered, 120)  # the docs/events.md example, as written
        assert outcome.get("delivered"), outcome
    finally:
        with route.channel() as channel:
            channel.queue_delete(queue)
    assert [(int(c), t, p, v) for c, t, p, v in printed] == [
        (int(item["cursor"]), item["type"], item["pid"], item["version"]) for item in items
    ]


# The AMPLIfy project's AMQP utilities (WHOIGit/amplify-amqp-utils), run from their snapshot in a
# subprocess: `subscribe` (pika) or `aio_subscribe` (aio-pika) on the relay's exchange. This holds
# no code of theirs; it calls it. The test publishes probes until the queue they declare is bound.
UTILS_GIT = MIRROR / "WHOIGit+amplify-amqp-utils" / "repo"
SUBSCRIBER = """
import asyncio, json, sys
from amqp.rabbit import aio_subscribe, subscribe

mode, exchange, last = sys.argv[1], sys.argv[2], int(sys.argv[3])
events = []


class Enough(Exception):
    pass


def keep(message):
    if "probe" in message:
        print("BOUND", flush=True)
        return False
    events.append(message)
    return int(message["cursor"]) >= last


def on_message(message):
    if keep(message):
        raise Enough


async def subscribe_async():
    done = asyncio.Event()

    async def on_message(message):
        if keep(message):
            done.set()

    task = asyncio.ensure_future(
        aio_subscribe(on_message, "127.0.0.1", "guest", "guest", exchange, "topic", "media.#")
    )
    await asyncio.wait([task, asyncio.ensure_future(done.wait())], timeout=120, return_when="FIRST_COMPLETED")
    if task.done():
        task.result()  # it ended by itself: raise what it raised
    task.cancel()
    assert done.is_set(), "timed out"


if mode == "sync":
    try:
        subscribe(on_message, "127.0.0.1", "guest", "guest", exchange, "topic", "media.#")
    except Enough:
        pass
else:
    asyncio.run(subscribe_async())
print("EVENTS=" + json.dumps(events), flush=True)
"""


def test_the_amplify_amqp_utils_subscribers_read_the_relayed_events(server, tmp_path):
    """Their `subscribe` and `aio_subscribe` declare the exchange non-durable, so the relay runs
    with MEDIASTORE_AMQP_EXCHANGE_DURABLE=false (RabbitMQ refuses one exchange with both)."""
    if not UTILS_GIT.is_dir():
        pytest.skip(f"no snapshot of amplify-amqp-utils at {UTILS_GIT}")
    extract(UTILS_GIT, tmp_path / "amqp-utils")
    (tmp_path / "subscriber.py").write_text(SUBSCRIBER)
    items = make_changes(server, "utils", media=4, rounds=1)
    route = Route(durable=False)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}  # loopback only
    env.update(PYTHONPATH=str(tmp_path / "amqp-utils" / "src"), PYTHONUNBUFFERED="1")
    subscribers = {}
    try:
        for mode in ("sync", "async"):
            args = [
                sys.executable,
                str(tmp_path / "subscriber.py"),
                mode,
                route.exchange,
                items[-1]["cursor"],
            ]
            subscribers[mode] = Process(f"subscribe-{mode}", args, env, tmp_path / f"{mode}.log")
        with route.channel() as channel:
            for subscriber in subscribers.values():
                wait_for(
                    lambda s=subscriber: (
                        channel.basic_publish(route.exchange, "media.probe", b'{"probe": 1}')
                        or "BOUND" in s.log()
                    ),
                    "the subscriber's queue is bound",
                    subscriber,
                )
        finish(relay(server, route, "relay-utils", "--exit-when-idle"))
        for subscriber in subscribers.values():
            assert subscriber.proc.wait(timeout=120) == 0, subscriber.log()[-5000:]
    finally:
        for subscriber in subscribers.values():
            subscriber.stop(signal.SIGKILL)
        route.close()
    for mode, subscriber in subscribers.items():
        events = json.loads(subscriber.log().split("EVENTS=", 1)[1])
        first = int(items[0]["cursor"])
        assert [event for event in events if int(event["cursor"]) >= first] == items, mode


@pytest.mark.parametrize("url", ["wrong-password", "unknown-vhost"])
def test_the_relay_exits_1_when_the_broker_refuses_its_credentials(server, url, tmp_path):
    """Regression: relay_events retried wrong credentials forever ("retrying in 30 s")."""
    refused = {
        "wrong-password": broker_url().replace("guest:guest@", "guest:not-the-password@"),
        "unknown-vhost": broker_url().replace("/%2F?", "/no-such-vhost?"),
    }[url]
    done = subprocess.run(
        [sys.executable, "manage.py", "relay_events", "--max-seconds", "60"],
        cwd=REPO,
        env={**server.env, "MEDIASTORE_AMQP_URL": refused},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "refused the relay" in done.stderr and "MEDIASTORE_AMQP_URL" in done.stderr
    assert "not-the-password" not in done.stdout + done.stderr
