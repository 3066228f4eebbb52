"""Moving READY media's bytes to another store, as ``PATCH /api/media/{pid}`` and
``PATCH /api/media/update`` with a new ``store_config`` do.

A move has three steps: the bytes are copied into a fresh key of the new store and verified against
the recorded checksum, outside any database transaction (a copy may take long); the rows switch to
the copies in one bulk write (``media.services.media_patch_apply``, which also renames and retypes);
then whichever copy lost is removed. A crash in between leaves an unreferenced object, found by
``manage.py collect_orphans``, never a READY row without bytes.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError

from content.hashing import HashingReader
from content.models import Replica
from content.reads import missing_bytes
from content.replicas import good_replicas, replica_promote
from content.replication import write_copy
from content.services import discard, fresh_key, hash_object
from media.bulk import BulkOutcome, raise_first_failure
from media.lifecycle import hold_active
from media.models import Media, StoreStatus
from media.rules import StoreResolver
from media.schemas import MediaPatch
from media.services import Moves, PreparedMove, media_patch_apply
from mediastore.errors import Conflict, MediastoreError, StorageError
from stores.backends import Backend, ObjectNotFound
from stores.backends.base import ChunkReader
from stores.models import StoreConfig

log = logging.getLogger(__name__)


def media_patch_many(pairs: list[tuple[str, MediaPatch]], *, user) -> BulkOutcome:
    """Rename, retype or re-store media; ``pairs`` is [(pid, patch)], each succeeding or failing on
    its own.

    A READY media changes store only after its bytes were copied to the new store and verified;
    the old copy is removed once the row points at the new one. A media moving to a store that
    holds a GOOD replica of it is a promote instead (``promote_replicas``): no copy, and the old
    primary copy stays as a replica.
    """
    stores = StoreResolver(user=user)
    promoted = promote_replicas(pairs, stores, user=user)
    moves = {**prepare_moves(pairs, stores), **promoted}
    try:
        outcome = media_patch_apply(pairs, user=user, stores=stores, moves=moves)
    except (OperationalError, InterfaceError):
        # The database connection broke: the switch may have committed although no answer came
        # back, so which copy the rows point at is unknown. Both stay (orphans that
        # collect_orphans finds) rather than risk removing the bytes a committed row points at.
        if moves:
            log.warning("store moves of %s ended with a lost database connection; copies kept", list(moves))
        raise
    except BaseException:
        finish_moves(moves, BulkOutcome())  # nothing was written: every copy made is unused
        raise
    finish_moves(moves, outcome)
    return outcome


def media_patch(pid: str, patch: MediaPatch, *, user) -> None:
    """``media_patch_many`` of one media; its failure is raised."""
    raise_first_failure(media_patch_many([(pid, patch)], user=user))


def promote_replicas(pairs: list[tuple[str, MediaPatch]], stores: StoreResolver, *, user) -> Moves:
    """Promote the GOOD replica of each READY media that moves to the store holding it (its own
    transaction and ``media.moved`` event, before the rest of the patch is applied; the patch then
    finds the media in that store already). By pid, the error of a replica that cannot be promoted
    (not GOOD: that item's failure)."""
    wanted = {pid: patch.store_config for pid, patch in pairs if patch.store_config is not None}
    failed: Moves = {}
    if not wanted:
        return failed
    copies = Replica.objects.select_related("media").filter(
        media__pid__in=wanted, media__store_status=StoreStatus.READY
    )
    for replica in copies:
        pid = replica.media.pid
        try:
            if stores.resolve(wanted[pid]).pk == replica.store_config_id:
                replica_promote(pid, replica.store_config_id, user=user)
        except MediastoreError as exc:
            failed[pid] = exc
    return failed


def prepare_moves(pairs: list[tuple[str, MediaPatch]], stores: StoreResolver) -> Moves:
    """Copy the bytes of the READY media whose store changes, before any row is touched: by pid,
    the verified copy, or the error that stopped it (that item's failure)."""
    wanted = {pid: patch.store_config for pid, patch in pairs if patch.store_config is not None}
    moves: Moves = {}
    if not wanted:
        return moves
    ready = Media.objects.select_related("store_config__s3cfg").filter(
        pid__in=wanted, store_status=StoreStatus.READY
    )
    for media in ready:
        if hold_active(media):
            continue  # refused by patch_change (423): no copy to make
        try:
            store = stores.resolve(wanted[media.pid])
            if store.pk != media.store_config_id:
                key = copy_to_store(media, store)
                moves[media.pid] = PreparedMove(store, key, media.store_config, media.store_key)
        except MediastoreError as exc:
            moves[media.pid] = exc
    return moves


def finish_moves(moves: Moves, outcome: BulkOutcome) -> None:
    """Remove the old bytes of the media that moved, and the unused copies of those that did not."""
    moved = {(m.store_config_id, m.store_key) for m in outcome.changed}
    for move in moves.values():
        if isinstance(move, MediastoreError):
            continue
        if (move.store.pk, move.key) in moved:
            discard(move.old_store.backend(), move.old_key)
        else:
            discard(move.store.backend(), move.key)


def copy_to_store(media: Media, store: StoreConfig) -> str:
    """Copy the media's bytes into a fresh key of ``store`` and verify the copy against the
    recorded checksum; the key of the copy.

    On any failure the copy is removed and the error raised (Conflict for a checksum mismatch or
    bytes replaced meanwhile, StorageError otherwise); the media and its original bytes are
    untouched. A store that holds a replica of the media (one ``promote_replicas`` could not
    promote) is a Conflict: a media has one copy per store. When the primary copy cannot be read,
    a GOOD replica is copied instead (``copy_from_replica``).
    """
    replica = Replica.objects.filter(media_id=media.pk, store_config_id=store.pk).first()
    if replica is not None:
        raise Conflict(
            f"media '{media.pid}' has a {replica.state} replica in store {store.pk}; only a GOOD one can "
            "become the primary: wait for the replication worker, or delete the replica first"
        )
    source, target = media.store_config.backend(), store.backend()
    key = fresh_key(media.store_key)
    try:
        chunks = source.iter_bytes(media.store_key)
    except (ObjectNotFound, StorageError) as exc:
        if not Media.objects.filter(pk=media.pk, store_key=media.store_key).exists():
            raise Conflict(
                f"the bytes of media '{media.pid}' were replaced while it moved; try again"
            ) from None
        if copy_from_replica(media, target, key):
            return key
        if isinstance(exc, StorageError):
            raise
        raise missing_bytes(media) from None
    reader = HashingReader(ChunkReader(chunks))
    try:
        target.put_stream(key, reader, media.size)
        expected = media.checksum or reader.checksum
        if reader.checksum != expected:
            raise Conflict(f"the stored bytes of media '{media.pid}' no longer match its checksum; not moved")
        try:
            copied = hash_object(target, key)[1]
        except ObjectNotFound:
            raise StorageError(
                f"the copy of media '{media.pid}' vanished from the new store; not moved"
            ) from None
        if copied != expected:
            raise Conflict(f"the copy of media '{media.pid}' in the new store did not verify; not moved")
    except MediastoreError:
        discard(target, key)
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return key


def copy_from_replica(media: Media, target: Backend, key: str) -> bool:
    """Write the media's bytes from one of its GOOD replicas into ``target`` under ``key`` (checked
    against the media's checksum, read back); whether one could. The move's source when the
    primary copy cannot be read."""
    if not good_replicas(media):
        return False
    try:
        write_copy(media, target, key)
    except StorageError as exc:
        log.warning(
            "media %r: no replica could stand in for its unreadable primary: %s", media.pid, exc.message
        )
        return False
    return True
