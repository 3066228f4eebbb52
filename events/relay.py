"""The AMQP relay (``manage.py relay_events``): publishes the outbox events to RabbitMQ, in order.

Each event becomes one persistent message (delivery mode 2, ``application/json``) on the topic
exchange ``MEDIASTORE_AMQP_EXCHANGE`` (durable unless ``MEDIASTORE_AMQP_EXCHANGE_DURABLE`` is false,
for consumers of the AMPLIfy amqp-utils, which declare it transient), routing key = the event type
(``media.created``...),
body = exactly the JSON object the feed (``GET /api/events``) answers for it. The channel is in
publisher-confirm mode and an event's ``published`` is set only after the broker confirmed its
message, so delivery is at least once: a relay that dies between the confirm and the database
update publishes that event again when it restarts; consumers drop duplicates by ``cursor``.

Order
-----
Events are published in ``seq`` order (commit order, ``media.outbox``), a batch at a time: the
batch is always the oldest unpublished *prefix*, never events further on. When the broker
connection breaks mid-batch, the confirmed part of the batch is marked and the rest is sent again
after reconnecting (backoff 0.5 s doubling to 30 s), still in order.

Two relays at once (PostgreSQL)
-------------------------------
A relay takes a batch inside a transaction that it holds while publishing and waiting for the
confirms: it first locks the oldest unpublished event with ``FOR UPDATE SKIP LOCKED``; that row is
the lease. If another relay holds it, the lock returns nothing and this relay waits and tries
again, instead of skipping ahead: a relay that took the *next* unlocked rows (plain ``SKIP
LOCKED`` on the whole batch) would publish later events, possibly of the same media, before the
earlier ones are confirmed, and consumers would see a media's changes out of order. Holding the
lease, it locks and publishes up to ``batch_size`` events from there, marks the confirmed ones and
commits, which releases the lease to whichever relay asks next. So a second relay is a hot
standby, not extra throughput; publishing is one ordered stream anyway. A relay killed at any
point loses its database connection, its transaction rolls back and the lease is free again
(why a row lock rather than a lease column with an expiry: no clock, no expiry to tune, and a dead
relay can never keep the lease).

SQLite has no row locks and one writer at a time, so holding a transaction while publishing would
stall every writer: there the relay reads a batch, publishes it and then marks it, and only one
relay may run per data directory. It takes an exclusive lock on ``relay_events.lock`` in
``MEDIASTORE_DATA_DIR`` and a second one refuses to start (``RelayBusy``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pika.exceptions
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from ninja.responses import NinjaJSONEncoder

from events.schemas import EventOut
from events.selectors import event_out
from media.models import MediaEvent
from mediastore import failpoints

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
SLEEP_SLICE_SECONDS = 0.2


class RelayBusy(Exception):
    """Another relay already runs on this SQLite database (its lock file is held)."""


# The broker says no to who the relay is or what it may do: an error of configuration that no
# retry mends, unlike a broker that is down or a connection that dropped.
REFUSED = (
    pika.exceptions.AuthenticationError,
    pika.exceptions.ProbableAuthenticationError,
    pika.exceptions.ProbableAccessDeniedError,
)
ACCESS_REFUSED = 403


class RelayRefused(Exception):
    """The broker refused the relay's credentials or permissions (``manage.py relay_events`` exits 1)."""


def refused(exc: Exception, where: str, exchange: str) -> RelayRefused | None:
    """The RelayRefused that ``exc`` amounts to, or None for an error worth retrying."""
    if isinstance(exc, REFUSED):
        return RelayRefused(
            f"RabbitMQ at {where} refused the relay ({type(exc).__name__}: {exc}); check the user, "
            "password and virtual host in MEDIASTORE_AMQP_URL: retrying cannot help"
        )
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and exc.reply_code == ACCESS_REFUSED:
        return RelayRefused(
            f"RabbitMQ at {where} refused the relay access to exchange {exchange!r} ({exc.reply_text}); "
            "give its user permissions there (rabbitmqctl set_permissions)"
        )
    return None


def message_body(event: MediaEvent) -> bytes:
    """The event as the feed answers it: the same schema, rendered by the same JSON encoder."""
    item = EventOut.model_validate(event_out(event)).model_dump()
    return json.dumps(item, cls=NinjaJSONEncoder).encode()


def backoff_seconds(failures: int) -> float:
    """Wait after ``failures`` consecutive failed attempts: 0.5 s, 1 s, 2 s ... at most 30 s."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** min(max(failures - 1, 0), 16))


def row_locks() -> bool:
    """Whether the database can lease batches with row locks (PostgreSQL); else one relay only."""
    return connection.features.has_select_for_update_skip_locked


@contextlib.contextmanager
def single_relay_lock(data_dir: Path) -> Iterator[None]:
    """Hold ``relay_events.lock`` in ``data_dir`` exclusively; RelayBusy when another relay has it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "relay_events.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RelayBusy(
                f"another relay_events runs on this database ({path} is locked); "
                "on SQLite one relay runs at a time"
            ) from None
        yield


@contextlib.contextmanager
def claimed_batch(size: int) -> Iterator[list[MediaEvent] | None]:
    """The oldest unpublished events (at most ``size``, in order); None when another relay holds
    them. On PostgreSQL they stay locked until the block ends (the caller marks them in it)."""
    if not row_locks():
        yield list(MediaEvent.objects.filter(published__isnull=True).order_by("seq")[:size])
        return
    with transaction.atomic():
        unpublished = MediaEvent.objects.filter(published__isnull=True)
        first = unpublished.order_by("seq").values_list("seq", flat=True).first()
        if first is None:
            yield []
            return
        lease = (
            unpublished.select_for_update(skip_locked=True).filter(seq=first).values_list("seq", flat=True)
        )
        if not list(lease):  # another relay holds the prefix (or just published it)
            yield None
            return
        yield list(unpublished.select_for_update().filter(seq__gte=first).order_by("seq")[:size])


def mark_published(seqs: list[int]) -> None:
    if seqs:
        MediaEvent.objects.filter(seq__in=seqs).update(published=timezone.now())


class Relay:
    """Publishes until ``stop()`` is called (e.g. from a signal handler), ``max_seconds`` pass, or,
    with ``exit_when_idle``, nothing is left to publish. ``log`` receives one line per happening."""

    def __init__(
        self,
        url: str,
        exchange: str,
        *,
        durable: bool = True,
        batch_size: int = 100,
        poll_seconds: float = 0.5,
        log: Callable[[str], None] = print,
    ) -> None:
        self.parameters = pika.URLParameters(url)
        self.exchange = exchange
        self.durable = durable
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.log = log
        self.stopping = False
        self.deadline = float("inf")

    def stop(self) -> None:
        self.stopping = True

    def done(self) -> bool:
        return self.stopping or time.monotonic() >= self.deadline

    def run(self, *, max_seconds: float | None = None, exit_when_idle: bool = False) -> None:
        if max_seconds is not None:
            self.deadline = time.monotonic() + max_seconds
        if row_locks():
            self._run(exit_when_idle)
        else:
            with single_relay_lock(settings.MEDIASTORE_DATA_DIR):
                self._run(exit_when_idle)

    def _run(self, exit_when_idle: bool) -> None:
        where = f"{self.parameters.host}:{self.parameters.port}"
        failures = 0
        while not self.done():
            amqp = None
            try:
                amqp = pika.BlockingConnection(self.parameters)
                channel = amqp.channel()
                channel.confirm_delivery()
                channel.exchange_declare(self.exchange, exchange_type="topic", durable=self.durable)
                self.log(f"connected to {where}, exchange {self.exchange!r}")
                failures = 0
                while not self.done():
                    sent = self.publish_batch(channel)
                    if sent:
                        continue
                    if sent == 0 and exit_when_idle:
                        self.log("nothing left to publish")
                        return
                    self.sleep(self.poll_seconds, amqp)
            except (pika.exceptions.AMQPError, DatabaseError) as exc:
                refusal = refused(exc, where, self.exchange)
                if refusal is not None:
                    raise refusal from None
                failures += 1
                wait = backoff_seconds(failures)
                self.log(f"{type(exc).__name__}: {str(exc) or 'no connection'}; retrying in {wait:g} s")
                if isinstance(exc, DatabaseError):
                    connection.close()
                self.sleep(wait)
            finally:
                if amqp is not None and amqp.is_open:
                    with contextlib.suppress(pika.exceptions.AMQPError):
                        amqp.close()
        self.log("stopped")

    def publish_batch(self, channel) -> int | None:
        """Publish the next batch; mark what the broker confirmed. Returns how many were confirmed,
        None when another relay holds the batch; re-raises a broker error after marking."""
        error: pika.exceptions.AMQPError | None = None
        with claimed_batch(self.batch_size) as events:
            if events is None:
                return None
            confirmed: list[int] = []
            for event in events:
                if self.stopping:
                    break
                try:
                    self.publish(channel, event)
                except pika.exceptions.AMQPError as exc:
                    error = exc
                    break
                confirmed.append(event.seq)
                failpoints.hit("relay.after_confirm")
            mark_published(confirmed)
        failpoints.hit("relay.after_batch")  # the live test lets another relay take the lease here
        if confirmed:
            self.log(f"published {len(confirmed)} events, up to cursor {confirmed[-1]}")
        if error is not None:
            raise error
        return len(confirmed)

    def publish(self, channel, event: MediaEvent) -> None:
        """One persistent message; returns once the broker confirmed it (NackError if refused)."""
        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=str(event.seq),
        )
        channel.basic_publish(self.exchange, event.type, message_body(event), properties)

    def sleep(self, seconds: float, amqp: pika.BlockingConnection | None = None) -> None:
        """Sleep in short slices, waking for stop(); with a connection, serve its heartbeats (and
        notice a dropped connection: pika raises)."""
        end = time.monotonic() + seconds
        for _ in range(int(seconds / SLEEP_SLICE_SECONDS) + 2):
            remaining = min(end, self.deadline) - time.monotonic()
            if self.stopping or remaining <= 0:
                return
            if amqp is not None:
                amqp.sleep(min(SLEEP_SLICE_SECONDS, remaining))
            else:
                time.sleep(min(SLEEP_SLICE_SECONDS, remaining))
