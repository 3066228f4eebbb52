"""Reading the changes feed from the outbox ``media.outbox`` writes.

Why a consumer never moves past an event that has not committed yet: events are numbered (``seq``)
by a counter row that each writing transaction locks until it commits, so numbers are handed out
in commit order and without gaps (``media.outbox`` explains it for PostgreSQL and SQLite). A reader
that sees event ``n`` therefore sees every event below ``n``: the page of events after a cursor is
always a complete prefix of what follows it. A page first reads the newest number visible, then the
events up to it, so ``next`` may skip past events that a ``types`` filter left out without ever
skipping one that was still uncommitted.

Retention (``manage.py prune_events``) deletes a prefix of the numbering; a cursor whose
successors were deleted is answered with 410 Gone instead of silently skipping them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Max

from content.models import ReplicaEvent
from media.models import EventType, MediaEvent
from media.outbox import first_kept
from mediastore.dbrouting import REPLICA, reading_alias
from mediastore.errors import Gone, RuleViolation
from mediastore.limits import MAX_EVENTS_PAGE
from quotas.models import QuotaEvent

DEFAULT_LIMIT = 100
MAX_WAIT_SECONDS = 30
POLL_SECONDS = 0.25
#: What ``Retry-After`` says to a long poll that found no free waiting place.
BUSY_RETRY_SECONDS = 5
# Written by the webhook worker when it pauses a subscription (events.webhooks.paused_event).
WEBHOOK_PAUSED = "webhook.paused"
TYPES = [choice.value for choice in (*EventType, *ReplicaEvent, *QuotaEvent)] + [WEBHOOK_PAUSED]


@dataclass
class Page:
    items: list[MediaEvent]
    next: int
    #: An empty page answered at once because this server process had no free waiting place.
    busy: bool = False


class Waiters:
    """The long polls this server process lets wait at once (``MEDIASTORE_EVENTS_WAITERS``).

    A waiting poll holds a request thread for up to 30 s; without a bound, a few hundred consumers
    would hold every thread and small reads would queue behind them. Past the bound a poll that has
    nothing to show answers at once (empty, ``busy``) instead of waiting (docs/events.md)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting = 0

    def enter(self) -> bool:
        with self._lock:
            if self._waiting >= settings.MEDIASTORE_EVENTS_WAITERS:
                return False
            self._waiting += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._waiting -= 1


WAITERS = Waiters()


def parse_cursor(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise RuleViolation(f"bad cursor {text[:40]!r}: pass back a `cursor` or `next` the feed gave")
    return int(text)


def parse_types(values: list[str] | None) -> set[str]:
    """Event types from repeated and/or comma-separated values; RuleViolation for unknown ones."""
    names = {name.strip() for value in values or [] for name in value.split(",") if name.strip()}
    unknown = sorted(names - set(TYPES))
    if unknown:
        raise RuleViolation(f"unknown event types {unknown}; known: {', '.join(TYPES)}")
    return names


def events_after(after: int | None, *, limit: int, types: set[str]) -> Page:
    """One page of the events after cursor ``after`` (None: from the oldest kept), oldest first.

    Raises Gone when events after ``after`` were pruned."""
    start = first_kept() - 1 if after is None else after
    newest = MediaEvent.objects.aggregate(top=Max("seq"))["top"]
    if after is not None:
        last = newest if newest is not None else first_kept() - 1  # all pruned: the last number given
        if after > last and reading_alias() == REPLICA:
            # A cursor from the primary that the replica has not replayed yet: nothing new so far
            # (a long poll tries again), never a 422 for a cursor the feed did give.
            return Page([], after)
        if after > last:
            raise RuleViolation(
                f"cursor {after} is beyond the newest event ({last}): pass back a `cursor` or `next` the "
                "feed gave, or start without `after`"
            )
    if newest is None or newest <= start:
        items = []
    else:
        rows = MediaEvent.objects.filter(seq__gt=start, seq__lte=newest)
        if types:
            rows = rows.filter(type__in=types)
        items = list(rows.order_by("seq")[:limit])
    if after is not None and after + 1 < first_kept():  # checked after reading: pruning only grows
        raise Gone(
            f"events after cursor {after} were pruned (kept: from {first_kept()}); start again without "
            "`after` (and resynchronise from GET /api/media/dump)"
        )
    if len(items) == limit:
        return Page(items, items[-1].seq)
    return Page(items, max(start, newest or 0))


def events_feed(after: str | None, *, limit: int, types: list[str] | None, wait: int) -> Page:
    """``events_after``, long-polling up to ``wait`` seconds (in short sleeps) while it is empty;
    at once, empty and ``busy``, when ``WAITERS`` has no free place."""
    if not 1 <= limit <= MAX_EVENTS_PAGE:
        raise RuleViolation(f"limit must be between 1 and {MAX_EVENTS_PAGE}")
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        raise RuleViolation(f"wait must be between 0 and {MAX_WAIT_SECONDS} seconds")
    cursor, wanted = parse_cursor(after), parse_types(types)
    deadline = time.monotonic() + wait
    page = events_after(cursor, limit=limit, types=wanted)
    if page.items or wait == 0:
        return page
    if not WAITERS.enter():
        page.busy = True
        return page
    try:
        for _ in range(int(wait / POLL_SECONDS) + 1):  # bounded even if the clock misbehaves
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(POLL_SECONDS, remaining))
            page = events_after(cursor, limit=limit, types=wanted)
            if page.items:
                break
    finally:
        WAITERS.leave()
    return page


def event_out(event: MediaEvent) -> dict:
    return {
        "cursor": str(event.seq),
        "type": event.type,
        "pid": event.pid,
        "mark": event.mark,
        "version": event.version,
        "user": event.user or None,
        "time": event.time,
        "changed": event.changed,
        "media": event.media,
    }
