"""Deleting media: the rows go first, in a short transaction (history, tag links, events with
them), then the bytes; a crash or a store failure afterwards leaves an unreferenced object that
``manage.py collect_orphans`` finds, never a READY row without bytes."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from media.bulk import BulkOutcome
from media.history import history_row
from media.models import EventType, Media
from media.outbox import event_for, record
from media.pids import lookup_set, pick
from media.schemas import media_out_dict
from media.selectors import media_locked
from media.signals import media_deleting
from mediastore.errors import MediastoreError, NotFound

log = logging.getLogger(__name__)


def media_delete(pid: str, *, user) -> None:
    """Delete a media, then its bytes.

    The row goes first, in a short transaction: a crash or a store failure afterwards leaves an
    unreferenced object (found by ``manage.py collect_orphans``), never a READY row without bytes.
    A failure to remove the bytes is logged, not raised: the media is deleted either way.
    """
    with transaction.atomic():
        media = pick({m.pid: m for m in media_locked(pid__in=lookup_set([pid]))}, pid)
        if media is None:
            raise NotFound("Media", pid)
        backend, key = media.store_config.backend(), media.store_key
        as_it_was = media_out_dict(media)
        media_deleting.send(Media, media_pks=[media.pk])
        media._history_user = user
        media.delete()
        record([event_for(media, EventType.DELETED, user=user, as_it_was=as_it_was)])
    try:
        backend.delete(key)
    except MediastoreError as exc:
        log.warning("media %r deleted; its object %r could not be removed: %s", pid, key, exc.message)


def media_delete_many(pids: list[str], *, user) -> BulkOutcome:
    """Delete the media of ``pids`` (each succeeds or fails on its own, as deleting them one by
    one would: a pid given twice is not found the second time), then their bytes.

    Like ``media_delete``, the rows go first, here in one transaction with a constant number of
    statements whatever the number of media: the locked read, the history rows, the tag links, the
    rows, the outbox events. The bytes are removed afterwards, one object at a time.
    """
    outcome = BulkOutcome()
    with transaction.atomic():
        found = {media.pid: media for media in media_locked(pid__in=lookup_set(pids))}
        gone: list[Media] = []
        for pid in pids:
            media = pick(found, pid)
            if media is not None:
                del found[media.pid]  # a pid given twice is not found the second time
            if media is None:
                outcome.failures.append((pid, NotFound("Media", pid)))
            else:
                gone.append(media)
                outcome.successes.append(pid)
        if gone:
            _delete_rows(gone, user=user)
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
    return outcome


def _delete_rows(gone: list[Media], *, user) -> None:
    """Delete these locked media rows as ``Model.delete()`` would, in four statements: the history
    rows ('-', as simple-history writes them on a delete), the tag links, the rows, the events.

    ``QuerySet.delete()`` cannot do it in a constant number: simple-history's post_delete receiver
    makes Django fetch the rows again and send a signal, with one history insert, per media.
    """
    now = timezone.now()
    bodies = [media_out_dict(media) for media in gone]
    user_id = getattr(user, "pk", None)
    Media.history.model.objects.bulk_create(
        [history_row(media, history_date=now, history_type="-", history_user_id=user_id) for media in gone]
    )
    pks = [media.pk for media in gone]
    media_deleting.send(Media, media_pks=pks)
    Media.tags.through.objects.filter(content_object_id__in=pks).delete()
    Media.objects.filter(pk__in=pks)._raw_delete(Media.objects.db)  # no signals: history is written above
    record(
        [
            event_for(media, EventType.DELETED, user=user, now=now, as_it_was=body)
            for media, body in zip(gone, bodies, strict=True)
        ]
    )
