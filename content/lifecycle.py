"""The lifecycle sweeps that move bytes: ``manage.py expire`` deletes the media past their
``expires_at`` (``media.lifecycle`` has the rules), as a normal delete does, with events
``media.expired``; held media stay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from content.deletes import media_delete_many
from media.models import Media

EXPIRE_BATCH = 500


@dataclass
class ExpireResult:
    expired: int = 0
    held: int = 0  # expired, but kept by a hold


def expire_media(*, now: datetime | None = None, batch: int = EXPIRE_BATCH) -> ExpireResult:
    """Delete every media whose ``expires_at`` is at or before ``now`` (default: now) and that no
    hold keeps, ``batch`` at a time, each batch as ``POST /api/media/delete`` deletes (history row
    with reason "expired", bytes, replicas, the recycle bin's rules) but with the event
    ``media.expired``. Media that expire while this runs wait for the next run."""
    now = now or timezone.now()
    result = ExpireResult()
    due = Media.objects.filter(expires_at__lte=now)
    free = Q(hold_since__isnull=True) | Q(hold_until__lte=now)
    result.held = due.exclude(free).count()
    after = 0
    for _ in range(due.filter(free).count() // batch + 2):  # bounded: each round takes a batch or ends
        rows = list(due.filter(free, pk__gt=after).order_by("pk").values_list("pk", "pid")[:batch])
        if not rows:
            break
        after = rows[-1][0]
        outcome = media_delete_many([pid for _, pid in rows], user=None, expiring=True)
        result.expired += len(outcome.successes)
        result.held += sum(1 for _, exc in outcome.failures if exc.kind == "Locked")
    return result
