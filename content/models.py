"""Replicas: copies of a media's bytes in other stores than its primary one (``content.replicas``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from mediastore.limits import MAX_KEY_LENGTH


class ReplicaState(models.TextChoices):
    """What is known of one copy of a media's bytes.

    COPYING: asked for, the bytes not (yet) written and checked; STALE: it held the media's bytes
    until new ones were written, and is being rewritten; GOOD: it holds exactly the media's current
    bytes, read back and checksummed; BAD: a check read other bytes; MISSING: a check or a read
    found no object. Only a GOOD copy is ever served or copied from.
    """

    COPYING = "COPYING"
    GOOD = "GOOD"
    STALE = "STALE"
    BAD = "BAD"
    MISSING = "MISSING"


# Outbox event types of replicas (beside media.models.EventType; the changes feed accepts both).
class ReplicaEvent(models.TextChoices):
    CREATED = "replica.created"
    GOOD = "replica.good"
    FAILED = "replica.failed"
    REPAIRED = "replica.repaired"
    DELETED = "replica.deleted"


class ReplicaQuerySet(models.QuerySet):
    def mark_stale(self, media_pk: int) -> int:
        """Every copy of the media that held (or was to hold) its bytes becomes STALE and due now:
        called by each byte write of the media in its switch transaction (``switch_bytes``), so no
        copy of the old bytes is GOOD once the new ones are committed. COPYING stays COPYING (its
        copy checks the media's checksum when it ends). Returns how many changed."""
        return (
            self.filter(media_id=media_pk)
            .exclude(state__in=[ReplicaState.COPYING, ReplicaState.STALE])
            .update(state=ReplicaState.STALE, due_at=timezone.now(), attempts=0, updated=timezone.now())
        )

    def due(self, now, *, repair: bool) -> ReplicaQuerySet:
        """Copies the worker should (re)write now: COPYING and STALE ones, with ``repair`` BAD and
        MISSING ones too, whose retry time has come and whose lease is free or expired."""
        states = [ReplicaState.COPYING, ReplicaState.STALE]
        if repair:
            states += [ReplicaState.BAD, ReplicaState.MISSING]
        return self.filter(state__in=states, due_at__lte=now).filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        )

    def behind(self) -> ReplicaQuerySet:
        """Copies that do not hold the media's current bytes yet (the replication lag)."""
        return self.exclude(state=ReplicaState.GOOD)


class Replica(models.Model):
    """One more copy of a media's bytes, in another store than its primary one.

    ``store_key`` is the key of the bytes last written and checked; "" while none were. A rewrite
    (new bytes of the media, a repair) goes to a fresh key and switches to it in one short
    transaction, as the primary's bytes do, so a GOOD replica always names a complete object.
    ``lease_until``/``lease_owner`` are a worker's claim on the row while it copies; an expired
    lease (a killed worker) is free for the next worker.
    """

    media = models.ForeignKey("media.Media", on_delete=models.CASCADE, related_name="replicas")
    store_config = models.ForeignKey("stores.StoreConfig", on_delete=models.PROTECT, related_name="replicas")
    store_key = models.CharField(max_length=MAX_KEY_LENGTH, blank=True, default="")
    state = models.CharField(max_length=8, choices=ReplicaState.choices, default=ReplicaState.COPYING)
    size = models.BigIntegerField(null=True, blank=True)
    checksum = models.CharField(max_length=80, blank=True, default="")
    verified_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="Failed copies since the last success.")
    due_at = models.DateTimeField(default=timezone.now, help_text="When the worker (re)tries a copy.")
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    lease_owner = models.CharField(max_length=100, blank=True, default="", editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(default=timezone.now)

    objects = ReplicaQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        verbose_name = "media replica"
        constraints = [
            models.UniqueConstraint(fields=["media", "store_config"], name="replica_one_per_store"),
            models.UniqueConstraint(
                fields=["store_config", "store_key"],
                name="replica_store_key_unique",
                condition=~Q(store_key=""),
            ),
        ]
        indexes = [models.Index(fields=["state", "due_at"], name="replica_due")]

    def __str__(self) -> str:
        return f"{self.media_id} in {self.store_config_id} ({self.state})"


class Repair(models.Model):
    """One copy rewritten from a good one (``manage.py verify --repair``, the worker): the
    status page counts them."""

    media_pk = models.BigIntegerField()
    pid = models.CharField(max_length=512)
    store_config = models.ForeignKey("stores.StoreConfig", on_delete=models.CASCADE, related_name="+")
    primary = models.BooleanField(default=False)
    time = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.pid} in {self.store_config_id} at {self.time:%Y-%m-%d %H:%M}"


class ReplicationRule(models.Model):
    """Rucio-like: every READY media that matches (any of ``pid_types``, all of ``tags``, its primary
    in ``store``; an empty list or no store matches any) must have a GOOD copy in each of ``copies``.
    The replication worker asks for the missing copies (``content.rules``), for media made later,
    media that start to match, and those that matched when the rule was made."""

    name = models.CharField(max_length=100, unique=True)
    pid_types = models.JSONField(default=list, blank=True, help_text="Pid types that match; empty: any.")
    tags = models.JSONField(default=list, blank=True, help_text="Tags a media must all carry; empty: any.")
    store = models.ForeignKey(
        "stores.StoreConfig",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The primary store that matches; empty: any.",
    )
    copies = models.ManyToManyField("stores.StoreConfig", related_name="replication_rules")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "replication rule"

    def __str__(self) -> str:
        return self.name


class AdminJobState(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class AdminJob(models.Model):
    """An admin action over many media, run in committed chunks by ``content.admin_jobs``.

    The media it covers are named by ``query`` (the media list's query string: its filters and
    search) or, for a selection, by ``pks``; ``last_pk``, its cursor, is the pk of the last
    media handled. Each chunk commits its changes and then the cursor, so a runner that dies
    loses nothing: the job is taken up again from its cursor (``manage.py run_admin_jobs``, or
    the Resume button of its page), redoing at most one chunk, whose actions are idempotent."""

    action = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)
    query = models.TextField(blank=True, default="")
    pks = models.JSONField(null=True, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=8, choices=AdminJobState.choices, default=AdminJobState.QUEUED)
    total = models.PositiveIntegerField(default=0)
    last_pk = models.BigIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True, default="")
    runner = models.CharField(max_length=64, blank=True, default="")
    heartbeat = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["state", "heartbeat"], name="adminjob_state_heartbeat")]

    def __str__(self) -> str:
        return f"{self.description} ({self.state})"

    @property
    def description(self) -> str:
        return f"job {self.pk}: {self.action.replace('_', ' ')}"
