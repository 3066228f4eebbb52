"""The lifecycle rules of a media: when it expires, and what a hold forbids.

``expires_at`` (set at create, by PATCH, or from the store's ``default_ttl``) ends a media's life:
afterwards every read answers 404 (``Expired``) and ``manage.py expire`` deletes it (or a new media
of its pid does, the same way, ``media.services.media_insert``), unless a hold keeps it (then it is
served as before until the hold ends). A hold
(``POST /api/media/{pid}/hold``) forbids deleting, replacing, moving and expiring the media until
its ``hold_until`` (None: until released); with ``hold_freeze`` record edits too. A hold whose
``hold_until`` has passed holds nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from mediastore.errors import Expired, Locked


def is_expired(media, now: datetime | None = None) -> bool:
    """Past its ``expires_at`` and not kept by a hold (a hold suspends expiry while it lasts)."""
    now = now or timezone.now()
    return media.expires_at is not None and media.expires_at <= now and not hold_active(media, now)


def not_expired_q(now: datetime) -> Q:
    """The media that are served: no expiry, a future one, or kept by a hold."""
    held = Q(hold_since__isnull=False) & (Q(hold_until__isnull=True) | Q(hold_until__gt=now))
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now) | held


def check_not_expired(media) -> None:
    """Expired (404) when ``media`` passed its ``expires_at``."""
    if is_expired(media):
        raise Expired(media.pid, media.expires_at.isoformat())


def hold_active(media, now: datetime | None = None) -> bool:
    if media.hold_since is None:
        return False
    return media.hold_until is None or media.hold_until > (now or timezone.now())


def check_hold(media, action: str, *, edit: bool = False) -> None:
    """Locked (423) when an active hold forbids ``action`` on ``media``; ``edit``: a record edit
    (metadata, tags, identifiers, pid, revert), forbidden only by a frozen hold."""
    if not hold_active(media) or (edit and not media.hold_freeze):
        return
    until = media.hold_until.isoformat() if media.hold_until else None
    raise Locked(
        f"media '{media.pid}' is on hold ({'frozen, ' if media.hold_freeze else ''}"
        f"{'until ' + until if until else 'until released'}; reason: {media.hold_reason or 'none given'}): "
        f"it cannot be {action}; an administrator releases it with DELETE /api/media/{media.pid}/hold",
        pid=media.pid,
        hold_reason=media.hold_reason,
        hold_until=until,
        hold_freeze=media.hold_freeze,
    )


def hold_out(media, now: datetime | None = None) -> dict[str, Any] | None:
    """The media answer's ``hold``: None when there is no active hold."""
    if not hold_active(media, now):
        return None
    return {
        "since": media.hold_since,
        "until": media.hold_until,
        "reason": media.hold_reason,
        "freeze": media.hold_freeze,
        "by": media.hold_by,
    }


def default_expiry(store, now: datetime) -> datetime | None:
    """``now`` plus the store's ``default_ttl`` seconds, or None for a store without one."""
    ttl = getattr(store, "default_ttl", None)
    return now + timedelta(seconds=ttl) if ttl else None
