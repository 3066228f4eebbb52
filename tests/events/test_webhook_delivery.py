"""manage.py deliver_webhooks against a receiver on loopback (allowed by the setting): what arrives,
signed and in order; retries with backoff; pausing after the last attempt; the target checked again
at delivery; test events and redelivery.

Regression docstrings name what each pins; no test sends anything to a non-loopback address
(names resolve through a table that replaces ``socket.getaddrinfo`` in-process).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest
from django.core.management import call_command

from events.models import WebhookDelivery, WebhookSubscription
from tests.conftest import create_media
from tests.deploy.readme import doc_example
from tests.support.receiver import HANG, Receiver, signature_valid

pytestmark = pytest.mark.django_db


@pytest.fixture
def hooks(settings, id_types):
    settings.MEDIASTORE_WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]
    settings.MEDIASTORE_WEBHOOK_BACKOFF_MS = 50
    settings.MEDIASTORE_WEBHOOK_BACKOFF_MAX_MS = 400
    settings.MEDIASTORE_WEBHOOK_TIMEOUT_S = 1
    settings.MEDIASTORE_WEBHOOK_CONNECT_TIMEOUT_S = 1
    return settings


def deliver_until(done, rounds: int = 200) -> None:
    """Run ``deliver_webhooks --once`` until ``done()`` (bounded; retries wait their backoff)."""
    for _ in range(rounds):
        call_command("deliver_webhooks", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
        if done():
            return
        time.sleep(0.05)
    raise AssertionError("not delivered in time")


def subscribe(api, url: str, **filters) -> dict:
    response = api.post("/api/webhooks", {"url": url, **filters})
    assert response.status_code == 200, response.content
    return response.json()


def feed_items(api) -> dict[str, dict]:
    return {item["cursor"]: item for item in api.get("/api/events?limit=1000").json()["items"]}


def test_each_event_arrives_signed_in_order_as_the_feed_says(api, hooks):
    with Receiver() as receiver:
        hook = subscribe(api, receiver.url)
        for n in range(5):
            create_media(api, f"m{n}")
        api.put("/api/media/update/tags", [{"pid": "m1", "tags": ["t"]}])
        deliver_until(lambda: len(receiver.received) >= 6)
        call_command("deliver_webhooks", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
    got = receiver.received
    assert len(got) == 6
    feed = feed_items(api)
    cursors = [r.headers["X-Mediastore-Cursor"] for r in got]
    assert cursors == sorted(feed, key=int) and len(set(cursors)) == 6
    for received in got:
        assert signature_valid(hook["secret"], received.headers, received.body)
        item = json.loads(received.body)
        assert item == json.loads(json.dumps(feed[item["cursor"]]))
        assert received.headers["X-Mediastore-Event"] == item["type"]
        assert received.headers["Content-Type"] == "application/json"
    assert [json.loads(r.body)["type"] for r in got] == ["media.created"] * 5 + ["media.tags_changed"]
    assert not signature_valid("another secret", got[0].headers, got[0].body)
    readme: dict = {"SECRET": hook["secret"]}
    exec(doc_example("README.md", 0, ["SECRET"]), readme)  # the README's verifier, as written
    assert all(readme["verified"](r.headers, r.body) for r in got)
    assert not readme["verified"](got[0].headers, got[0].body + b" ")
    assert not readme["verified"](got[0].headers, got[1].body)
    state = api.get(f"/api/webhooks/{hook['id']}").json()
    assert state["cursor"] == cursors[-1] and state["delivered_total"] == 6 and state["attempts"] == 0


def test_filters_choose_the_events_and_the_cursor_moves_past_the_others(api, hooks):
    with Receiver() as receiver:
        hook = subscribe(api, receiver.url, types=["media.tags_changed"], tags=["keep"])
        create_media(api, "a")
        create_media(api, "b")
        api.put("/api/media/update/tags", [{"pid": "a", "tags": ["keep"]}, {"pid": "b", "tags": ["other"]}])
        deliver_until(lambda: len(receiver.received) >= 1)
    [only] = receiver.received
    assert json.loads(only.body)["pid"] == "a" and only.headers["X-Mediastore-Event"] == "media.tags_changed"
    newest = max(int(c) for c in feed_items(api))
    assert api.get(f"/api/webhooks/{hook['id']}").json()["cursor"] == str(newest)


def test_failures_are_retried_with_growing_backoff_then_everything_arrives(api, hooks):
    """The receiver answers 500 four times, then 200: the first event is retried with the same
    delivery id after waits that grow, and no event is lost or reordered."""
    with Receiver(answer=lambda n: 500 if n <= 4 else 200) as receiver:
        hook = subscribe(api, receiver.url)
        for n in range(3):
            create_media(api, f"r{n}")
        deliver_until(lambda: len([r for r in receiver.received if r.answered == 200]) >= 3)
    got = receiver.received
    assert [r.answered for r in got] == [500] * 4 + [200] * 3
    first_ids = {r.headers["X-Mediastore-Delivery"] for r in got[:5]}
    assert len(first_ids) == 1  # a retry keeps its delivery id
    assert len({r.headers["X-Mediastore-Delivery"] for r in got}) == 3
    assert [json.loads(r.body)["pid"] for r in got[4:]] == ["r0", "r1", "r2"]
    attempts = list(WebhookDelivery.objects.filter(subscription_id=hook["id"]).order_by("pk"))
    assert [a.attempt for a in attempts] == [1, 2, 3, 4, 5, 1, 1]
    waits = [(a.retry_at - a.time).total_seconds() for a in attempts[:4]]
    # planned waits double (base 50 ms, each between half and all of its step): 25-50, 50-100, ...
    for number, wait in enumerate(waits):
        assert 0.05 * 2**number / 2 <= wait <= 0.05 * 2**number + 0.5, waits
    for before, after in zip(got[:4], got[1:5], strict=True):
        gap = after.time - before.time
        assert gap >= 0.05 * 2 ** (got.index(before)) / 2 - 0.01  # never retried before its wait
    state = api.get(f"/api/webhooks/{hook['id']}").json()
    assert state["failed_total"] == 4 and state["delivered_total"] == 3 and state["active"]


def test_a_receiver_that_never_answers_gets_the_subscription_paused_with_an_event(api, hooks):
    hooks.MEDIASTORE_WEBHOOK_MAX_ATTEMPTS = 3
    with Receiver(answer=lambda n: HANG) as receiver:
        hook = subscribe(api, receiver.url)
        create_media(api, "p0")
        deliver_until(lambda: not WebhookSubscription.objects.get(pk=hook["id"]).active, rounds=400)
    assert len(receiver.received) == 3
    state = api.get(f"/api/webhooks/{hook['id']}").json()
    assert state["active"] is False and state["attempts"] == 3
    assert "3 failed attempts in a row" in state["paused_reason"]
    assert "no complete answer within 1 s" in state["paused_reason"]
    deliveries = api.get(f"/api/webhooks/{hook['id']}/deliveries").json()
    assert [d["status"] for d in deliveries] == [None] * 3 and all(not d["ok"] for d in deliveries)
    paused = [e for e in feed_items(api).values() if e["type"] == "webhook.paused"]
    assert len(paused) == 1
    assert paused[0]["pid"] == "" and paused[0]["media"]["webhook"]["id"] == hook["id"]
    assert paused[0]["media"]["webhook"]["paused_reason"] == state["paused_reason"]
    typed = api.get("/api/events?types=webhook.paused").json()["items"]
    assert [e["cursor"] for e in typed] == [paused[0]["cursor"]]
    # resumed: goes on at the event it failed on
    with Receiver() as receiver:
        assert (
            api.patch(f"/api/webhooks/{hook['id']}", {"active": True, "url": receiver.url}).status_code == 200
        )
        deliver_until(lambda: len(receiver.received) >= 2)
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["media.created", "webhook.paused"]


def test_a_trickling_receiver_is_cut_off_at_the_total_timeout(api, hooks):
    """Regression guard: a per-read socket timeout alone lets a receiver sending a byte every
    half second hold a worker for as long as it likes."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
                if stop.wait(0.3):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    hook = subscribe(api, f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
    create_media(api, "slow")
    call_command("deliver_webhooks", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
    stop.set()
    listener.close()
    [delivery] = api.get(f"/api/webhooks/{hook['id']}/deliveries").json()
    assert delivery["ok"] is False and delivery["status"] is None
    assert delivery["error"] == "no complete answer within 1 s"


def test_the_target_is_checked_again_at_delivery(api, hooks, monkeypatch):
    """A name that resolved to a public address at creation and to 10.0.0.1 now (DNS rebinding),
    and a loopback target whose allow entry was removed: both refused at delivery, nothing sent."""
    names = {"hooks.example.org": "93.184.216.34"}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with Receiver() as receiver:
        rebound = subscribe(api, "https://hooks.example.org/in")
        loopback = subscribe(api, receiver.url)
        names["hooks.example.org"] = "10.0.0.1"
        hooks.MEDIASTORE_WEBHOOK_ALLOW_HOSTS = []
        hooks.MEDIASTORE_WEBHOOK_BACKOFF_MS = 60_000  # one attempt each in this --once
        create_media(api, "x")
        call_command("deliver_webhooks", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert receiver.received == []
    [first] = api.get(f"/api/webhooks/{rebound['id']}/deliveries").json()
    assert first["error"].startswith("refused: the webhook host hooks.example.org resolves to 10.0.0.1")
    [second] = api.get(f"/api/webhooks/{loopback['id']}/deliveries").json()
    assert second["error"].startswith("refused: http:// webhook targets are only allowed")
    assert first["retry_at"] is not None and second["status"] is None


def test_test_event_and_redelivery(api, hooks):
    with Receiver() as receiver:
        hook = subscribe(api, receiver.url)
        sent = api.post(f"/api/webhooks/{hook['id']}/test").json()
        assert sent["ok"] is True and sent["status"] == 200 and sent["type"] == "webhook.test"
        [test] = receiver.received
        assert (
            test.headers["X-Mediastore-Event"] == "webhook.test"
            and test.headers["X-Mediastore-Cursor"] == "0"
        )
        assert signature_valid(hook["secret"], test.headers, test.body)
        assert test.headers["X-Mediastore-Delivery"] == sent["delivery_id"]
        for n in range(3):
            create_media(api, f"d{n}")
        deliver_until(lambda: len(receiver.received) >= 4)
        cursors = [r.headers["X-Mediastore-Cursor"] for r in receiver.received[1:]]
        again = api.post(f"/api/webhooks/{hook['id']}/redeliver", {"cursor": int(cursors[1])})
        assert again.status_code == 200 and again.json()["cursor"] == cursors[0]
        deliver_until(lambda: len(receiver.received) >= 6)
    replayed = receiver.received[4:]
    assert [r.headers["X-Mediastore-Cursor"] for r in replayed] == cursors[1:]
    first_ids = {r.headers["X-Mediastore-Delivery"] for r in receiver.received[2:4]}
    assert not first_ids & {r.headers["X-Mediastore-Delivery"] for r in replayed}  # a redelivery is new
    newest = int(cursors[-1])
    assert api.post(f"/api/webhooks/{hook['id']}/redeliver", {"cursor": newest + 2}).status_code == 422
    assert api.post(f"/api/webhooks/{hook['id']}/redeliver", {"cursor": 0}).status_code == 422


def test_the_receiver_of_the_docs_acknowledges_signed_events_and_refuses_others(api, hooks, monkeypatch):
    """docs/webhooks.md's whole receiver, run as written (its SECRET and PORT supplied)."""
    servers = []

    class Recorded(http.server.HTTPServer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            servers.append(self)

    monkeypatch.setattr(http.server, "HTTPServer", Recorded)
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    hook = subscribe(api, f"http://127.0.0.1:{port}/")
    names = {"SECRET": hook["secret"], "PORT": port}
    thread = threading.Thread(
        target=exec, args=(doc_example("docs/webhooks.md", 0, ["SECRET", "PORT"]), names), daemon=True
    )
    thread.start()
    try:
        for _ in range(100):
            if servers:
                break
            time.sleep(0.05)
        create_media(api, "docs")
        deliver_until(lambda: WebhookDelivery.objects.filter(ok=True).exists())
        [delivery] = api.get(f"/api/webhooks/{hook['id']}/deliveries").json()
        assert delivery["status"] == 204 and delivery["type"] == "media.created"
        names["SECRET"] = "not the secret"  # the example reads its global at each request
        hooks.MEDIASTORE_WEBHOOK_BACKOFF_MS = 60_000
        create_media(api, "docs2")
        call_command("deliver_webhooks", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
        refused = api.get(f"/api/webhooks/{hook['id']}/deliveries").json()[0]
        assert refused["status"] == 401 and refused["ok"] is False
    finally:
        for server in servers:
            server.shutdown()
        thread.join(timeout=10)


def test_lag_and_failures_show_in_metrics_and_on_the_status_page(api, hooks, user, django_user_model):
    from django.test import Client
    from prometheus_client.parser import text_string_to_metric_families

    from tests.permissions_support import role

    hooks.MEDIASTORE_WEBHOOK_BACKOFF_MS = 60_000
    with Receiver(answer=lambda n: 503) as receiver:
        hook = subscribe(api, receiver.url)
        for n in range(3):
            create_media(api, f"lag{n}")
        call_command("deliver_webhooks", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert len(receiver.received) == 1
    samples = {}
    for family in text_string_to_metric_families(Client().get("/metrics").content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    ident = str(hook["id"])
    assert samples[("mediastore_webhook_lag_events", (("id", ident),))] == 3
    assert samples[("mediastore_webhook_attempts_failing", (("id", ident),))] == 1
    assert samples[("mediastore_webhook_paused", (("id", ident),))] == 0
    assert samples[("mediastore_webhook_deliveries_total", (("id", ident), ("result", "failed")))] == 1
    assert samples[("mediastore_webhook_deliveries_total", (("id", ident), ("result", "ok")))] == 0

    admin_page = Client()
    admin_page.force_login(user)
    page = admin_page.get("/status/").content.decode()
    assert 'id="panel-webhooks"' in page
    assert (
        f"#{ident} {receiver.url}: active; 3 events behind; 0 delivered, 1 failed attempts (1 in a row"
        in page
    )
    reader = django_user_model.objects.create_user(username="reader", password="x")
    reader.groups.add(role("readers"))
    reader_page = Client()
    reader_page.force_login(reader)
    shown = reader_page.get("/status/")
    assert shown.status_code == 200 and "panel-webhooks" not in shown.content.decode()


def test_pruned_events_are_reported_not_silently_skipped(api, hooks):
    """Events pruned before a (paused) subscription got them: redelivering from there is 410, and
    the worker says in the deliveries which ones it could not send, then goes on."""
    with Receiver() as receiver:
        hook = subscribe(api, receiver.url)
        assert api.patch(f"/api/webhooks/{hook['id']}", {"active": False}).status_code == 200
        for n in range(3):
            create_media(api, f"old{n}")
        first = int(min(feed_items(api), key=int))
        call_command("prune_events", "--days", "0", stdout=open("/dev/null", "w"))  # noqa: SIM115
        gone = api.post(f"/api/webhooks/{hook['id']}/redeliver", {"cursor": first})
        assert gone.status_code == 410 and "pruned" in gone.json()["detail"]
        sent = api.post(f"/api/webhooks/{hook['id']}/test").json()  # a paused subscription too
        assert sent["ok"] is True and receiver.received[0].headers["X-Mediastore-Event"] == "webhook.test"
        assert api.patch(f"/api/webhooks/{hook['id']}", {"active": True}).status_code == 200
        create_media(api, "new")
        deliver_until(lambda: len(receiver.received) >= 2)
    assert json.loads(receiver.received[1].body)["pid"] == "new"
    [delivered, pruned, _test] = api.get(f"/api/webhooks/{hook['id']}/deliveries").json()
    assert (
        pruned["error"]
        == f"events {first} to {first + 2} were pruned (prune_events) before they were delivered"
    )
    assert delivered["ok"] and delivered["cursor"] == str(first + 3)


def test_prune_keeps_what_an_active_subscription_has_not_had_yet(api, hooks):
    with Receiver() as receiver:
        hook = subscribe(api, receiver.url)
        for n in range(3):
            create_media(api, f"keep{n}")
        call_command("prune_events", "--days", "0", stdout=open("/dev/null", "w"))  # noqa: SIM115
        assert len(feed_items(api)) == 3  # the worker has not run: all kept
        deliver_until(lambda: len(receiver.received) >= 3)
    assert [json.loads(r.body)["pid"] for r in receiver.received] == ["keep0", "keep1", "keep2"]
    call_command("prune_events", "--days", "0", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert feed_items(api) == {}  # delivered: pruned as usual
    assert api.get(f"/api/webhooks/{hook['id']}").json()["delivered_total"] == 3


def test_a_new_secret_signs_every_delivery_from_then_on(api, hooks):
    with Receiver() as receiver:
        hook = subscribe(api, receiver.url)
        create_media(api, "before")
        deliver_until(lambda: len(receiver.received) >= 1)
        renewed = api.post(f"/api/webhooks/{hook['id']}/secret")
        assert renewed.status_code == 200, renewed.content
        secret = renewed.json()["secret"]
        assert (
            secret != hook["secret"]
            and renewed.json()["cursor"] == api.get(f"/api/webhooks/{hook['id']}").json()["cursor"]
        )
        assert secret not in str(api.get(f"/api/webhooks/{hook['id']}").json())
        create_media(api, "after")
        deliver_until(lambda: len(receiver.received) >= 2)
        assert api.post(f"/api/webhooks/{hook['id']}/test").json()["ok"] is True
    first, second, test = receiver.received
    assert signature_valid(hook["secret"], first.headers, first.body)
    for received in (second, test):
        assert signature_valid(secret, received.headers, received.body)
        assert not signature_valid(hook["secret"], received.headers, received.body)
    assert json.loads(second.body)["pid"] == "after"
    assert api.post("/api/webhooks/999/secret").status_code == 404
