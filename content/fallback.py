"""Reads that fall back to a replica: when the primary copy of a media's bytes cannot be read
(its store unreachable, the object missing, a read error) before the first byte is sent, a GOOD
replica serves them, and the answer's ``X-Mediastore-Copy`` header names the copy that did.

The failure is recorded on the primary as a failed fixity check would be (``verify_ok`` false,
``verify_error``, a ``media.verify_failed`` event; the primary's state then reads MISSING or BAD),
so the worker or ``verify --repair`` rewrites it; until then reads go to a GOOD replica first. A
STALE replica (one that held older bytes) is never served: only GOOD ones with the media's
current checksum are.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.http import HttpResponseBase
from django.utils import timezone

from content import fixity, reads
from content.models import Replica, ReplicaEvent, ReplicaState
from content.replicas import copy_is_good, good_replicas, replica_dict, replica_event
from media.models import Media, StoreStatus
from media.outbox import record
from media.selectors import media_get
from mediastore.errors import StorageError

COPY_HEADER = "X-Mediastore-Copy"

R = TypeVar("R", bound=HttpResponseBase)


def primary_label(media: Media) -> str:
    return f"primary; store={media.store_config_id}"


def replica_label(replica: Replica) -> str:
    return f"replica; store={replica.store_config_id}"


def as_replica(media: Media, replica: Replica) -> Media:
    """The media as if its bytes were the replica's (an unsaved copy: for reading only)."""
    view = copy.copy(media)
    view.store_config, view.store_key = replica.store_config, replica.store_key
    return view


def missing(error: StorageError) -> bool:
    return "missing from its store" in error.message


def record_primary_failure(media: Media, error: StorageError) -> None:
    text = (
        "missing: no object is stored under the media's key (found by a read)"
        if missing(error)
        else f"storage error: {error.message} (found by a read)"
    )
    fixity.record_outcome(media, fixity.Outcome(media.pid, False, 0, text[:500]), timezone.now())


def record_replica_failure(media: Media, replica: Replica, error: StorageError) -> None:
    """A GOOD replica that failed a read becomes MISSING or BAD, with a ``replica.failed`` event."""
    state = ReplicaState.MISSING if missing(error) else ReplicaState.BAD
    kind = "missing" if state == ReplicaState.MISSING else "storage error"
    text = f"{kind}: {error.message} (found by a read)"
    now, text = timezone.now(), text[:500]
    with transaction.atomic():
        still = Replica.objects.filter(pk=replica.pk, state=ReplicaState.GOOD, store_key=replica.store_key)
        if still.update(state=state, error=text, verified_at=now, updated=now):
            replica.state, replica.error, replica.verified_at = state, text, now
            record([replica_event(media, ReplicaEvent.FAILED, replica_dict(replica), now=now)])


def read_any_copy(pid: str, *, user, read: Callable[[Media], R]) -> R:
    """``read(media)`` as ``content.reads.read_current`` does it, from the primary copy, or, when
    that fails with a StorageError or is known BAD or MISSING, from the first GOOD replica that
    answers. The response names the copy in ``X-Mediastore-Copy``. When no copy answers, the
    primary's error is raised."""
    media = media_get(pid)
    if media.store_status == StoreStatus.READY and not copy_is_good(media):
        response = from_replicas(media, read)
        if response is not None:
            return response
    try:
        response = reads.read_current(pid, user=user, read=read)
    except StorageError as exc:
        media = media_get(pid)
        if media.store_status != StoreStatus.READY:
            raise
        if copy_is_good(media):
            record_primary_failure(media, exc)
        response = from_replicas(media, read)
        if response is None:
            raise
        return response
    response[COPY_HEADER] = primary_label(media)
    return response


def from_replicas(media: Media, read: Callable[[Media], R]) -> R | None:
    for replica in good_replicas(media):
        try:
            response = read(as_replica(media, replica))
        except StorageError as exc:
            record_replica_failure(media, replica, exc)
            continue
        response[COPY_HEADER] = replica_label(replica)
        return response
    return None


def presigned_any_copy(media: Media, *, user) -> tuple[Media, str, str]:
    """A presigned GET URL for the media's bytes: from its primary store when that can presign
    and is not known BAD or MISSING, else from a GOOD replica in a store that can (an S3 replica
    of a media kept on disk, or of one whose primary failed). Returns the media, the URL and the
    label of the copy (as in ``X-Mediastore-Copy``); otherwise as ``reads.presigned_get``."""
    primary_presigns = media.store_config.backend().supports_presign
    if media.store_status == StoreStatus.READY and (not primary_presigns or not copy_is_good(media)):
        for replica in good_replicas(media):
            backend = replica.store_config.backend()
            if backend.supports_presign:
                url = backend.presigned_get(replica.store_key, settings.MEDIASTORE_PRESIGN_SECONDS)
                return media, url, replica_label(replica)
    media, url = reads.presigned_get(media, user=user)
    return media, url, primary_label(media)
