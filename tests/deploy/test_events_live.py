"""The changes feed under real concurrency: gunicorn workers committing out of order while a
consumer follows ``GET /api/events`` with ``after=next``.

A feed that serves ``id > after`` from an autoincrement or a sequence lets a consumer move past an
event whose transaction commits late, and that change is then never delivered. This runs ten
writer threads against four workers (creates, metadata and tag updates, PUT content, many on the
same media) while a consumer long-polls from the start; it must end with every change exactly
once, in order per media. It runs on SQLite; on PostgreSQL, where commits really interleave,
test_events_e2e_live.py runs the same with 1,000 changes, deletes and an AMQP consumer besides.
The HTTP consumer example of docs/events.md runs here on the suite's database kind, and more long
polls than the workers let wait at once get their immediate ``Retry-After`` answers.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict

import pytest
import requests

from tests.deploy.feed import follow_feed
from tests.deploy.readme import doc_example, run_example
from tests.support.servers import Server

pytestmark = pytest.mark.e2e

WORKERS = 4
WRITERS = 10
OPS_PER_WRITER = 28
SHARED_MEDIA = 10  # created first; every writer changes them, so their row locks are contended
STORE = {"type": "FilesystemStore", "bucket": "events-live"}
DEADLINE_SECONDS = 300


@pytest.fixture(scope="module")
def server():
    # Each write sleeps up to 50 ms between numbering its events and committing: with numbers
    # that do not follow commit order (a sequence), the consumer then skips events in most runs.
    srv = Server("mediastore-events-", WORKERS, MEDIASTORE_FAILPOINTS="events.before_commit=delay")
    try:
        yield srv
    finally:
        srv.close()


def writer(server: Server, number: int, shared: list[str], start: threading.Barrier, errors: list) -> None:
    rng = random.Random(f"events-writer-{number}")
    session = server.client()
    base = server.base
    start.wait(timeout=60)
    for op in range(OPS_PER_WRITER):
        kind = rng.choice(["create", "metadata", "tags", "content", "content"])
        pid = rng.choice(shared)
        if kind == "create":
            pid = f"w{number}-{op}"
            response = session.post(
                f"{base}/api/media",
                json={"pid": pid, "pid_type": "pidtype", "store_config": STORE},
                timeout=60,
            )
        elif kind == "metadata":
            body = [{"pid": pid, "keys": [f"w{number}"], "data": op}]
            response = session.put(f"{base}/api/media/update/metadata", json=body, timeout=60)
        elif kind == "tags":
            body = [{"pid": pid, "tags": [f"w{number}-{op}"]}]
            response = session.patch(f"{base}/api/media/update/tags", json=body, timeout=60)
        else:
            data = f"writer {number} op {op} ".encode() + rng.randbytes(rng.randint(10, 5000))
            response = session.put(f"{base}/api/media/{pid}/content", data=data, timeout=60)
        if response.status_code != 200 or (kind in ("metadata", "tags") and response.json()["failures"]):
            errors.append((kind, pid, response.status_code, response.text[:300]))


def test_a_feed_consumer_gets_every_change_once_in_order_while_workers_commit_concurrently(server):
    if server.database:
        pytest.skip("on PostgreSQL test_events_e2e_live.py runs this with 1,000 changes, AMQP and deletes")
    shared = [f"shared-{i}" for i in range(SHARED_MEDIA)]
    seen: list[dict] = []
    errors: list = []
    stop = threading.Event()
    consumer = threading.Thread(target=follow_feed, args=(server, stop, seen, errors))
    consumer.start()  # from the very start: it must see the shared media being created too
    for pid in shared:
        server.create(pid, STORE)
    start = threading.Barrier(WRITERS)
    writers = [
        threading.Thread(target=writer, args=(server, n, shared, start, errors)) for n in range(WRITERS)
    ]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=DEADLINE_SECONDS)
    assert not any(thread.is_alive() for thread in writers), "writers did not finish"
    # Everything is committed now: the consumer drains what is left and stops at an empty page.
    stop.set()
    consumer.join(timeout=DEADLINE_SECONDS)
    assert not consumer.is_alive(), "the consumer did not finish"
    assert not errors, errors[:5]

    final = {
        media["pid"]: int(media["version"])
        for media in server.session.get(f"{server.base}/api/media/dump", timeout=60).json()
    }
    cursors = [int(event["cursor"]) for event in seen]
    assert len(cursors) == len(set(cursors)), "an event was delivered twice"
    assert cursors == sorted(cursors), "the feed went backwards"
    versions: dict[str, list[int]] = defaultdict(list)
    for event in seen:
        versions[event["pid"]].append(event["version"])
    assert set(versions) == set(final)
    for pid, version in final.items():
        assert versions[pid] == list(range(1, version + 1)), (
            f"{pid}: {versions[pid]} (final version {version})"
        )
    assert sum(final.values()) == len(seen) >= 250


class Delivered(Exception):
    """Ends the docs' endless consumer loop once it printed what the test waits for."""


def test_the_readme_consumer_example_follows_the_feed(server, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the example's session honours proxy variables
    pids = {f"readme-{i}" for i in range(3)}
    for pid in sorted(pids):
        server.create(pid, STORE)
    printed: list[tuple] = []

    def collect(*args) -> None:
        printed.append(args)
        if pids <= {line[2] for line in printed}:
            raise Delivered

    names = {
        "TOKEN": server.session.headers["Authorization"].removeprefix("Bearer "),
        "MS": server.base,
        "print": collect,
    }
    code = doc_example("docs/events.md", 0, ["MS", "TOKEN"])  # as written there
    outcome = run_example(code, names, Delivered, 120)
    assert outcome.get("delivered"), outcome
    mine = [line for line in printed if line[2] in pids]
    assert [(line[1], line[3]) for line in mine] == [("media.created", 1)] * 3
    cursors = [int(line[0]) for line in printed]
    assert cursors == sorted(set(cursors))


def test_long_polls_beyond_the_waiting_places_answer_at_once_with_retry_after(server):
    """Issue 34: every long poll held a request thread, so a few hundred consumers took them all.
    Each worker lets MEDIASTORE_EVENTS_WAITERS (2) wait; the 4 workers then hold at most 8 of 14."""
    session = server.client()
    after = session.get(f"{server.base}/api/events", params={"limit": 1000}, timeout=60).json()["next"]
    polls = 14
    start = threading.Barrier(polls)
    answers: list = []

    def poll() -> None:
        own = requests.Session()  # one login for all: 14 password hashes would only slow the start
        own.headers.update(session.headers)
        start.wait(timeout=120)
        response = own.get(f"{server.base}/api/events", params={"after": after, "wait": 8}, timeout=60)
        answers.append((response.status_code, response.json(), response.headers.get("Retry-After")))

    threads = [threading.Thread(target=poll) for _ in range(polls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == polls
    assert all(status == 200 and page == {"items": [], "next": after} for status, page, _ in answers), answers
    busy = [retry for _, _, retry in answers if retry is not None]
    assert set(busy) == {"5"}
    assert len(busy) >= polls - 2 * WORKERS, answers
