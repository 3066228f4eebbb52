"""Replicas of a media's bytes: listing, asking for one, removing one, promoting one to primary.

The copying itself (and repairs) is the worker's, ``content.replication``. The rules kept here:
- a media's primary and its GOOD replicas hold the same bytes: a byte write marks every replica
  STALE in its switch transaction (``ReplicaQuerySet.mark_stale``, called by ``switch_bytes``);
- a replica's bytes are removed only after the commit that stopped pointing at them;
- the last GOOD copy of a media is never removed.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from content.models import Replica, ReplicaEvent, ReplicaState
from content.services import discard
from media.lifecycle import check_hold
from media.models import EventType, Media, StoreStatus
from media.outbox import event_for, record
from media.rules import StoreResolver
from media.schemas import media_out_dict
from media.selectors import media_get, media_locked
from media.usage import charge_change, counted
from mediastore.errors import Conflict, NotFound
from stores.backends import Backend
from stores.models import StoreConfig

log = logging.getLogger(__name__)


def store_dict(store: StoreConfig) -> dict[str, Any]:
    return {"pk": store.pk, "type": store.type, "bucket": store.bucket, "s3_url": store.s3_url}


def primary_state(media: Media) -> str:
    """The primary copy's state, from the media: COPYING while PENDING (its bytes are under way),
    MISSING or BAD after a failed check or read (``verify_ok`` false), else GOOD."""
    if media.store_status != StoreStatus.READY:
        return ReplicaState.COPYING
    if media.verify_ok is False:
        return ReplicaState.MISSING if media.verify_error.startswith("missing") else ReplicaState.BAD
    return ReplicaState.GOOD


def primary_dict(media: Media) -> dict[str, Any]:
    return {
        "store_config": store_dict(media.store_config),
        "store_key": media.store_key,
        "state": primary_state(media),
        "size": media.size,
        "checksum": media.checksum,
        "verified_at": media.verified_at,
        "error": media.verify_error,
        "primary": True,
    }


def replica_dict(replica: Replica) -> dict[str, Any]:
    return {
        "store_config": store_dict(replica.store_config),
        "store_key": replica.store_key,
        "state": replica.state,
        "size": replica.size,
        "checksum": replica.checksum,
        "verified_at": replica.verified_at,
        "error": replica.error,
        "primary": False,
    }


def replica_event(media: Media, type: str, replica: dict, *, user=None, now=None):
    """An outbox event about one copy of ``media``: its mark and version are the media's unchanged
    ones (a copy is not a change of the media), ``media.replica`` describes the copy."""
    body = media_out_dict(media)
    body["replica"] = replica
    return event_for(media, type, user=user, now=now, as_it_was=body)


def replicas_of(media: Media) -> list[Replica]:
    return list(Replica.objects.select_related("store_config__s3cfg").filter(media=media).order_by("pk"))


def replica_list(pid: str) -> list[dict[str, Any]]:
    """The primary copy of the media, then its replicas in the order they were asked for."""
    media = media_get(pid)
    return [primary_dict(media), *(replica_dict(r) for r in replicas_of(media))]


def good_replicas(media: Media) -> list[Replica]:
    """The replicas that hold the media's current bytes (GOOD, with its checksum)."""
    return [
        r
        for r in replicas_of(media)
        if r.state == ReplicaState.GOOD and r.store_key and r.checksum == media.checksum
    ]


def locked_media(pid: str) -> Media:
    """The media of ``pid`` with its row locked (inside the caller's transaction); NotFound."""
    found = media_locked(pk=media_get(pid).pk)
    if not found:
        raise NotFound("Media", pid)
    return found[0]


def replica_create(pid: str, store_spec: Any, *, user) -> dict[str, Any]:
    """Ask for a copy of a READY media's bytes in the store ``store_spec`` names (a pk or a store
    description, got or created as elsewhere): a COPYING replica the worker fills. Conflict when
    the media is not READY, has no recorded checksum, or already has a copy in that store."""
    stores = StoreResolver(user=user)
    store = stores.resolve(store_spec)
    try:
        with transaction.atomic():
            media = locked_media(pid)
            if media.store_status != StoreStatus.READY:
                raise Conflict(f"media '{media.pid}' has no stored bytes to copy (store_status PENDING)")
            if not media.checksum:
                raise Conflict(
                    f"media '{media.pid}' has no recorded checksum to check a copy against (imported "
                    "without one); store its bytes again (PUT /api/media/{pid}/content) first"
                )
            if media.store_config_id == store.pk:
                raise Conflict(f"store {store.pk} holds the primary copy of media '{media.pid}'")
            if Replica.objects.filter(media=media, store_config=store).exists():
                raise Conflict(f"media '{media.pid}' already has a replica in store {store.pk}")
            replica = Replica.objects.create(media=media, store_config=store, state=ReplicaState.COPYING)
            out = replica_dict(replica)
            record([replica_event(media, ReplicaEvent.CREATED, out, user=user)])
    except Exception:
        stores.forget()
        raise
    return out


def copy_is_good(media: Media) -> bool:
    return primary_state(media) == ReplicaState.GOOD


def replica_delete(pid: str, store_pk: int, *, user) -> None:
    """Remove the media's replica in store ``store_pk`` (its bytes after the commit). Conflict for
    the primary, and for the last GOOD copy of the media's bytes; Locked while the media is on hold
    (a hold keeps every copy of its bytes)."""
    with transaction.atomic():
        media = locked_media(pid)
        check_hold(media, "left with fewer copies (removing a replica)")
        if media.store_config_id == store_pk:
            raise Conflict(
                f"store {store_pk} holds the primary copy of media '{media.pid}'; promote a replica first "
                "or delete the media"
            )
        replica = (
            Replica.objects.select_for_update(of=("self",))
            .select_related("store_config__s3cfg")
            .filter(media=media, store_config_id=store_pk)
            .first()
        )
        if replica is None:
            raise NotFound("Replica", f"{media.pid} in store {store_pk}")
        others_good = copy_is_good(media) or any(
            r.pk != replica.pk for r in good_replicas(media) if r.store_config_id != store_pk
        )
        if replica.state == ReplicaState.GOOD and not others_good:
            raise Conflict(f"the replica in store {store_pk} is the last GOOD copy of media '{media.pid}'")
        out = replica_dict(replica)
        backend, key = replica.store_config.backend(), replica.store_key
        replica.delete()
        record([replica_event(media, ReplicaEvent.DELETED, out, user=user)])
    if key:
        discard(backend, key)


def replica_promote(pid: str, store_pk: int, *, user) -> dict[str, Any]:
    """The GOOD replica in store ``store_pk`` becomes the media's primary copy and the primary a
    replica (a change of the media's store, with one ``media.moved`` event). Conflict unless the
    replica is GOOD with the media's current checksum."""
    media = media_get(pid)
    replica = (
        Replica.objects.select_related("store_config__s3cfg")
        .filter(media=media, store_config_id=store_pk)
        .first()
    )
    if replica is None:
        raise NotFound("Replica", f"{media.pid} in store {store_pk}")
    etag = replica.store_config.backend().etag(replica.store_key) if replica.store_key else None
    with transaction.atomic():
        current = locked_media(pid)
        check_hold(current, "moved to another store")
        replica = (
            Replica.objects.select_for_update(of=("self",))
            .select_related("store_config__s3cfg")
            .get(pk=replica.pk)
        )
        if replica.state != ReplicaState.GOOD or replica.checksum != current.checksum:
            raise Conflict(
                f"the replica of media '{current.pid}' in store {store_pk} is {replica.state}, not a GOOD "
                "copy of its current bytes; only a GOOD replica can become the primary"
            )
        old_state = primary_state(current)
        counted_before = counted(current)
        old_store, old_key = current.store_config, current.store_key
        current.store_config, current.store_key = replica.store_config, replica.store_key
        current.etag = etag or ""
        current.verified_at, current.verify_ok, current.verify_error = replica.verified_at, True, ""
        current._history_user = user
        current._change_reason = f"promote: replica in store {store_pk} became the primary copy"
        replica.store_config, replica.store_key = old_store, old_key
        replica.state = old_state if old_state != ReplicaState.COPYING else ReplicaState.STALE
        replica.verified_at = current.verified_at if old_state == ReplicaState.GOOD else None
        replica.updated = timezone.now()
        current.save()
        replica.save()
        warnings = charge_change(current, counted_before, user=user)  # the primary copy's store counts it
        record([event_for(current, EventType.MOVED, user=user, changed=["store_config"]), *warnings])
    return primary_dict(current)


def bin_replicas(media_pks: list[int]) -> dict[int, list[dict]]:
    """Delete the replica rows of media going into the recycle bin (in the caller's transaction),
    leaving their objects; media pk -> its replica rows as dicts (``restore_replicas`` puts them
    back)."""
    rows = list(Replica.objects.filter(media_id__in=media_pks).values())
    if not rows:
        return {}
    Replica.objects.filter(pk__in=[row["id"] for row in rows]).delete()
    kept: dict[int, list[dict]] = {}
    for row in rows:
        kept.setdefault(row["media_id"], []).append(row)
    return kept


def restore_replicas(rows: list[dict]) -> None:
    """Insert the replica rows ``bin_replicas`` kept (a restored media's), in the caller's transaction."""
    fields = {field.attname: field for field in Replica._meta.concrete_fields}
    stores = set(
        StoreConfig.objects.filter(pk__in={row["store_config_id"] for row in rows}).values_list(
            "pk", flat=True
        )
    )
    replicas = [
        Replica(**{k: fields[k].to_python(v) for k, v in row.items() if k in fields})
        for row in rows
        if row["store_config_id"] in stores  # a store deleted meanwhile took that copy with it
    ]
    if not replicas:
        return
    created = [replica.created for replica in replicas]
    Replica.objects.bulk_create(replicas)
    for replica, when in zip(replicas, created, strict=True):
        replica.created = when  # bulk_create stamped "now" (auto_now_add)
    Replica.objects.bulk_update(replicas, ["created"])


def forget_media_replicas(media_pks: list[int]) -> list[tuple[Backend, str]]:
    """Delete the replica rows of media being deleted (in the caller's transaction); the objects
    to remove once it committed, as (backend, key). One statement when none has replicas."""
    doomed = list(Replica.objects.select_related("store_config__s3cfg").filter(media_id__in=media_pks))
    if not doomed:
        return []
    Replica.objects.filter(pk__in=[r.pk for r in doomed]).delete()
    return [(r.store_config.backend(), r.store_key) for r in doomed if r.store_key]
