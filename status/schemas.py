"""Shape of ``GET /api/stats`` (the figures of the status page)."""

from __future__ import annotations

from datetime import date, datetime

from ninja import Field, Schema


class StoreHealthOut(Schema):
    """The store's last recorded health probe (``manage.py probe_stores``, run every 5 minutes by
    its timer, or ``probe=true``): a tiny object written, read back and deleted."""

    reachable: bool = Field(..., description="The store answered a lookup of a key.")
    writable: bool = Field(..., description="A probe object could be written, read back and deleted.")
    latency_ms: float | None = Field(
        ..., description="Milliseconds the whole probe took; null after a timeout."
    )
    error: str = Field(..., description="Why the probe failed; empty when it did not.")
    probed_at: datetime = Field(..., description="When this probe was made.")
    age_s: float = Field(..., description="Seconds between the probe and `generated` (0 with `probe=true`).")


class StoreStatsOut(Schema):
    pk: int
    type: str
    bucket: str
    s3_url: str
    label: str = Field(..., description='"<pk> <type>:<bucket>", as the status page names the store.')
    media: int = Field(..., description="Media records of this store (any status).")
    objects: int = Field(..., description="READY media, each with one stored object.")
    bytes: int = Field(..., description="Sum of the recorded sizes of the READY media.")
    replicas: int = Field(0, description="Replicas (copies of other stores' media) in this store, any state.")
    replica_bytes: int = Field(0, description="Sum of the sizes of the GOOD replicas in this store.")
    health: StoreHealthOut | None = Field(
        None,
        description="The last probe's result; null with `health=false` and for a store never probed yet.",
    )


class DayOut(Schema):
    day: date
    count: int


class VerifyFailureOut(Schema):
    pid: str
    store: int = Field(..., description="pk of the media's store configuration.")
    verified_at: datetime
    error: str


class ReplicaErrorOut(Schema):
    pid: str
    store: int = Field(..., description="pk of the replica's store configuration.")
    state: str
    error: str
    time: datetime = Field(..., description="When the replica last changed.")


class StatsOut(Schema):
    """Counts and bytes of the media by status, pid type and store, as `/status/` draws them."""

    generated: datetime
    media: int = Field(..., description="All media records.")
    bytes: int = Field(..., description="Sum of the sizes of all READY media.")
    by_status: dict[str, int] = Field(..., description="Media per store_status (PENDING, READY).")
    by_pid_type: dict[str, int] = Field(..., description="Media per pid_type, most used first.")
    stores: list[StoreStatsOut] = Field(..., description="Every store configuration, empty ones too.")
    created_per_day: list[DayOut] = Field(..., description="Media created on each of the last 30 days (UTC).")
    verify_failed: int = Field(..., description="Media whose last fixity check (`manage.py verify`) failed.")
    verify_failures: list[VerifyFailureOut] = Field(..., description="The 10 most recent of those.")
    replicas: dict[str, int] = Field(
        {},
        description="Replicas per state (COPYING, GOOD, STALE, BAD, MISSING; "
        "see `GET /api/media/{pid}/replicas`).",
    )
    replicas_behind: int = Field(
        0, description="Replicas not GOOD yet: what the replication worker has to do."
    )
    replica_errors: list[ReplicaErrorOut] = Field(
        [], description="The 10 most recently changed replicas that are not GOOD and have an error."
    )
    repairs_30d: int = Field(0, description="Copies rewritten from a GOOD one in the last 30 days.")
