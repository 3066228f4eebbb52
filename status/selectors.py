"""The figures of the status page and ``GET /api/stats``, from a fixed number of small queries.

At 1,000,000 media nothing here touches media one by one. On PostgreSQL, counts and byte sums per
(store, status, pid type) and per day come from ``MediaTally``, running totals the database keeps
with triggers (status/models.py): a few hundred rows whatever the number of media. On SQLite they
come from GROUP BY queries over the media (small installations). The verify failures come from
the partial index ``media_verify_failed``. The statement count is constant
(tests/status/test_stats.py checks it); ``bench/stats.py`` times it at 1,000,000 media.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from prometheus_client import Metric
from prometheus_client.core import GaugeMetricFamily

from content.models import Repair, Replica, ReplicaState
from media.models import Media, StoreStatus
from status.health import last_probes, probe_and_record
from status.models import MediaTally
from stores.models import StoreConfig

DAYS = 30
FAILURES = 10
# Fold the tally's delta rows into one row per key once this many new ones have been added.
COMPACT_AT = 1000

COMPACT_SQL = """
WITH gone AS (
    DELETE FROM status_mediatally RETURNING store_config_id, store_status, pid_type, day, count, bytes
)
INSERT INTO status_mediatally (store_config_id, store_status, pid_type, day, count, bytes, compacted)
SELECT store_config_id, store_status, pid_type, day, sum(count), sum(bytes), true FROM gone
GROUP BY 1, 2, 3, 4 HAVING sum(count) <> 0 OR sum(bytes) <> 0
"""


def tallied() -> bool:
    """Whether the database keeps MediaTally (PostgreSQL, migration status 0001)."""
    return connection.vendor == "postgresql"


def compact_tally(*, threshold: int = COMPACT_AT) -> bool:
    """Fold the tally into one row per key when more than ``threshold`` delta rows were added since
    the last time; True when it did. One statement: it sums exactly the rows it deletes, so deltas
    that writers commit meanwhile are kept for the next time, never lost or counted twice."""
    if not tallied() or MediaTally.objects.filter(compacted=False).count() <= threshold:
        return False
    with connection.cursor() as cursor:
        cursor.execute(COMPACT_SQL)
    return True


def grouped_query():
    """Media count and byte sum per (store, status, pid type), as rows with the keys
    store_config_id, store_status, pid_type(_id), n, b (a QuerySet, for EXPLAIN in the bench)."""
    if tallied():
        return (
            MediaTally.objects.order_by()
            .values("store_config_id", "store_status", "pid_type")
            .annotate(n=Sum("count"), b=Sum("bytes"))
            .filter(n__gt=0)
        )
    return (
        Media.objects.order_by()
        .values("store_config_id", "store_status", "pid_type_id")
        .annotate(n=Count("pk"), b=Sum("size"))
    )


def grouped() -> list[dict]:
    """Rows of {store_config_id, store_status, pid_type, count, bytes}."""
    return [
        {
            "store_config_id": row["store_config_id"],
            "store_status": row["store_status"],
            "pid_type": row["pid_type"] if "pid_type" in row else row["pid_type_id"],
            "count": row["n"],
            "bytes": row["b"] or 0,
        }
        for row in grouped_query()
    ]


def per_day(now: datetime, days: int = DAYS) -> list[dict]:
    """Media created on each of the last ``days`` days (UTC dates, oldest first, today included;
    days without any are 0)."""
    today = now.date()
    first = today - timedelta(days=days - 1)
    if tallied():
        rows = MediaTally.objects.filter(day__gte=first).order_by().values("day").annotate(n=Sum("count"))
    else:
        start = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
        rows = (
            Media.objects.filter(created__gte=start)
            .order_by()
            .annotate(day=TruncDate("created"))
            .values("day")
            .annotate(n=Count("pk"))
        )
    counts: dict[date, int] = {row["day"]: row["n"] for row in rows}
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


REPAIR_DAYS = 30


def replica_figures(now: datetime) -> dict:
    """Replicas per state and per store (one grouped query), the copies not GOOD yet with their
    last errors, and the repairs of the last REPAIR_DAYS days."""
    by_state = {state: 0 for state in ReplicaState.values}
    per_store: dict[int, dict[str, int]] = defaultdict(lambda: {"replicas": 0, "replica_bytes": 0})
    rows = Replica.objects.values("state", "store_config_id").annotate(count=Count("pk"), bytes=Sum("size"))
    for row in rows.order_by():
        by_state[row["state"]] += row["count"]
        per_store[row["store_config_id"]]["replicas"] += row["count"]
        if row["state"] == ReplicaState.GOOD:
            per_store[row["store_config_id"]]["replica_bytes"] += row["bytes"] or 0
    errors = (
        Replica.objects.exclude(state=ReplicaState.GOOD)
        .exclude(error="")
        .order_by("-updated")
        .values("media__pid", "store_config_id", "state", "error", "updated")[:FAILURES]
    )
    return {
        "by_state": by_state,
        "per_store": per_store,
        "behind": sum(count for state, count in by_state.items() if state != ReplicaState.GOOD),
        "errors": [
            {
                "pid": r["media__pid"],
                "store": r["store_config_id"],
                "state": r["state"],
                "error": r["error"],
                "time": r["updated"],
            }
            for r in errors
        ],
        "repairs": Repair.objects.filter(time__gte=now - timedelta(days=REPAIR_DAYS)).count(),
    }


def store_label(store: StoreConfig) -> str:
    return f"{store.pk} {store.type}:{store.bucket}"


def stats(now: datetime | None = None, *, health: bool = False, probe: bool = False) -> dict:
    """Every figure of the status page, as ``GET /api/stats`` answers it (status.schemas.StatsOut).
    ``health``: add each store's last recorded probe (status.health; nothing is written);
    ``probe`` (the caller has checked the caller may): probe each store now and record it."""
    now = now or timezone.now()
    compact_tally()
    by_status: dict[str, int] = {choice: 0 for choice in StoreStatus.values}
    by_pid_type: dict[str, int] = defaultdict(int)
    per_store: dict[int, dict[str, int]] = defaultdict(lambda: {"media": 0, "objects": 0, "bytes": 0})
    total = total_bytes = 0
    for row in grouped():
        count, size = row["count"], row["bytes"] or 0
        total += count
        by_status[row["store_status"]] = by_status.get(row["store_status"], 0) + count
        by_pid_type[row["pid_type"]] += count
        store = per_store[row["store_config_id"]]
        store["media"] += count
        if row["store_status"] == StoreStatus.READY:  # only READY media have stored objects
            store["objects"] += count
            store["bytes"] += size
            total_bytes += size
    stores = list(StoreConfig.objects.select_related("s3cfg").order_by("pk"))
    if probe:
        probes = probe_and_record(stores)
        for result in probes.values():
            result["age_s"] = 0.0
    else:
        probes = last_probes(now) if health else {}
    failed, failures = verify_failures()
    copies = replica_figures(now)
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
                "replicas": copies["per_store"][s.pk]["replicas"],
                "replica_bytes": copies["per_store"][s.pk]["replica_bytes"],
                "health": probes.get(s.pk),
            }
            for s in stores
        ],
        "created_per_day": per_day(now),
        "verify_failed": failed,
        "verify_failures": failures,
        "replicas": copies["by_state"],
        "replicas_behind": copies["behind"],
        "replica_errors": copies["errors"],
        "repairs_30d": copies["repairs"],
    }


def scrape_figures() -> Iterator[Metric]:
    """Gauges for /metrics, computed at each scrape: media by status (one aggregate query, of the
    tally on PostgreSQL) and media whose last fixity check failed (the partial index)."""
    by_status = GaugeMetricFamily("mediastore_media", "Media records by store_status.", labels=["status"])
    counts: dict[str, int] = defaultdict(int)
    for row in grouped():  # the tally on PostgreSQL: no pass over the media
        counts[row["store_status"]] += row["count"]
    for status in StoreStatus.values:
        by_status.add_metric([status], counts.get(status, 0))
    yield by_status
    yield GaugeMetricFamily(
        "mediastore_media_verify_failed",
        "Media whose last fixity check (manage.py verify) failed.",
        value=Media.objects.filter(verify_ok=False).count(),
    )
    replicas = GaugeMetricFamily(
        "mediastore_replicas", "Replicas of media bytes by state (content.replicas).", labels=["state"]
    )
    counts = dict(Replica.objects.values_list("state").annotate(count=Count("pk")).order_by())
    for state in ReplicaState.values:
        replicas.add_metric([state], counts.get(state, 0))
    yield replicas
    yield GaugeMetricFamily(
        "mediastore_replicas_behind",
        "Replicas not GOOD yet (COPYING, STALE, BAD, MISSING): the replication lag in copies.",
        value=sum(count for state, count in counts.items() if state != ReplicaState.GOOD),
    )
