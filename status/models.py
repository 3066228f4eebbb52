"""Running totals of the media for /api/stats, kept by the database itself on PostgreSQL.

``MediaTally`` rows are deltas: every statement that inserts, deletes or updates media adds, through
statement-level triggers (migration 0001), one row per (store, status, pid type, day created) it
changed, with the change of the media count and of their sizes. The figures are the sums of the
rows, so /api/stats reads a few hundred rows instead of a million media, and a write never waits
for another (deltas are only ever inserted; nothing is a hot row that every writer updates).
``status.selectors.compact_tally`` folds the rows into one per key from time to time.

SQLite (small, single-host installations) has no such triggers: there the figures come from
GROUP BY queries over the media themselves.
"""

from __future__ import annotations

from django.db import models


class MediaTally(models.Model):
    id = models.BigAutoField(primary_key=True)
    store_config_id = models.BigIntegerField()
    store_status = models.CharField(max_length=8)
    pid_type = models.CharField(max_length=64)
    day = models.DateField()  # the media's created date (UTC)
    count = models.BigIntegerField()
    bytes = models.BigIntegerField()
    compacted = models.BooleanField(db_default=False)  # the triggers insert without naming it

    class Meta:
        indexes = [
            models.Index(fields=["day"], name="status_tally_day"),
            models.Index(fields=["id"], name="status_tally_fresh", condition=models.Q(compacted=False)),
        ]

    def __str__(self) -> str:
        return f"{self.store_config_id} {self.store_status} {self.pid_type} {self.day}: {self.count}"


class StoreProbe(models.Model):
    """The last health probe of one store (``manage.py probe_stores``, run by a timer, or
    ``GET /api/stats?probe=true``): what ``/status/`` and ``/api/stats`` show, so that reading them
    never writes to a store. In the database, so every worker and host sees the same result. No
    foreign key: a row of a deleted store is simply not shown, and the next probe removes it."""

    store_config_id = models.BigIntegerField(primary_key=True)
    reachable = models.BooleanField()
    writable = models.BooleanField()
    latency_ms = models.FloatField(null=True)
    error = models.TextField(blank=True)
    probed_at = models.DateTimeField()

    def __str__(self) -> str:
        state = "writable" if self.writable else "reachable" if self.reachable else "unreachable"
        return f"store {self.store_config_id} {state} at {self.probed_at:%Y-%m-%d %H:%M:%S}"
