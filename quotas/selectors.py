"""Reads of quotas and usage."""

from __future__ import annotations

from django.db.models import Sum

from quotas.models import Quota, Usage


def quota_use(quota: Quota) -> tuple[int, int]:
    """(bytes, media) that ``quota`` counts now."""
    rows = Usage.objects.all()
    if quota.store_id is not None:
        rows = rows.filter(store_id=quota.store_id)
    if quota.user_id is not None:
        rows = rows.filter(owner=quota.user.get_username())
    totals = rows.aggregate(bytes=Sum("bytes"), media=Sum("media"))
    return int(totals["bytes"] or 0), int(totals["media"] or 0)  # PostgreSQL sums bigints as numeric


def quota_out(quota: Quota) -> dict:
    used_bytes, used_media = quota_use(quota)
    return {
        "pk": quota.pk,
        "store": quota.store_id,
        "user": quota.user.get_username() if quota.user_id else None,
        "max_bytes": quota.max_bytes,
        "max_media": quota.max_media,
        "used_bytes": used_bytes,
        "used_media": used_media,
    }


def quota_list() -> list[dict]:
    """Every quota with its use now (a statement per quota: there are few)."""
    return [quota_out(quota) for quota in Quota.objects.select_related("user").order_by("pk")]


def usage_list(*, user: str | None = None, store: int | None = None) -> list[dict]:
    """The usage rows (store, owner) that are not empty, by store and owner; ``user`` "" means the
    media without an owner."""
    rows = Usage.objects.exclude(bytes=0, media=0)
    if user is not None:
        rows = rows.filter(owner=user)
    if store is not None:
        rows = rows.filter(store_id=store)
    return [
        {"store": row.store_id, "user": row.owner or None, "bytes": row.bytes, "media": row.media}
        for row in rows.order_by("store_id", "owner")
    ]


def usage_figures() -> dict:
    """What the status page charts: bytes and media per owner (largest first; "(no owner)" for
    media without one), and each quota with its use as a share of its tightest limit."""
    owners = (
        Usage.objects.values("owner")
        .annotate(bytes=Sum("bytes"), media=Sum("media"))
        .exclude(bytes=0, media=0)
        .order_by("-bytes", "owner")
    )
    quotas = []
    for quota in quota_list():
        shares = []
        for unit in ("bytes", "media"):
            limit = quota[f"max_{unit}"]
            if limit is not None:
                used = quota[f"used_{unit}"]
                shares.append((100.0 * used / limit if limit else 100.0, f"{used} of {limit} {unit}"))
        percent, text = max(shares)
        who = [f"store {quota['store']}" if quota["store"] is not None else "", quota["user"] or ""]
        quotas.append(
            {
                "label": " / ".join(filter(None, who)) or "site-wide",
                "percent": round(percent, 1),
                "text": text,
            }
        )
    return {
        "owners": [
            {"owner": row["owner"] or "(no owner)", "bytes": int(row["bytes"]), "media": int(row["media"])}
            for row in owners
        ],
        "quotas": quotas,
    }
