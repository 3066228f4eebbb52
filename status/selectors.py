"""The figures of the status page and ``GET /api/stats``, from a fixed number of aggregate queries.

At 1,000,000 media nothing here touches media one by one: counts and byte sums come from one
GROUP BY over (store, status, pid type) that PostgreSQL answers from the index
``media_stats_groups`` alone, media per day from a range of ``media_created_id``, and the verify
failures from the partial index ``media_verify_failed``. The few groups are then added up in
Python. The statement count is constant (tests/status/test_stats.py checks it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from prometheus_client import Metric
from prometheus_client.core import GaugeMetricFamily

from media.models import Media, StoreStatus
from status.health import probe_all
from stores.models import StoreConfig

DAYS = 30
FAILURES = 10


def grouped_query() -> QuerySet:
    """Media count and byte sum per (store, status, pid type): the one pass over the media."""
    return (
        Media.objects.order_by()
        .values("store_config_id", "store_status", "pid_type_id")
        .annotate(count=Count("pk"), bytes=Sum("size"))
    )


def grouped() -> list[dict]:
    return list(grouped_query())


def per_day(now: datetime, days: int = DAYS) -> list[dict]:
    """Media created on each of the last ``days`` days (UTC dates, oldest first, today included;
    days without any are 0)."""
    today = now.date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
    counts: dict[date, int] = dict(
        Media.objects.filter(created__gte=start)
        .order_by()
        .annotate(day=TruncDate("created"))
        .values("day")
        .annotate(count=Count("pk"))
        .values_list("day", "count")
    )
    return [
        {"day": first + timedelta(days=n), "count": counts.get(first + timedelta(days=n), 0)}
        for n in range(days)
    ]


def verify_failures(limit: int = FAILURES) -> tuple[int, list[dict]]:
    """How many media failed their last fixity check, and the ``limit`` most recent of them."""
    failed = Media.objects.filter(verify_ok=False)
    latest = list(
        failed.order_by("-verified_at").values("pid", "store_config_id", "verified_at", "verify_error")[
            :limit
        ]
    )
    return failed.count(), [
        {
            "pid": row["pid"],
            "store": row["store_config_id"],
            "verified_at": row["verified_at"],
            "error": row["verify_error"],
        }
        for row in latest
    ]


def store_label(store: StoreConfig) -> str:
    return f"{store.pk} {store.type}:{store.bucket}"


def stats(now: datetime | None = None, *, health: bool = False) -> dict:
    """Every figure of the status page, as ``GET /api/stats`` answers it (status.schemas.StatsOut);
    ``health``: probe each store now (status.health) and add the result to it."""
    now = now or timezone.now()
    by_status: dict[str, int] = {choice: 0 for choice in StoreStatus.values}
    by_pid_type: dict[str, int] = defaultdict(int)
    per_store: dict[int, dict[str, int]] = defaultdict(lambda: {"media": 0, "objects": 0, "bytes": 0})
    total = total_bytes = 0
    for row in grouped():
        count, size = row["count"], row["bytes"] or 0
        total += count
        by_status[row["store_status"]] = by_status.get(row["store_status"], 0) + count
        by_pid_type[row["pid_type_id"]] += count
        store = per_store[row["store_config_id"]]
        store["media"] += count
        if row["store_status"] == StoreStatus.READY:  # only READY media have stored objects
            store["objects"] += count
            store["bytes"] += size
            total_bytes += size
    stores = list(StoreConfig.objects.select_related("s3cfg").order_by("pk"))
    probes = probe_all(stores) if health else {}
    failed, failures = verify_failures()
    return {
        "generated": now,
        "media": total,
        "bytes": total_bytes,
        "by_status": by_status,
        "by_pid_type": dict(sorted(by_pid_type.items(), key=lambda item: (-item[1], item[0]))),
        "stores": [
            {
                "pk": s.pk,
                "type": s.type,
                "bucket": s.bucket,
                "s3_url": s.s3_url,
                "label": store_label(s),
                **per_store[s.pk],
                "health": probes.get(s.pk),
            }
            for s in stores
        ],
        "created_per_day": per_day(now),
        "verify_failed": failed,
        "verify_failures": failures,
    }


def scrape_figures() -> Iterator[Metric]:
    """Gauges for /metrics, computed at each scrape: media by status (one aggregate query) and
    media whose last fixity check failed (the partial index)."""
    by_status = GaugeMetricFamily("mediastore_media", "Media records by store_status.", labels=["status"])
    counts = dict(
        Media.objects.order_by()
        .values("store_status")
        .annotate(n=Count("pk"))
        .values_list("store_status", "n")
    )
    for status in StoreStatus.values:
        by_status.add_metric([status], counts.get(status, 0))
    yield by_status
    yield GaugeMetricFamily(
        "mediastore_media_verify_failed",
        "Media whose last fixity check (manage.py verify) failed.",
        value=Media.objects.filter(verify_ok=False).count(),
    )
