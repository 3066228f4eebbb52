"""Moving a READY media's bytes to another store, as ``PATCH /api/media...`` with a new store does:
the copy is made by ``content`` (registered through ``register_byte_mover``, since ``content``
stands above ``media``) before any row is touched, and the losing copy is removed afterwards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from media.models import Media, StoreStatus
from media.rules import StoreResolver
from mediastore.errors import MediastoreError, RuleViolation
from stores.models import StoreConfig

if TYPE_CHECKING:
    from media.bulk import BulkOutcome
    from media.schemas import MediaPatch


class ByteMover(Protocol):
    """What moving a READY media to another store needs from ``content`` (which stands above
    ``media`` and registers itself in its ``AppConfig.ready``)."""

    def copy_to_store(self, media: Media, store: StoreConfig) -> str:
        """Copy and verify the media's bytes into ``store``; the key of the copy."""

    def discard(self, backend: Any, key: str) -> None:
        """Best-effort removal of an object no row points at."""


_mover: ByteMover | None = None


def register_byte_mover(mover: ByteMover) -> None:
    global _mover
    _mover = mover


def byte_mover() -> ByteMover:
    if _mover is None:  # only when the content app is not installed
        raise RuleViolation("moving stored bytes to another store is not available on this server")
    return _mover


@dataclass
class PreparedMove:
    """Bytes of a READY media already copied (and verified) into the store it moves to."""

    store: StoreConfig
    key: str
    old_store: StoreConfig
    old_key: str


def prepare_moves(
    pairs: list[tuple[str, MediaPatch]], stores: StoreResolver
) -> dict[str, PreparedMove | MediastoreError]:
    """Copy the bytes of READY media whose store changes, before any row is touched.

    The copies run outside the database transaction (they may take long); the rows then switch to
    the copies in the bulk write, and ``finish_moves`` removes whichever copy lost.
    """
    wanted = {pid: patch.store_config for pid, patch in pairs if patch.store_config is not None}
    moves: dict[str, PreparedMove | MediastoreError] = {}
    if not wanted:
        return moves
    ready = Media.objects.select_related("store_config__s3cfg").filter(
        pid__in=wanted, store_status=StoreStatus.READY
    )
    for media in ready:
        try:
            store = stores.resolve(wanted[media.pid])
            if store.pk != media.store_config_id:
                key = byte_mover().copy_to_store(media, store)
                moves[media.pid] = PreparedMove(store, key, media.store_config, media.store_key)
        except MediastoreError as exc:
            moves[media.pid] = exc
    return moves


def finish_moves(moves: dict[str, PreparedMove | MediastoreError], outcome: BulkOutcome) -> None:
    """Delete the old bytes of media that moved, and the unused copies of those that did not."""
    moved = {(m.store_config_id, m.store_key) for m in outcome.changed}
    for move in moves.values():
        if isinstance(move, MediastoreError):
            continue
        if (move.store.pk, move.key) in moved:
            byte_mover().discard(move.old_store.backend(), move.old_key)
        else:
            byte_mover().discard(move.store.backend(), move.key)
