"""The replication worker (``manage.py replicate``): writes the bytes of COPYING and STALE replicas
(and, with ``MEDIASTORE_AUTO_REPAIR``, of BAD and MISSING ones and of a bad primary) from a GOOD copy.

A copy streams store to store through this process, hashing on the way in, into a fresh key of
the target store; the target object is then read back and hashed again. Only when both match the
media's checksum, and under the media's row lock the media still has that checksum, does the
replica switch to the new key and become GOOD (one short transaction, with a ``replica.good`` or
``replica.repaired`` event); its previous object is removed after the commit. New bytes written to
the media while a copy ran leave the replica STALE for the next pass, never GOOD with old bytes.

Leases: a worker claims a replica by setting ``lease_until``/``lease_owner`` with a conditional
UPDATE (``... WHERE lease free or expired``), one short transaction on both databases: of two
workers only one gets the row (PostgreSQL re-checks the condition after the first commits; SQLite
runs one writer at a time). On PostgreSQL the candidates are picked with ``FOR UPDATE SKIP LOCKED``
so that workers spread over different rows. The lease is renewed while the copy runs; a worker
killed mid-copy leaves an unreferenced object in the target (``collect_orphans`` finds it) and a
lease that expires after ``MEDIASTORE_REPLICA_LEASE_SECONDS``, when another worker takes it over.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from content import rules
from content.hashing import HashingReader
from content.models import Repair, Replica, ReplicaEvent, ReplicaState
from content.replicas import copy_is_good, primary_dict, replica_dict, replica_event
from content.services import discard, fresh_key, hash_object
from media.models import Media, StoreStatus
from media.outbox import record
from media.selectors import media_locked
from mediastore import failpoints, metrics
from mediastore.errors import MediastoreError, StorageError
from stores.backends import Backend, ObjectNotFound
from stores.backends.base import ChunkReader

log = logging.getLogger(__name__)

COPY_CHUNK = 1 << 20
BACKOFF_FIRST_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 3600.0
BATCH = 20  # replicas claimed at a time


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after ``attempts`` failed copies: 5 s doubling, at most an hour."""
    return timedelta(
        seconds=min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** min(max(attempts - 1, 0), 20))
    )


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def lease_seconds() -> int:
    return settings.MEDIASTORE_REPLICA_LEASE_SECONDS


# ---------------------------------------------------------------------------------------------
# Leases


def claim(
    owner: str,
    *,
    limit: int = BATCH,
    pks: list[int] | None = None,
    exclude: set[int] | frozenset[int] = frozenset(),
    repair: bool | None = None,
) -> list[int]:
    """Lease up to ``limit`` due replicas (of ``pks`` if given, not of ``exclude``) for ``owner``;
    their pks."""
    now = timezone.now()
    repair = settings.MEDIASTORE_AUTO_REPAIR if repair is None else repair
    due = Replica.objects.due(now, repair=repair)
    if pks is not None:
        due = due.filter(pk__in=pks)
    if exclude:
        due = due.exclude(pk__in=exclude)
    until = now + timedelta(seconds=lease_seconds())
    claimed: list[int] = []
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            candidates = list(
                due.select_for_update(skip_locked=True)
                .order_by("due_at", "pk")
                .values_list("pk", flat=True)[:limit]
            )
        else:
            candidates = list(due.order_by("due_at", "pk").values_list("pk", flat=True)[:limit])
        for pk in candidates:
            # The condition again in the UPDATE: of two workers that read the same candidate, one wins.
            if (
                Replica.objects.due(now, repair=repair)
                .filter(pk=pk)
                .update(lease_until=until, lease_owner=owner)
            ):
                claimed.append(pk)
    return claimed


def renew(pk: int, owner: str) -> bool:
    """Extend ``owner``'s lease on the replica; False when it lost it (expired and taken over)."""
    until = timezone.now() + timedelta(seconds=lease_seconds())
    return bool(Replica.objects.filter(pk=pk, lease_owner=owner).update(lease_until=until))


def release(pk: int, owner: str, **fields) -> None:
    Replica.objects.filter(pk=pk, lease_owner=owner).update(lease_until=None, lease_owner="", **fields)


class LeasedReader:
    """A stream that renews a lease every third of its length while it is read, and passes the
    copy's failpoint (the live test kills a worker mid-copy there)."""

    def __init__(self, stream, renew_lease: Callable[[], bool]) -> None:
        self.stream = stream
        self.renew_lease = renew_lease
        self.renewed = time.monotonic()
        self.chunks = 0

    def read(self, size: int = -1) -> bytes:
        if self.chunks:
            failpoints.hit("replica.copy_chunk")
        self.chunks += 1
        if time.monotonic() - self.renewed > lease_seconds() / 3:
            if not self.renew_lease():
                raise StorageError("the lease on this copy expired and another worker took it over")
            self.renewed = time.monotonic()
        return self.stream.read(size)


# ---------------------------------------------------------------------------------------------
# Copying


@dataclass
class Source:
    backend: Backend
    key: str
    label: str  # "primary" or "replica in store N"


def sources(media: Media, *, but_store: int | None = None) -> list[Source]:
    """Where the media's current bytes can be read from: the primary unless known bad, then the
    GOOD replicas (not the one in store ``but_store``)."""
    found = []
    if copy_is_good(media) and media.store_config_id != but_store:
        found.append(Source(media.store_config.backend(), media.store_key, "primary"))
    for replica in Replica.objects.select_related("store_config__s3cfg").filter(
        media=media, state=ReplicaState.GOOD, checksum=media.checksum
    ):
        if replica.store_config_id != but_store and replica.store_key:
            found.append(
                Source(
                    replica.store_config.backend(),
                    replica.store_key,
                    f"replica in store {replica.store_config_id}",
                )
            )
    return found


def write_copy(
    media: Media, target: Backend, key: str, renew_lease: Callable[[], bool] = lambda: True
) -> str:
    """Write the media's bytes from the first source that gives them whole into ``target`` under
    ``key``, check them against the media's checksum on the way in and read back; the label of the
    source used. StorageError (the object removed) when no source could."""
    errors = []
    for source in sources(media):
        try:
            chunks = source.backend.iter_bytes(source.key, chunk_size=COPY_CHUNK)
        except ObjectNotFound:
            errors.append(f"{source.label}: missing")
            continue
        except StorageError as exc:
            errors.append(f"{source.label}: {exc.message}")
            continue
        reader = HashingReader(LeasedReader(ChunkReader(chunks), renew_lease))
        try:
            target.put_stream(key, reader, media.size)
            metrics.REPLICA_BYTES.inc(reader.size)
            if reader.checksum != media.checksum:
                raise StorageError(f"{source.label} gave other bytes ({reader.checksum})")
            try:
                copied = hash_object(target, key)[1]
            except ObjectNotFound:
                raise StorageError("the copy vanished from its store") from None
            if copied != media.checksum:
                raise StorageError(f"the copy read back as {copied}")
            return source.label
        except StorageError as exc:
            discard(target, key)
            errors.append(f"{source.label}: {exc.message}")
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
    if not errors:
        raise StorageError("no GOOD copy of the bytes to copy from")
    raise StorageError("; ".join(errors))


@dataclass
class Result:
    pk: int
    pid: str = ""
    outcome: str = ""  # good, repaired, stale (new bytes meanwhile), failed, skipped
    error: str = ""


def copy_replica(pk: int, owner: str) -> Result:
    """Write the bytes of the replica ``owner`` holds the lease of, and make it GOOD (see the
    module docstring). Returns what happened; the lease is released either way."""
    replica = (
        Replica.objects.select_related("store_config__s3cfg", "media__store_config__s3cfg")
        .filter(pk=pk, lease_owner=owner)
        .first()
    )
    if replica is None:
        return Result(pk, outcome="skipped")
    media = replica.media
    if media.store_status != StoreStatus.READY:
        release(pk, owner, due_at=timezone.now() + backoff(1))
        return Result(pk, media.pid, "skipped")
    target = replica.store_config.backend()
    key = fresh_key(replica.store_key or media.store_key)
    try:
        write_copy(media, target, key, renew_lease=lambda: renew(pk, owner))
    except MediastoreError as exc:
        return failed(replica, owner, exc.message)
    return switch_replica(replica, media, owner, key)


def failed(replica: Replica, owner: str, error: str) -> Result:
    """Record a failed copy: the replica keeps its state, with the error and a later retry."""
    error = error[:500]
    attempts = replica.attempts + 1
    with transaction.atomic():
        release(
            replica.pk,
            owner,
            error=error,
            attempts=attempts,
            due_at=timezone.now() + backoff(attempts),
            updated=timezone.now(),
        )
        replica.error, replica.attempts = error, attempts
        media = Media.objects.select_related("store_config__s3cfg").filter(pk=replica.media_id).first()
        if media is not None:
            record([replica_event(media, ReplicaEvent.FAILED, replica_dict(replica))])
    metrics.REPLICA_COPIES.labels("failed").inc()
    log.warning("copy of media %r to store %s failed: %s", replica.media.pid, replica.store_config_id, error)
    return Result(replica.pk, replica.media.pid, "failed", error)


def switch_replica(replica: Replica, media: Media, owner: str, key: str) -> Result:
    """Point the replica at the copy under ``key`` and make it GOOD, if under the media's row lock
    the media still has the bytes that were copied and the lease is still ours; otherwise remove
    the copy and leave the replica for the next pass."""
    target = replica.store_config.backend()
    now = timezone.now()
    old_key = ""
    with transaction.atomic():
        locked = media_locked(pk=media.pk)
        current = locked[0] if locked else None
        row = Replica.objects.select_for_update().filter(pk=replica.pk, lease_owner=owner).first()
        fresh = (
            current is not None
            and current.checksum == media.checksum
            and current.store_status == StoreStatus.READY
        )
        if row is None or not fresh:
            if row is not None:
                release(row.pk, owner, due_at=now)
            outcome = "stale"
        else:
            was = row.state
            old_key = row.store_key
            row.store_key, row.state = key, ReplicaState.GOOD
            row.size, row.checksum, row.verified_at = media.size, media.checksum, now
            row.error, row.attempts, row.lease_until, row.lease_owner = "", 0, None, ""
            row.updated = now
            row.save()
            repaired = was in (ReplicaState.BAD, ReplicaState.MISSING)
            if repaired:
                Repair.objects.create(media_pk=media.pk, pid=current.pid, store_config_id=row.store_config_id)
            kind = ReplicaEvent.REPAIRED if repaired else ReplicaEvent.GOOD
            record([replica_event(current, kind, replica_dict(row), now=now)])
            outcome = "repaired" if repaired else "good"
    if outcome == "stale":
        discard(target, key)
        return Result(replica.pk, media.pid, "stale")
    if old_key and old_key != key:
        discard(target, old_key)
    metrics.REPLICA_COPIES.labels(outcome).inc()
    return Result(replica.pk, media.pid, outcome)


# ---------------------------------------------------------------------------------------------
# A bad primary


def repair_primary(media: Media) -> Result:
    """Rewrite the bytes of a media whose primary copy is BAD or MISSING from a GOOD replica, to a
    fresh key of its store, read back, and switch the media to it (a saved change of its key, ETag
    and verify columns, with a history row "repaired from a GOOD replica": its bytes are the same),
    with a ``replica.repaired`` event. First the primary is read again: if it is intact after all
    (a store that was unreachable) it is only marked GOOD. Without a GOOD replica nothing changes
    and the outcome is ``failed`` (the media is reported, never silently changed)."""
    backend = media.store_config.backend()
    try:
        if hash_object(backend, media.store_key) == (media.size, media.checksum):
            Media.objects.filter(pk=media.pk, store_key=media.store_key).update(
                verify_ok=True, verify_error="", verified_at=timezone.now()
            )
            return Result(0, media.pid, "good")
    except (ObjectNotFound, StorageError):
        pass
    key = fresh_key(media.store_key)
    try:
        write_copy(media, backend, key)
    except MediastoreError as exc:
        metrics.REPLICA_COPIES.labels("failed").inc()
        return Result(
            0, media.pid, "failed", f"no GOOD copy to repair the primary from ({exc.message})"[:500]
        )
    now, etag = timezone.now(), backend.etag(key) or ""
    with transaction.atomic():
        locked = media_locked(pk=media.pk)
        current = locked[0] if locked else None
        if current is None or (current.store_config_id, current.store_key, current.checksum) != (
            media.store_config_id,
            media.store_key,
            media.checksum,
        ):
            current = None
        else:
            # A recorded change (history row with its reason, a new mark and version): the media's
            # key and ETag change, so the audit history says why.
            current.store_key, current.etag = key, etag
            current.verify_ok, current.verify_error, current.verified_at = True, "", now
            current._change_reason = "repaired from a GOOD replica"
            current.save()
            Repair.objects.create(
                media_pk=media.pk, pid=current.pid, store_config_id=current.store_config_id, primary=True
            )
            record([replica_event(current, ReplicaEvent.REPAIRED, primary_dict(current), now=now)])
    if current is None:  # changed meanwhile: the next check decides again
        discard(backend, key)
        return Result(0, media.pid, "stale")
    discard(backend, media.store_key)
    metrics.REPLICA_COPIES.labels("repaired").inc()
    return Result(0, media.pid, "repaired")


def bad_primaries(limit: int = BATCH) -> list[Media]:
    """READY media whose primary failed its last check or read and that have a GOOD replica."""
    pks = Replica.objects.filter(state=ReplicaState.GOOD).values("media_id")
    return list(
        Media.objects.select_related("store_config__s3cfg")
        .filter(store_status=StoreStatus.READY, verify_ok=False, pk__in=pks)
        .order_by("verified_at", "pk")[:limit]
    )


# ---------------------------------------------------------------------------------------------
# The loop


@dataclass
class Pass:
    results: list[Result] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)


# media pk -> (failed repairs, next try) of primaries this process could not repair: a looping
# worker backs off from them as from failed replica copies (a new process tries them again at once).
_primary_retries: dict[int, tuple[int, datetime]] = {}


def run_pass(
    owner: str, *, say: Callable[[str], None] = lambda line: None, deadline: datetime | None = None
) -> Pass:
    """Copy everything due now (claiming BATCH at a time), then repair bad primaries when
    ``MEDIASTORE_AUTO_REPAIR``; returns what was done."""
    done = Pass()
    asked = rules.missing_copies()
    if asked:
        say(f"asked for {asked} {'copy' if asked == 1 else 'copies'} the replication rules want")
    tried: set[int] = set()
    while deadline is None or timezone.now() < deadline:
        pks = claim(owner, exclude=tried)
        if not pks:
            break
        for pk in pks:
            tried.add(pk)
            result = copy_replica(pk, owner)
            done.results.append(result)
            say(f"{result.outcome} {result.pid} (replica {pk}){': ' + result.error if result.error else ''}")
    if settings.MEDIASTORE_AUTO_REPAIR:
        now = timezone.now()
        for media in bad_primaries():
            retry = _primary_retries.get(media.pk)
            if retry is not None and retry[1] > now:
                continue
            result = repair_primary(media)
            if result.outcome == "failed":
                failures = (retry[0] if retry else 0) + 1
                _primary_retries[media.pk] = (failures, now + backoff(failures))
            else:
                _primary_retries.pop(media.pk, None)
            done.results.append(result)
            say(f"primary {result.outcome} {result.pid}{': ' + result.error if result.error else ''}")
    return done
