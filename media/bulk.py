"""The one engine behind every per-item update endpoint: ``bulk_apply(items, change)`` locks the
media of the items, applies a plain change function to each (each item succeeds or fails on its
own), then writes every changed media, its history rows, tags and outbox events in a constant
number of statements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from media.lifecycle import check_not_expired
from media.models import EventType, Media, next_marks
from media.outbox import event_for, record
from media.pids import pick
from media.selectors import media_locked
from media.tags import sync_tags
from media.usage import charge_move, warnings
from mediastore.errors import MediastoreError, NotFound
from quotas.services import Crossing, Ledger
from stores.models import StoreConfig


@dataclass
class BulkOutcome:
    successes: list[str] = field(default_factory=list)
    failures: list[tuple[str, MediastoreError]] = field(default_factory=list)
    changed: list[Media] = field(default_factory=list)
    applied: list[Media] = field(default_factory=list)  # the media of each success, in order

    def as_dict(self) -> dict:
        return {
            "successes": self.successes,
            "failures": [{"pid": pid, "error": exc.kind, "msg": exc.message} for pid, exc in self.failures],
        }


T = TypeVar("T")
# A change: given a media (locked, as earlier items left it) and one item, the attributes to set.
# It must not modify the media itself; a MediastoreError it raises becomes that item's failure.
Change = Callable[[Media, T], dict[str, Any]]


def _differs(media: Media, attr: str, value: Any) -> bool:
    if isinstance(value, StoreConfig):
        return media.store_config_id != value.pk
    return getattr(media, attr) != value


def bulk_apply(
    items: list[tuple[str, T]],
    change: Change[T],
    *,
    user,
    tags_changed: bool = False,
    reason: str = "",
    event_type: str | None = None,
    expired_too: bool = False,
) -> BulkOutcome:
    """Apply ``change(media, item)`` to the media of each ``(pid, item)``; each item succeeds or
    fails on its own.

    Items are applied in order, so two items for one pid see each other. Then every changed media
    is written, stamped and recorded in the history in one go, with ``reason`` as the history
    rows' change reason, and one outbox event per changed media: ``event_type``, else
    ``media.moved`` when its store changed, ``media.tags_changed`` when only its tags did,
    ``media.updated`` otherwise. An expired media is that item's failure (404) unless
    ``expired_too`` (a hold may keep one that expired but was not deleted yet).
    """
    outcome = BulkOutcome()
    with transaction.atomic():
        found = {m.pid: m for m in media_locked(pids=[pid for pid, _ in items])}
        by_pk: dict[int, Media] = {}
        fields: set[str] = set()
        changed_of: dict[int, set[str]] = {}
        crossings: list[tuple[Media, list[Crossing]]] = []
        ledger = Ledger()  # the moves' usage: checked item by item, written once
        for pid, item in items:
            media = pick(found, pid)
            try:
                if media is None:
                    raise NotFound("Media", pid)
                if not expired_too:
                    check_not_expired(media)  # not served: not changed either
                updates = {k: v for k, v in change(media, item).items() if _differs(media, k, v)}
                if "store_config" in updates:  # a move: charged to the new store (or refused) now
                    # The first move locks every quota the moves may touch at once (the stores and
                    # owners of all these media, and this target: a bulk move has one target; a
                    # later item's other target would be locked when it comes up).
                    if not ledger.stores:
                        ledger.reserve(
                            {m.store_config_id for m in found.values()} | {updates["store_config"].pk},
                            {m.owner_id for m in found.values() if m.owner_id},
                        )
                    crossings.append((media, charge_move(ledger, media, updates["store_config"].pk)))
            except MediastoreError as exc:
                outcome.failures.append((pid, exc))
                continue
            for attr, value in updates.items():
                setattr(media, attr, value)
                fields.add(attr.removesuffix("_id"))
                changed_of.setdefault(media.pk, set()).add(attr.removesuffix("_id"))
            if updates:
                by_pk[media.pk] = media
            outcome.successes.append(pid)
            outcome.applied.append(media)
        outcome.changed = list(by_pk.values())
        ledger.apply()
        if outcome.changed:
            _write_changes(
                outcome.changed, fields, changed_of, user, tags_changed, reason, event_type, crossings
            )
    return outcome


def _write_changes(changed, fields, changed_of, user, tags_changed, reason, event_type, crossings) -> None:
    now = timezone.now()
    for media, mark in zip(changed, next_marks(len(changed)), strict=True):
        media.stamp(mark)
        media.updated = now
    Media.objects.bulk_update(changed, [*sorted(fields), "mark", "version", "updated"])
    Media.history.bulk_history_create(
        changed, update=True, default_user=user, default_date=now, default_change_reason=reason
    )
    if tags_changed:
        sync_tags(changed)
    record(
        [
            event_for(
                media,
                event_type or change_type(changed_of[media.pk]),
                user=user,
                now=now,
                changed=changed_of[media.pk],
            )
            for media in changed
        ]
        + [event for media, crossed in crossings for event in warnings(crossed, [media, media], user=user)]
    )


def change_type(fields: set[str]) -> str:
    """The event type of an update that changed these fields (model names, ``_id`` dropped)."""
    if "store_config" in fields:
        return EventType.MOVED
    if fields == {"tag_list"}:
        return EventType.TAGS_CHANGED
    return EventType.UPDATED


def raise_first_failure(outcome: BulkOutcome) -> None:
    if outcome.failures:
        raise outcome.failures[0][1]
