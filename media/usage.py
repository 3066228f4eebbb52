"""What media writes charge to the usage table (``quotas.services.charge``), and the
``quota.warning`` events of the quotas they take past 90%.

Only primary copies count: a media counts once, with its ``size`` (a PENDING media with a declared
size counts that size from its creation, so a presigned or multipart upload cannot outgrow a quota
while its bytes travel), in its store, for its owner. Replicas do not count.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Sum

from media.models import Media, MediaEvent
from media.outbox import event_for
from media.schemas import media_out_dict
from quotas.models import QuotaEvent
from quotas.services import Crossing, Delta, Ledger, charge, precheck


def owner_name(user) -> str | None:
    """The username a new media of ``user`` is owned by; None for no account (the importer)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.get_username()


def counted(media: Media, sign: int = 1) -> Delta:
    """The delta of ``media`` appearing (sign 1) or going (sign -1) as it is now."""
    return Delta(media.store_config_id, media.owner_id or "", sign * (media.size or 0), sign)


def charge_inserted(objs: list[Media], *, user, check: bool = True) -> list[MediaEvent]:
    """Charge new media rows (QuotaExceeded naming the first item that does not fit); the warning
    events to record with the write."""
    crossings = charge([counted(obj) for obj in objs], check=check)
    return warnings(crossings, objs, user=user)


def charge_change(media: Media, before: Delta, *, user) -> list[MediaEvent]:
    """Charge the change of one media from ``before`` (``counted(media)`` as it was) to how it is
    now: a new size, another store (QuotaExceeded when that does not fit); its warning events."""
    now = counted(media)
    if (now.store_id, now.owner) == (before.store_id, before.owner):  # one pair: only the difference
        deltas = [Delta(now.store_id, now.owner, now.bytes - before.bytes, now.media - before.media)]
    else:
        deltas = [Delta(before.store_id, before.owner, -before.bytes, -before.media), now]
    return warnings(charge(deltas), [media, media], user=user)


def charge_move(ledger: Ledger, media: Media, store_id: int) -> list[Crossing]:
    """Charge moving ``media`` (as it is now) to the store ``store_id`` to ``ledger`` (QuotaExceeded
    when it does not fit there); its crossings, for ``warnings`` once the write has its mark."""
    now = counted(media)
    return ledger.add(
        [Delta(now.store_id, now.owner, -now.bytes, -1), Delta(store_id, now.owner, now.bytes, 1)]
    )


def precheck_bytes(media: Media, size: int | None, *, new: bool = False) -> None:
    """QuotaExceeded now, before a byte is sent or stored, when ``size`` bytes for ``media`` (a
    ``new`` one: also one more media; else replacing what it counts) would not fit as things stand.
    Nothing is locked: the charge at the write's commit has the final word."""
    if size is None and not new:
        return
    added = (size or 0) - (0 if new else (media.size or 0))
    precheck(media.store_config_id, media.owner_id or "", bytes=added, media=1 if new else 0)


def credit_removed(objs: Iterable[Media]) -> None:
    """Take media rows that are deleted (or binned) off the usage; never refused."""
    charge([counted(obj, -1) for obj in objs], check=False)


def warnings(crossings: list[Crossing], subjects: list[Media], *, user) -> list[MediaEvent]:
    """One ``quota.warning`` event per crossing, about the media whose write crossed (``subjects``
    by delta index): its answer with ``quota`` added; mark and version are the write's."""
    events = []
    for crossing in crossings:
        media = subjects[crossing.index]
        body = {**media_out_dict(media), "quota": crossing.as_dict()}
        events.append(event_for(media, QuotaEvent.WARNING, user=user, as_it_was=body))
    return events


def recount() -> dict[tuple[int, str], tuple[int, int]]:
    """(store, owner) -> (bytes, media) counted from the media rows now: what the usage rows must
    say (tests compare them)."""
    rows = Media.objects.values("store_config_id", "owner_id").annotate(total=Sum("size"), count=Count("pk"))
    return {
        (row["store_config_id"], row["owner_id"] or ""): (int(row["total"] or 0), row["count"])
        for row in rows
    }
