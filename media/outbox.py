"""The transactional outbox: every change of a media writes one ``MediaEvent`` row in the
transaction of the change, so an event exists exactly when its change committed.

Event types (``MediaEvent.type``):

- ``media.created``: a media was created (``POST /api/media``, ``/api/media/create``, ``/api/upload``);
- ``media.updated``: pid, pid_type, identifiers, metadata or store_key changed (``changed`` names them);
- ``media.tags_changed``: only its tags changed;
- ``media.bytes_stored``: bytes were stored, replaced or completed (PUT content, upload completion);
- ``media.moved``: it moved to another store configuration (maybe with other fields);
- ``media.reverted``: ``POST /api/media/{pid}/revert`` restored an earlier version;
- ``media.deleted``: it was deleted; ``media`` is the media as it was.
- ``media.verify_failed``: a fixity check (``manage.py verify``, ``content.fixity``) found its bytes
  changed or missing; not a change of the media (same ``mark`` and ``version``), and ``media``
  carries ``"verify": {"ok", "error", "verified_at"}``.

Numbering in commit order
-------------------------
Transactions commit in another order than they start, so numbers from a sequence (or an
autoincrement id) can become visible out of order: a reader that moved past 11 never sees a 10
that commits later. Here the numbers come from one counter row (``EventCounter``) that the writing
transaction increments as its *last* statements (with the event insert) and keeps locked until it
commits. The next writer waits for that lock, so it takes its numbers only after the previous
writer committed (or rolled back, which also rolls the counter back): numbers are handed out in
commit order and without gaps. Whenever a reader sees event ``n``, every event below ``n`` has
committed before it and is visible too, so ``seq > cursor`` never skips anything. On PostgreSQL
this holds because a transaction becomes visible to new snapshots before it releases its row
locks; on SQLite writes are serialised by the database anyway (one writer at a time), and the same
counter keeps the numbers gapless. The price is that the tails of concurrent writes (counter
update, event insert, commit: a few milliseconds) run one after the other.

Why not PostgreSQL's snapshot horizon (serve only events whose writing transaction id is below
``pg_snapshot_xmin(pg_current_snapshot())``): that horizon is cluster-wide, so any long
transaction in any database of the server holds the feed back, and a reader never sees events of
its own open transaction; the counter works the same on both databases and inside tests.

Each write adds two statements whatever the number of media: the counter update and one insert
of the events (a COPY on PostgreSQL, ``media.copyrows``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from media.copyrows import insert
from media.models import EventCounter, Media, MediaEvent, new_instance
from media.schemas import media_out_dict
from mediastore import failpoints

# Model fields as the API names them (what ``changed`` lists).
API_NAMES = {"tag_list": "tags", "pid_type_id": "pid_type", "store_config_id": "store_config"}


def api_field(name: str) -> str:
    return API_NAMES.get(name, name)


def username(user) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    return user.get_username()


def take_numbers(count: int) -> list[int]:
    """``count`` consecutive event numbers; the counter row stays locked until the transaction
    ends (must run inside one, as its last statements with the insert)."""
    table = connection.ops.quote_name(EventCounter._meta.db_table)
    take = f"UPDATE {table} SET value = value + %s WHERE id = 1 RETURNING value"
    with connection.cursor() as cursor:
        cursor.execute(take, [count])
        row = cursor.fetchone()
        if row is None:
            # The migration makes the row; only a flushed database lacks it. Concurrent first
            # writers may all get here: one insert wins, the others wait for it, and all then take
            # their numbers from the same row (SQLite and PostgreSQL both know ON CONFLICT).
            cursor.execute(f"INSERT INTO {table} (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
            cursor.execute(take, [count])
            row = cursor.fetchone()
    return list(range(row[0] - count + 1, row[0] + 1))


def event_for(
    media: Media, type: str, *, user, changed: Iterable[str] = (), now=None, as_it_was: dict | None = None
) -> MediaEvent:
    """An unsaved event for ``media`` as it is now (``as_it_was``: the dict to send instead)."""
    body: dict[str, Any] = as_it_was if as_it_was is not None else media_out_dict(media)
    values = {
        "type": type,
        "pid": body["pid"],
        "media_pk": body["pk"],
        "mark": media.mark,
        "version": media.version,
        "user": username(user),
        "time": now or timezone.now(),
        "changed": sorted({api_field(name) for name in changed}),
        "media": body,
    }
    return new_instance(MediaEvent, values)  # MediaEvent(**values), positionally


def record(events: list[MediaEvent]) -> list[MediaEvent]:
    """Number and insert the events (two statements). Call it last in the change's transaction."""
    if not events:
        return events
    if not connection.in_atomic_block:
        raise RuntimeError("events must be recorded in the transaction of their change")
    for event, seq in zip(events, take_numbers(len(events)), strict=True):
        event.seq = seq
    insert(MediaEvent, events)
    failpoints.hit("events.before_commit")  # the live test widens the window to the commit here
    return events


@transaction.atomic
def prune(before, *, keep_unpublished: bool = False, keep_from: int | None = None) -> int:
    """Delete the events older than ``before`` as one prefix of the numbering (up to the first
    event that is kept), so the kept events stay gapless and the feed can tell a cursor whose
    successors were pruned. ``keep_unpublished``: also keep every event from the first one a relay
    has not published yet; ``keep_from``: every event from that number on (what a reader, such as
    a webhook subscription, has not had yet). Returns how many were deleted."""
    kept = Q(time__gte=before) | Q(published__isnull=True) if keep_unpublished else Q(time__gte=before)
    if keep_from is not None:
        kept |= Q(seq__gte=keep_from)
    keep_from = MediaEvent.objects.filter(kept).order_by("seq").values_list("seq", flat=True).first()
    doomed = MediaEvent.objects.all() if keep_from is None else MediaEvent.objects.filter(seq__lt=keep_from)
    deleted, _ = doomed.delete()
    return deleted


def first_kept() -> int:
    """The number of the oldest event kept; when none is kept, the number the next one gets."""
    oldest = MediaEvent.objects.order_by("seq").values_list("seq", flat=True).first()
    if oldest is not None:
        return oldest
    counter = EventCounter.objects.filter(pk=1).values_list("value", flat=True).first()
    return (counter or 0) + 1
