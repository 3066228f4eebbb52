"""Deleting media with their bytes, as ``DELETE /api/media/{pid}`` (one item), ``POST
/api/media/delete`` and the admin do, all through ``media_delete_many``.

The rows go first, in one short transaction (history, tag links, events with them), then the
bytes: a crash or a store failure afterwards leaves an unreferenced object that
``manage.py collect_orphans`` finds, never a READY row without bytes.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from content.replicas import bin_replicas, forget_media_replicas
from content.services import discard
from media.bulk import BulkOutcome, raise_first_failure
from media.history import history_row
from media.lifecycle import check_hold, is_expired
from media.models import EventType, Media
from media.outbox import event_for, record
from media.pids import pick
from media.schemas import media_out_dict
from media.selectors import media_locked
from media.trash import bin_rows, trash_enabled
from media.usage import credit_removed
from mediastore.compat import raw_delete
from mediastore.errors import Locked, MediastoreError, NotFound
from stores.backends.base import Backend

log = logging.getLogger(__name__)


def media_delete_many(pids: list[str], *, user, expiring: bool = False) -> BulkOutcome:
    """Delete the media of ``pids``, then their bytes; each pid succeeds or fails on its own (a pid
    given twice is not found the second time).

    The rows go in one transaction with a constant number of statements whatever the number of
    media (``_delete_rows``, and the media's replicas with them). With the recycle bin on
    (``MEDIASTORE_TRASH_DAYS`` > 0) the rows and replica rows go into the bin in that transaction
    (``media.trash``) and the bytes stay. Without it the bytes are removed afterwards, one object at
    a time, the replicas' too; a failure to remove them is logged, not raised: the media are
    deleted either way. A media under a hold is that pid's failure (Locked, 423).
    """
    with transaction.atomic():
        outcome, doomed = _delete_locked(pids, user=user, expiring=expiring)
    _remove_bytes(doomed)
    return outcome


def retire_expired(pids: list[str]) -> None:
    """Delete, in the caller's transaction, the media of ``pids`` (any Unicode form) that have
    expired and that no hold keeps, as ``manage.py expire`` does (history row "expired", event
    ``media.expired``, the recycle bin's rules); their bytes are removed once the transaction
    commits (nothing when it rolls back). Media of these pids that are live or held stay.

    ``media_insert`` calls it (registered in ``content.apps``) before new media take these pids.
    """
    now = timezone.now()
    expired = [media.pid for media in media_locked(pids=pids) if is_expired(media, now)]
    if not expired:
        return
    _, doomed = _delete_locked(expired, user=None, expiring=True)
    transaction.on_commit(lambda: _remove_bytes(doomed), robust=True)


# What a delete leaves to remove once its rows are gone: the replicas' objects and the media (None
# with the recycle bin on: the bytes stay with the binned media).
Doomed = tuple[list[tuple[Backend, str]], list[Media]] | None


def _delete_locked(pids: list[str], *, user, expiring: bool) -> tuple[BulkOutcome, Doomed]:
    """The rows part of ``media_delete_many``, in the caller's transaction."""
    outcome = BulkOutcome()
    found = {media.pid: media for media in media_locked(pids=pids)}
    gone: list[Media] = []
    for pid in pids:
        media = pick(found, pid)
        if media is None:
            outcome.failures.append((pid, NotFound("Media", pid)))
            continue
        del found[media.pid]  # a pid given twice is not found the second time
        try:
            check_hold(media, "expired" if expiring else "deleted")
        except Locked as exc:
            outcome.failures.append((pid, exc))
            continue
        gone.append(media)
        outcome.successes.append(pid)
    binning = trash_enabled()
    if binning and gone:
        replicas = bin_replicas([media.pk for media in gone])
    else:
        copies = forget_media_replicas([media.pk for media in gone]) if gone else []
    if gone:
        _delete_rows(gone, user=user, expiring=expiring)
    if binning:
        if gone:
            bin_rows(gone, replicas, user=user, now=timezone.now())
        return outcome, None  # the bytes stay with the binned media until purged or restored
    return outcome, (copies, gone)


def _remove_bytes(doomed: Doomed) -> None:
    """Remove the objects of deleted media and of their replicas; failures are logged."""
    if doomed is None:
        return
    copies, gone = doomed
    for backend, key in copies:  # the media's replicas
        discard(backend, key)
    for media in gone:
        try:
            media.store_config.backend().delete(media.store_key)
        except MediastoreError as exc:
            log.warning(
                "media %r deleted; its object %r could not be removed: %s",
                media.pid,
                media.store_key,
                exc.message,
            )


def media_delete(pid: str, *, user) -> None:
    """``media_delete_many`` of one media; NotFound when there is none."""
    raise_first_failure(media_delete_many([pid], user=user))


def _delete_rows(gone: list[Media], *, user, expiring: bool = False) -> None:
    """Delete these locked media rows as ``Model.delete()`` would, in four statements: the history
    rows ('-', as simple-history writes them on a delete), the tag links, the rows, the events; and
    take them off the usage of their stores and owners (a statement per store and owner).

    ``QuerySet.delete()`` cannot do it in a constant number: simple-history's post_delete receiver
    makes Django fetch the rows again and send a signal, with one history insert, per media.
    """
    now = timezone.now()
    bodies = [media_out_dict(media) for media in gone]
    user_id = getattr(user, "pk", None)
    Media.history.model.objects.bulk_create(
        [
            history_row(
                media,
                history_date=now,
                history_type="-",
                history_user_id=user_id,
                history_change_reason="expired" if expiring else None,
            )
            for media in gone
        ]
    )
    pks = [media.pk for media in gone]
    Media.tags.through.objects.filter(content_object_id__in=pks).delete()
    raw_delete(Media.objects.filter(pk__in=pks))  # no signals: history is written above
    credit_removed(gone)  # their store's and owner's usage
    record(
        [
            event_for(
                media,
                EventType.EXPIRED if expiring else EventType.DELETED,
                user=user,
                now=now,
                as_it_was=body,
            )
            for media, body in zip(gone, bodies, strict=True)
        ]
    )
