"""The webhook worker (``manage.py deliver_webhooks``): POSTs each subscription's events, in order.

Per subscription, events are sent one at a time in cursor order; the next one only after the
previous was acknowledged (a 2xx) or left out by the subscription's filters. Anything else (another
status, a redirect, a timeout, a connection error, a target that now resolves to a refused
address) is a failed attempt: the event is tried again after a backoff (``backoff_seconds``:
doubling from ``MEDIASTORE_WEBHOOK_BACKOFF_MS``, with jitter), with the same delivery id, and after
``MEDIASTORE_WEBHOOK_MAX_ATTEMPTS`` failures in a row the subscription is paused with the reason
and a ``webhook.paused`` event. Each attempt writes a ``WebhookDelivery`` row; the newest
``KEPT_DELIVERIES`` per subscription are kept.

Several workers (PostgreSQL)
----------------------------
A worker leases a subscription by locking its row with ``SELECT ... FOR UPDATE SKIP LOCKED`` in a
transaction held while it delivers a batch of that subscription's events and records them;
another worker skips a locked subscription and serves the next. A worker killed mid-batch loses
its connection, the transaction rolls back and the lease is free: the events it had not recorded
are sent again, with the same delivery ids (receivers drop duplicates by ``X-Mediastore-Delivery``).

SQLite has no row locks and one writer at a time, so a transaction held during HTTP requests would
stall every writer: there each attempt is recorded in its own short transaction, and one worker
per data directory delivers (it holds ``deliver_webhooks.lock`` in ``MEDIASTORE_DATA_DIR``);
another started beside it waits as a standby.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from ninja.responses import NinjaJSONEncoder

from events.models import KEPT_DELIVERIES, WebhookDelivery, WebhookSubscription
from events.relay import message_body
from events.webhook_http import Answer, post
from events.webhook_targets import TargetRefused, checked_address, parse_target
from events.webhooks import delivery_id, record_paused, sign, test_event_body, unix_now
from media.models import MediaEvent
from media.outbox import first_kept
from mediastore import crypto

BATCH_EVENTS = 100  # events per lease at most, so that other subscriptions get their turn
LEASE_SECONDS = 10.0  # and no longer than this (plus one attempt): API changes wait for the lease
# What the worker writes of a subscription (the API may change the rest meanwhile).
PROGRESS = ["last_seq", "attempts", "next_attempt_at", "delivered_total", "failed_total", "last_success_at"]
PAUSE = ["active", "paused_at", "paused_reason"]
# What the API changes that invalidates a worker's progress (on SQLite, where nothing is locked).
STATE = ["generation", "last_seq", "active", "url"]
USER_AGENT = "mediastore-webhooks"


def backoff_seconds(attempts: int) -> float:
    """Wait after ``attempts`` failures in a row: the base doubled per failure up to the maximum,
    then a random part of its upper half (so each wait is at least as long as the one before)."""
    base = settings.MEDIASTORE_WEBHOOK_BACKOFF_MS / 1000
    ceiling = settings.MEDIASTORE_WEBHOOK_BACKOFF_MAX_MS / 1000
    wait = min(ceiling, base * 2 ** min(max(attempts - 1, 0), 30))
    return wait / 2 + random.uniform(0, wait / 2)  # noqa: S311 (jitter, not a secret)


def row_locks() -> bool:
    return connection.features.has_select_for_update_skip_locked


def matches(subscription: WebhookSubscription, event: MediaEvent) -> bool:
    """Whether the subscription's filters (each empty: anything) let ``event`` through."""
    if subscription.types and event.type not in subscription.types:
        return False
    media = event.media or {}
    if subscription.pid_types and media.get("pid_type") not in subscription.pid_types:
        return False
    return not subscription.tags or bool(set(subscription.tags) & set(media.get("tags") or []))


def send(subscription: WebhookSubscription, body: bytes, event_type: str, cursor: str, ident) -> Answer:
    """One signed POST of ``body``; the target is checked (and resolved) again right before."""
    try:
        target = parse_target(subscription.url)
        address = checked_address(target)
    except TargetRefused as exc:
        return Answer(None, f"refused: {exc.message}", 0)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Mediastore-Event": event_type,
        "X-Mediastore-Cursor": cursor,
        "X-Mediastore-Delivery": str(ident),
        "X-Mediastore-Signature": sign(crypto.decrypt(subscription.secret), unix_now(), body),
    }
    return post(
        target,
        address,
        body,
        headers,
        connect_timeout=settings.MEDIASTORE_WEBHOOK_CONNECT_TIMEOUT_S,
        total_timeout=settings.MEDIASTORE_WEBHOOK_TIMEOUT_S,
    )


def unchanged(subscription: WebhookSubscription) -> bool:
    """Whether the row still says what the worker read (call it in the transaction that writes):
    on SQLite an API call (redeliver, pause, a new url) may have changed it during an attempt;
    on PostgreSQL the lease holds the API's change back until the batch is done."""
    now = WebhookSubscription.objects.filter(pk=subscription.pk).values(*STATE).first()
    return now == {name: getattr(subscription, name) for name in STATE}


def keep_newest(subscription_id: int) -> None:
    """Delete the deliveries of a subscription beyond the newest ``KEPT_DELIVERIES``."""
    rows = WebhookDelivery.objects.filter(subscription_id=subscription_id)
    oldest_kept = (
        rows.order_by("-pk").values_list("pk", flat=True)[KEPT_DELIVERIES - 1 : KEPT_DELIVERIES].first()
    )
    if oldest_kept is not None:
        rows.filter(pk__lt=oldest_kept).delete()


def record_delivery(subscription: WebhookSubscription, **fields) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(subscription=subscription, **fields)
    keep_newest(subscription.pk)
    return delivery


def send_test(subscription: WebhookSubscription, user) -> WebhookDelivery:
    """POST a ``webhook.test`` event (cursor "0") now and record the attempt; the subscription's
    cursor and attempts are not touched."""
    body = json.dumps(test_event_body(user), cls=NinjaJSONEncoder).encode()
    started = timezone.now()
    ident = uuid.uuid4()
    answer = send(subscription, body, "webhook.test", "0", ident)
    return record_delivery(
        subscription,
        delivery_id=ident,
        cursor=None,
        type="webhook.test",
        time=started,
        status=answer.status,
        ok=answer.ok,
        duration_ms=answer.duration_ms,
        error=answer.error,
    )


class Deliverer:
    """Delivers until ``stop()``, ``max_seconds``, or (``once``) nothing is due any more.
    ``log`` receives one line per happening."""

    def __init__(self, *, poll_seconds: float = 1.0, log: Callable[[str], None] = print) -> None:
        self.poll_seconds = poll_seconds
        self.log = log
        self.stopping = False
        self.deadline = float("inf")

    def stop(self) -> None:
        self.stopping = True

    def done(self) -> bool:
        return self.stopping or time.monotonic() >= self.deadline

    def run(self, *, once: bool = False, max_seconds: float | None = None) -> int:
        """Returns the number of events handled (attempts made and events the filters left out)."""
        if max_seconds is not None:
            self.deadline = time.monotonic() + max_seconds
        if row_locks():
            return self.loop(once)
        with self.single_worker(once) as mine:
            return self.loop(once) if mine else 0

    @contextlib.contextmanager
    def single_worker(self, once: bool) -> Iterator[bool]:
        """SQLite: hold ``deliver_webhooks.lock``; wait for it as a standby (``once``: give up)."""
        data_dir: Path = settings.MEDIASTORE_DATA_DIR
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(data_dir / "deliver_webhooks.lock", "a+") as handle:
            waited = False
            while not self.done():
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if once:
                        self.log("another deliver_webhooks delivers on this database; nothing done")
                        yield False
                        return
                    if not waited:
                        self.log("another deliver_webhooks delivers on this database; waiting as a standby")
                        waited = True
                    self.sleep(self.poll_seconds)
                    continue
                yield True
                return
            yield False

    def loop(self, once: bool) -> int:
        total = 0
        failures = 0
        while not self.done():
            try:
                made, busy = self.one_pass()
                failures = 0
            except DatabaseError as exc:
                failures += 1
                connection.close()
                wait = min(30.0, 0.5 * 2 ** min(failures, 6))
                self.log(f"database error: {exc}; retrying in {wait:g} s")
                self.sleep(wait)
                continue
            total += made
            if once and not busy:
                break
            if not busy:
                self.sleep(self.poll_seconds)
        return total

    def one_pass(self) -> tuple[int, bool]:
        """Serve every subscription that has something due. Returns (events handled, whether to go
        on at once: anything was handled, so more may be due)."""
        now = timezone.now()
        newest = MediaEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        due = (
            WebhookSubscription.objects.filter(active=True, last_seq__lt=newest)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .values_list("pk", flat=True)
        )
        made = 0
        for pk in list(due):
            if self.done():
                break
            made += self.serve(pk, now)
        return made, made > 0

    def serve(self, pk: int, now) -> int:
        """Deliver a batch of one subscription's events, if no other worker holds it."""
        if not row_locks():
            subscription = WebhookSubscription.objects.filter(pk=pk, active=True).first()
            return 0 if subscription is None else self.deliver(subscription)
        with transaction.atomic():
            lease = WebhookSubscription.objects.select_for_update(skip_locked=True).filter(
                Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), pk=pk, active=True
            )
            subscription = lease.first()
            return 0 if subscription is None else self.deliver(subscription)

    def deliver(self, subscription: WebhookSubscription) -> int:
        """Send the subscription's next events in order until one fails, the batch is full or the
        lease time is up; record each attempt. Returns the number of events handled."""
        handled = 0
        started = time.monotonic()
        kept_from = first_kept()
        if subscription.last_seq + 1 < kept_from:
            self.skip_pruned(subscription, kept_from)
        events = MediaEvent.objects.filter(seq__gt=subscription.last_seq).order_by("seq")[:BATCH_EVENTS]
        for event in events:
            if self.stopping or time.monotonic() - started > LEASE_SECONDS:
                break
            handled += 1
            if not matches(subscription, event):
                with transaction.atomic():
                    if not unchanged(subscription):
                        break
                    subscription.last_seq = event.seq
                    subscription.save(update_fields=["last_seq"])
                continue
            if not self.attempt(subscription, event):
                break
        return handled

    def skip_pruned(self, subscription: WebhookSubscription, kept_from: int) -> None:
        """Events the subscription had not been sent were pruned: say so in its deliveries, go on."""
        lost = f"{subscription.last_seq + 1} to {kept_from - 1}"
        self.log(f"webhook {subscription.pk}: events {lost} were pruned before delivery")
        with transaction.atomic():
            record_delivery(
                subscription,
                delivery_id=delivery_id(subscription, kept_from - 1),
                cursor=kept_from - 1,
                type="",
                time=timezone.now(),
                error=f"events {lost} were pruned (prune_events) before they were delivered",
            )
            if unchanged(subscription):
                subscription.last_seq = kept_from - 1
                subscription.save(update_fields=["last_seq"])

    def attempt(self, subscription: WebhookSubscription, event: MediaEvent) -> bool:
        """One attempt at ``event``; recorded with its outcome. Whether it was acknowledged."""
        ident = delivery_id(subscription, event.seq)
        started = timezone.now()
        answer = send(subscription, message_body(event), event.type, str(event.seq), ident)
        now = timezone.now()
        with transaction.atomic():
            fields = dict(
                delivery_id=ident,
                cursor=event.seq,
                type=event.type,
                attempt=subscription.attempts + 1,
                time=started,
                status=answer.status,
                ok=answer.ok,
                duration_ms=answer.duration_ms,
                error=answer.error,
            )
            if not unchanged(subscription):  # changed through the API meanwhile: its word wins
                record_delivery(subscription, **fields)
                return False
            if answer.ok:
                subscription.last_seq = event.seq
                subscription.attempts, subscription.next_attempt_at = 0, None
                subscription.delivered_total += 1
                subscription.last_success_at = now
                record_delivery(subscription, **fields)
                subscription.save(update_fields=PROGRESS)
                return True
            subscription.attempts += 1
            subscription.failed_total += 1
            if subscription.attempts >= settings.MEDIASTORE_WEBHOOK_MAX_ATTEMPTS:
                subscription.active = False
                subscription.paused_at = now
                subscription.paused_reason = (
                    f"{subscription.attempts} failed attempts in a row to deliver event {event.seq} "
                    f"({event.type}); the last: {answer.error}"
                )
                subscription.next_attempt_at = None
                record_delivery(subscription, **fields)
                subscription.save(update_fields=PROGRESS + PAUSE)
                record_paused(subscription, now)
                self.log(f"webhook {subscription.pk} paused: {subscription.paused_reason}")
                return False
            subscription.next_attempt_at = now + timedelta(seconds=backoff_seconds(subscription.attempts))
            record_delivery(subscription, retry_at=subscription.next_attempt_at, **fields)
            subscription.save(update_fields=PROGRESS)
            self.log(
                f"webhook {subscription.pk}: event {event.seq} failed ({answer.error}); retry at "
                f"{subscription.next_attempt_at:%H:%M:%S}"
            )
            return False

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        for _ in range(int(seconds / 0.2) + 2):
            remaining = min(end, self.deadline) - time.monotonic()
            if self.stopping or remaining <= 0:
                return
            time.sleep(min(0.2, remaining))
