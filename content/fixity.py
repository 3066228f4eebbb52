"""Fixity audit (``manage.py verify``): re-read stored bytes and record the outcome on each media.

Each check is the service behind ``GET /api/media/{pid}/verify`` (``content.reads.verify``).
Its outcome goes into three columns of the media, ``verified_at``, ``verify_ok`` and
``verify_error``, written with a bare UPDATE: a fixity check reads the bytes and changes nothing
about the media, so it takes no change number (``mark``), adds no revision (``version``), leaves
no history row and sends no event for a success. A failure is news for consumers, so it also
writes a ``media.verify_failed`` event to the outbox, in the same transaction as the columns (its
``mark`` and ``version`` are the media's unchanged ones; ``media.verify`` holds the outcome).
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from content import reads, replication
from content.models import Replica, ReplicaEvent, ReplicaState
from content.replicas import replica_dict, replica_event
from content.services import hash_object
from media.models import EventType, Media, StoreStatus
from media.outbox import event_for, record
from media.schemas import media_out_dict
from mediastore import metrics
from mediastore.errors import Conflict, NotFound, RuleViolation, StorageError
from stores.backends import ObjectNotFound, backend_class
from stores.models import StoreConfig, StoreType

AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
AGE_RE = re.compile(r"(\d+)([smhdw])")
BATCH = 500  # media read from the database at a time


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` as a timedelta; RuleViolation otherwise."""
    match = AGE_RE.fullmatch(text.strip())
    if not match:
        raise RuleViolation(f"{text!r} is not an age; use a number and a unit s, m, h, d or w, e.g. 30d")
    return timedelta(seconds=int(match[1]) * AGE_UNITS[match[2]])


def stores_named(spec: str) -> list[StoreConfig]:
    """The store configurations ``TYPE:BUCKET`` names (a BucketStore bucket may exist under several
    S3 configurations; all of them are meant). RuleViolation for a bad spec or no such store."""
    store_type, sep, bucket = spec.partition(":")
    if not sep or store_type not in StoreType.values:
        raise RuleViolation(
            f"{spec!r}: give the store as TYPE:BUCKET, TYPE one of {', '.join(StoreType.values)}"
        )
    bucket = backend_class(store_type).normalize_bucket(bucket)
    found = list(StoreConfig.objects.filter(type=store_type, bucket=bucket).order_by("pk"))
    if not found:
        raise RuleViolation(f"no store configuration {store_type}:{bucket}")
    return found


def candidates(
    *,
    stores: Iterable[StoreConfig] | None = None,
    older_than: timedelta | None = None,
    pids: Iterable[str] | None = None,
    now: datetime | None = None,
) -> QuerySet[Media]:
    """The READY media to check: of ``stores`` if given, never verified or last verified more than
    ``older_than`` before ``now`` if given, with those ``pids`` if given; in primary key order."""
    media = Media.objects.filter(store_status=StoreStatus.READY)
    if stores is not None:
        media = media.filter(store_config__in=list(stores))
    if older_than is not None:
        limit = (now or timezone.now()) - older_than
        media = media.filter(Q(verified_at__isnull=True) | Q(verified_at__lt=limit))
    if pids is not None:
        media = media.filter(pid__in=list(pids))
    return media.order_by("pk")


@dataclass
class Outcome:
    pid: str
    ok: bool | None  # None: not checked (deleted, no longer READY meanwhile)
    size: int = 0  # bytes read
    error: str = ""


def describe(result: dict) -> str:
    """The short sentence recorded as ``verify_error`` for a failed check."""
    if result["missing"]:
        return "missing: no object is stored under the media's key"
    if result["size"] != result["expected_size"]:
        return f"size {result['size']} differs from the recorded {result['expected_size']}"
    return f"checksum {result['checksum']} differs from the recorded {result['expected_checksum']}"


def check(media: Media, *, now: datetime | None = None) -> Outcome:
    """Verify one media and record the outcome (and the event of a failure). A store that fails
    to answer counts as a failed check (``storage error: ...``): the bytes could not be confirmed."""
    try:
        result = reads.verify(media)
    except (NotFound, Conflict):  # deleted, or no longer READY, since it was listed
        return Outcome(media.pid, None)
    except StorageError as exc:
        outcome = Outcome(media.pid, False, 0, f"storage error: {exc.message}"[:500])
    else:
        ok = bool(result["ok"])
        outcome = Outcome(media.pid, ok, result["size"] or 0, "" if ok else describe(result)[:500])
    record_outcome(media, outcome, now or timezone.now())
    metrics.VERIFY_MEDIA.labels("ok" if outcome.ok else "failed").inc()
    metrics.VERIFY_BYTES.inc(outcome.size)
    return outcome


def record_outcome(media: Media, outcome: Outcome, now: datetime) -> None:
    """Write the outcome to the media's verify columns (no history, no new mark or version) and,
    for a failure, a ``media.verify_failed`` event, both in one transaction."""
    with transaction.atomic():
        updated = Media.objects.filter(pk=media.pk).update(
            verified_at=now, verify_ok=outcome.ok, verify_error=outcome.error
        )
        if updated and not outcome.ok:
            current = Media.objects.select_related("store_config").get(pk=media.pk)
            body = media_out_dict(current)
            body["verify"] = {"ok": False, "error": outcome.error, "verified_at": now}
            record([event_for(current, EventType.VERIFY_FAILED, user=None, now=now, as_it_was=body)])


def check_replicas(media: Media, *, now: datetime | None = None) -> list[Outcome]:
    """Verify the media's replicas that claim to hold its bytes (GOOD) or failed a check before
    (BAD, MISSING): each is read whole and compared with the media's size and checksum, and its
    state, ``verified_at`` and ``error`` recorded (with a ``replica.failed`` event when it turns
    BAD or MISSING). COPYING and STALE ones are the worker's. The outcomes of those checked, each
    named ``<pid> (replica in store <pk>)``."""
    now = now or timezone.now()
    checked = [ReplicaState.GOOD, ReplicaState.BAD, ReplicaState.MISSING]
    outcomes = []
    for replica in Replica.objects.select_related("store_config__s3cfg").filter(
        media=media, state__in=checked
    ):
        name = f"{media.pid} (replica in store {replica.store_config_id})"
        state, error, size = ReplicaState.GOOD, "", 0
        try:
            if not replica.store_key:
                raise ObjectNotFound("")
            size, checksum = hash_object(replica.store_config.backend(), replica.store_key)
            if (size, checksum) != (media.size, media.checksum):
                state = ReplicaState.BAD
                error = f"checksum {checksum} (size {size}) differs from the media's {media.checksum}"
        except ObjectNotFound:
            state, error = ReplicaState.MISSING, "missing: no object is stored under the replica's key"
        except StorageError as exc:
            state, error = ReplicaState.BAD, f"storage error: {exc.message}"[:500]
        with transaction.atomic():
            # Only a row still as it was read: a copy or a byte write meanwhile decides instead.
            updated = Replica.objects.filter(
                pk=replica.pk, state=replica.state, store_key=replica.store_key
            ).update(state=state, error=error, verified_at=now, updated=now)
            if updated and state != ReplicaState.GOOD and replica.state == ReplicaState.GOOD:
                replica.state, replica.error, replica.verified_at = state, error, now
                record([replica_event(media, ReplicaEvent.FAILED, replica_dict(replica), now=now)])
        if updated:
            outcomes.append(Outcome(name, state == ReplicaState.GOOD, size, error))
            metrics.VERIFY_MEDIA.labels("ok" if state == ReplicaState.GOOD else "failed").inc()
            metrics.VERIFY_BYTES.inc(size)
    return outcomes


def repair(media: Media) -> list[Outcome]:
    """Rewrite the media's BAD and MISSING copies from a GOOD one (``content.replication``): its
    primary when its last check failed, then its replicas. The outcomes (``ok`` true: repaired),
    named as the checks name them; a copy that cannot be repaired (no GOOD copy left) is reported
    and nothing changes."""
    outcomes = []
    current = Media.objects.select_related("store_config__s3cfg").filter(pk=media.pk).first()
    if current is None or current.store_status != StoreStatus.READY:
        return outcomes
    if current.verify_ok is False:
        result = replication.repair_primary(current)
        outcomes.append(Outcome(current.pid, result.outcome in ("repaired", "good"), 0, result.error))
    broken = list(
        Replica.objects.filter(media=current, state__in=[ReplicaState.BAD, ReplicaState.MISSING]).values_list(
            "pk", "store_config_id"
        )
    )
    if broken:
        owner = f"verify:{replication.worker_name()}"
        stores = dict(broken)
        for pk in replication.claim(owner, pks=list(stores), repair=True, limit=len(stores)):
            result = replication.copy_replica(pk, owner)
            name = f"{current.pid} (replica in store {stores[pk]})"
            outcomes.append(Outcome(name, result.outcome == "repaired", 0, result.error))
    return outcomes


@dataclass
class Audit:
    media: int = 0
    bytes: int = 0
    ok: int = 0
    skipped: int = 0
    failures: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    replicas: int = 0  # replicas checked
    repaired: list[Outcome] = field(default_factory=list)
    unrepaired: list[Outcome] = field(default_factory=list)


def run(
    media: QuerySet[Media],
    *,
    workers: int = 1,
    progress: Callable[[Outcome, int], None] | None = None,
    repairs: bool = False,
) -> Audit:
    """Check every media of ``media``, in this thread (``workers`` 1) or in ``workers`` threads,
    each with its own database connection; ``progress(outcome, expected_size)`` is called after
    each check (from the thread that ran it). Returns the totals and the failures in the order
    they were found; after Ctrl-C (KeyboardInterrupt) it waits for the checks under way and returns
    what was done, marked ``interrupted``. An unexpected error in a worker stops the audit and is
    raised here. Each media's replicas are checked after it (``check_replicas``); with ``repairs``
    its failed copies are then rewritten from a GOOD one (``repair``)."""
    audit = Audit()
    started = time.monotonic()
    lock = threading.Lock()

    def tally(item: Media) -> None:
        outcome = check(item)
        copies = check_replicas(item) if outcome.ok is not None else []
        fixed = repair(item) if repairs and (outcome.ok is False or any(not c.ok for c in copies)) else []
        with lock:
            audit.media += 1
            audit.bytes += outcome.size + sum(c.size for c in copies)
            audit.replicas += len(copies)
            if outcome.ok is None:
                audit.skipped += 1
            elif outcome.ok:
                audit.ok += 1
            else:
                audit.failures.append(outcome)
            audit.failures.extend(c for c in copies if not c.ok)
            audit.repaired.extend(f for f in fixed if f.ok)
            audit.unrepaired.extend(f for f in fixed if not f.ok)
        if progress is not None:
            progress(outcome, item.size or 0)

    try:
        if workers <= 1:
            for item in batches(media):
                tally(item)
        else:
            threaded(batches(media), tally, workers)
    except KeyboardInterrupt:  # Ctrl-C: what was checked is recorded; --older-than resumes
        audit.interrupted = True
    audit.seconds = time.monotonic() - started
    return audit


def batches(media: QuerySet[Media]) -> Iterable[Media]:
    """The media of the query with their stores, read BATCH at a time by primary key (the list of
    keys is taken first, so that nothing holds a cursor open while the checks write)."""
    pks = list(media.values_list("pk", flat=True))
    for offset in range(0, len(pks), BATCH):
        chunk = pks[offset : offset + BATCH]
        rows = Media.objects.select_related("store_config", "store_config__s3cfg").in_bulk(chunk)
        yield from (rows[pk] for pk in chunk if pk in rows)


def threaded(items: Iterable[Media], handle: Callable[[Media], None], workers: int) -> None:
    """``handle`` every item in ``workers`` threads fed through a bounded queue."""
    work: queue.Queue[Media | None] = queue.Queue(maxsize=workers * 4)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while (item := work.get()) is not None:
                if errors:
                    continue  # stopping: drain the queue so the feeder never blocks
                try:
                    handle(item)
                except BaseException as exc:  # re-raised in the main thread below
                    errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, name=f"verify-{n}", daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for item in items:
            if errors:
                break
            work.put(item)
    finally:
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
