"""Writes of media.

Every write goes through here so that change marks, versions, tags and the audit history stay
consistent. Bulk writes validate every item in Python first, then write the valid ones with a
constant number of queries (bulk_create/bulk_update plus bulk history rows), so their cost does
not grow in queries with the number of media. The rules live in ``media.rules``, the update
engine in ``media.bulk`` (``bulk_apply(items, change)`` with the change functions below). What
touches bytes stands above, in ``content``: moves between stores (``content.moves``, which
switches the rows through ``media_patch_apply``) and deletes (``content.deletes``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from identifiers.rules import matches
from media import metadata as meta_ops
from media.bulk import BulkOutcome, bulk_apply, raise_first_failure
from media.copyrows import insert, marks_and_ids
from media.history import insert_created
from media.lifecycle import check_hold, default_expiry, is_expired
from media.models import EventType, Media, MediaEvent, StoreStatus, new_media
from media.outbox import event_for, record
from media.pids import nfc, with_pids
from media.rules import IdentifierRules, StoreResolver, check_tag_count, clean_tags, new_store_key
from media.schemas import (
    HoldIn,
    MediaIn,
    MediaPatch,
    UpdateIdentifiers,
    UpdateMetadata,
    UpdateStorekey,
    UpdateTags,
)
from media.tags import sync_tags
from media.trash import purge_taken
from media.usage import charge_inserted, owner_name
from mediastore.errors import Conflict, MediastoreError, NotFound, QuotaExceeded, RuleViolation
from stores.models import StoreConfig
from stores.paths import validate_store_key

# ---------------------------------------------------------------------------------------------
# Create


def _build_media(item: MediaIn, rules: IdentifierRules, stores: StoreResolver) -> Media:
    if item.pid_type not in rules.patterns:
        raise RuleViolation(f"bad pid_type: {item.pid_type}")
    pid = item.pid
    if pid is None:
        pid = str(uuid.uuid4())
        if not matches(rules.patterns[item.pid_type], pid):
            raise RuleViolation(
                f"no pid given, and a minted UUID does not match the pattern of pid_type '{item.pid_type}'; "
                "give a pid"
            )
    pid = rules.check_pid(pid, item.pid_type)
    identifiers = rules.identifiers(pid, item.pid_type, item.identifiers)
    tags = clean_tags(item.tags)
    meta_ops.check_limits(item.metadata)
    store = stores.resolve(item.store_config)
    check_expiry(item.expires_at)
    obj = new_media(
        store,
        pid=pid,
        pid_type_id=item.pid_type,
        store_config_id=store.pk,
        store_key=new_store_key(),
        store_status=StoreStatus.PENDING,
        identifiers=identifiers,
        metadata=item.metadata,
        tag_list=tags,
        expires_at=item.expires_at,
    )
    # An explicit "expires_at": null means never: the store's default_ttl is for an absent one.
    obj.expiry_given = "expires_at" in item.model_fields_set
    return obj


def check_expiry(value) -> None:
    """RuleViolation for an ``expires_at`` already past: the media would never be served."""
    if value is not None and value <= timezone.now():
        raise RuleViolation(f"expires_at {value.isoformat()} is in the past")


def media_prepare_many(
    items: list[MediaIn],
    *,
    user,
    name_items: bool = True,
    stores: StoreResolver | None = None,
    stored: Iterable[Media] | None = None,
) -> list[Media]:
    """Validate new media and build their rows, unsaved: the first invalid item raises, naming its
    index and pid when ``name_items``. Store configurations they name are got or created (by
    ``user``, through ``stores`` when given); when this raises, those it created are deleted again.
    ``user`` becomes their owner. ``stored``: the stored media (expired ones too) of every Unicode
    form of the items' pids and perhaps of others, as the caller looked them up already
    (``media.selectors.media_stored``); None: they are looked up here."""
    stores = stores or StoreResolver(user=user)
    try:
        objs = _prepare(items, IdentifierRules(), stores, name_items, stored)
    except BaseException:
        stores.forget()
        raise
    owner = owner_name(user)
    for obj in objs:
        obj.owner_id = owner
    return objs


@contextmanager
def prepared_media(items: list[MediaIn], *, user, name_items: bool = True) -> Iterator[list[Media]]:
    """``media_prepare_many`` for a block that goes on to store bytes and insert the rows: when the
    block raises, the store configurations made for these media are deleted again (nothing is left
    behind by a failed upload)."""
    stores = StoreResolver(user=user)
    objs = media_prepare_many(items, user=user, name_items=name_items, stores=stores)
    try:
        yield objs
    except BaseException:
        stores.forget()
        raise


def _prepare(
    items: list[MediaIn],
    rules: IdentifierRules,
    stores: StoreResolver,
    name_items: bool,
    stored: Iterable[Media] | None = None,
) -> list[Media]:
    objs: list[Media] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            obj = _build_media(item, rules, stores)
            if obj.pid in seen:
                raise Conflict(f"pid '{obj.pid}' is given twice (items {seen[obj.pid]} and {index})")
        except MediastoreError as exc:
            if name_items:
                exc.extra.update(index=index, pid=item.pid)
            raise
        seen[obj.pid] = index
        objs.append(obj)
    # A stored pid in another Unicode form (from before pids were normalised) is the same pid. A
    # media that expired (and no hold keeps) is gone for clients: its pid is free, and media_insert
    # retires that media before the new one takes the pid.
    now = timezone.now()
    if stored is None:
        fields = ("pid", "expires_at", "hold_since", "hold_until")
        stored = with_pids(Media.objects.all(), seen).values_list(*fields, named=True)
    stored = list(stored)
    live = {nfc(media.pid) for media in stored if not is_expired(media, now)}
    expired = {nfc(media.pid) for media in stored} - live
    for obj in objs:
        obj.retires_expired = obj.pid in expired
    taken = live & seen.keys()
    if taken:
        pid = min(taken, key=seen.__getitem__)
        exc = Conflict(f"media with pid '{pid}' already exists")
        if name_items:
            exc.extra.update(index=seen[pid], pid=pid)
        raise exc
    return objs


# Who deletes an expired media whose pid a new media takes: content.deletes.retire_expired, which
# removes bytes as the expire sweep does (this floor cannot import it; content.apps registers it).
_expired_retirers: list[Callable[[list[str]], None]] = []


def register_expired_retirer(retire: Callable[[list[str]], None]) -> None:
    """Have ``media_insert`` call ``retire(pids)`` in its transaction, before inserting, with the
    pids of new media that belonged to expired media (``_prepare`` found them)."""
    if retire not in _expired_retirers:
        _expired_retirers.append(retire)


def media_insert(objs: list[Media], *, user, reason: str = "", name_items: bool = False) -> list[Media]:
    """Insert prepared media with their history (``reason`` as its change reason) and tags, all or
    none (an expired media whose pid one of them takes is retired first, in the same transaction),
    charged to the usage of their store and owner (QuotaExceeded, naming the first item that
    does not fit when ``name_items``)."""
    insert_recorded(objs, user=user, reason=reason, name_items=name_items)
    return objs


@transaction.atomic
def insert_recorded(
    objs: list[Media], *, user, reason: str = "", name_items: bool = False
) -> list[MediaEvent]:
    """``media_insert``, returning the ``media.created`` event of each media, in order (its body is
    the media's ``media_out_dict``)."""
    if not objs:
        return []
    now = timezone.now()
    marks, ids = marks_and_ids(len(objs))  # ids: None where the database numbers the rows itself
    for index, (obj, mark) in enumerate(zip(objs, marks, strict=True)):
        obj.stamp(mark)
        if ids is not None:
            obj.pk = ids[index]
        obj.created = obj.updated = now
        if obj.expires_at is None and not getattr(obj, "expiry_given", False):
            obj.expires_at = default_expiry(obj.store_config, now)
    retiring = [obj.pid for obj in objs if getattr(obj, "retires_expired", False)]
    if retiring:
        for retire in _expired_retirers:
            retire(retiring)
    try:
        insert(Media, objs)
    except IntegrityError:  # another request took one of the pids since media_prepare_many looked
        raise Conflict(
            "a media with one of these pids was created concurrently; nothing was created"
        ) from None
    purge_taken(objs, user=user)  # a binned media of one of these pids (or store keys) goes for good
    try:
        warnings = charge_inserted(objs, user=user)
    except QuotaExceeded as exc:
        if name_items and exc.index is not None:
            exc.extra.update(index=exc.index, pid=objs[exc.index].pid)
        raise
    insert_created(objs, user=user, date=now, reason=reason)
    sync_tags(objs, fresh=True)
    created = [event_for(obj, EventType.CREATED, user=user, now=now) for obj in objs]
    record(created + warnings)
    return created


def media_create_many(items: list[MediaIn], *, user, name_items: bool = True) -> list[Media]:
    """Create all the media or none (store_status PENDING), and no store configuration for none."""
    with prepared_media(items, user=user, name_items=name_items) as objs:
        return media_insert(objs, user=user, name_items=name_items)


def media_create_answered(items: list[MediaIn], *, user) -> list[dict[str, Any]]:
    """``media_create_many``, answered: each new media as ``media.schemas.media_out_dict`` gives it,
    which is the body of its ``media.created`` event (one dict, built once for both)."""
    with prepared_media(items, user=user) as objs:
        return [event.media for event in insert_recorded(objs, user=user, name_items=True)]


def media_create(item: MediaIn, *, user) -> Media:
    return media_create_many([item], user=user, name_items=False)[0]


# ---------------------------------------------------------------------------------------------
# Updates: one engine for every per-item update endpoint


# ---------------------------------------------------------------------------------------------
# The changes of the update endpoints: plain functions of (media, item), their context bound
# with functools.partial.


def tags_add(media: Media, item: UpdateTags) -> dict[str, Any]:
    """The media's tags and the item's; their number together must be within the limit."""
    check_hold(media, "re-tagged", edit=True)
    names = set(media.tag_list) | set(clean_tags(item.tags))
    check_tag_count(names)
    return {"tag_list": sorted(names)}


def tags_replace(media: Media, item: UpdateTags) -> dict[str, Any]:
    check_hold(media, "re-tagged", edit=True)
    return {"tag_list": clean_tags(item.tags)}


def identifiers_replace(media: Media, item: UpdateIdentifiers, *, rules: IdentifierRules) -> dict[str, Any]:
    check_hold(media, "given other identifiers", edit=True)
    return {"identifiers": rules.identifiers(media.pid, media.pid_type_id, item.identifiers)}


def storekey_set(media: Media, item: UpdateStorekey, *, taken: dict[tuple[int, str], int]) -> dict[str, Any]:
    """``taken``: (store pk, key) -> media pk of the keys in use, kept current as items apply."""
    key = validate_store_key(item.store_key)
    if key != media.store_key:
        check_hold(media, "pointed at another store key")
    owner = taken.get((media.store_config_id, key))
    if owner is not None and owner != media.pk:
        raise Conflict(f"store_key {key!r} is already used by another media of this store")
    if key != media.store_key and media.store_status == StoreStatus.READY:
        if not media.store_config.backend().exists(key):
            raise Conflict(f"no stored object at store_key {key!r}; a READY media must point at its bytes")
    taken.pop((media.store_config_id, media.store_key), None)
    taken[(media.store_config_id, key)] = media.pk
    return {"store_key": key}


def metadata_change(media: Media, item: UpdateMetadata, *, op: str) -> dict[str, Any]:
    check_hold(media, "given other metadata", edit=True)
    # Both the stored metadata (unless replaced or cleared whole) and the data are copied below,
    # and copying recurses: nothing deeper than the limit may get there.
    if item.keys or op == "patch":
        meta_ops.check_depth(media.metadata, "the stored metadata (replace or clear it whole to fix it)")
    if op == "delete":
        return {"metadata": meta_ops.delete(media.metadata, item.keys)}
    meta_ops.check_depth(item.data, "data")
    if op == "put":
        result = meta_ops.put(media.metadata, item.keys, item.data)
    else:
        result = meta_ops.merge(media.metadata, item.keys, item.data)
    meta_ops.check_limits(result)
    return {"metadata": result}


@dataclass
class PreparedMove:
    """Bytes of a READY media already copied (and verified) into the store it moves to."""

    store: StoreConfig
    key: str
    old_store: StoreConfig
    old_key: str


# By pid: the prepared copy of a READY media that changes store, or the error that stopped it.
Moves = dict[str, PreparedMove | MediastoreError]


def patch_change(
    media: Media,
    patch: MediaPatch,
    *,
    rules: IdentifierRules,
    stores: StoreResolver,
    taken: dict[str, str],
    moves: Moves,
) -> dict[str, Any]:
    """Rename, retype, re-store; ``taken``: pids in use, NFC form -> pid as stored (kept current),
    ``moves``: byte copies made beforehand (``content.moves.prepare_moves``)."""
    updates: dict[str, Any] = {}
    pid = nfc(patch.new_pid) if patch.new_pid is not None else media.pid
    pid_type = patch.pid_type if patch.pid_type is not None else media.pid_type_id
    if pid != media.pid or pid_type != media.pid_type_id:
        check_hold(media, "renamed or retyped", edit=True)
        checked = rules.check_pid(pid, pid_type)
        if patch.new_pid is not None:
            pid = checked  # a retype alone keeps a pid stored before normalisation as it is
        if pid != media.pid and taken.get(pid, media.pid) != media.pid:
            raise Conflict(f"media with pid '{pid}' already exists")
        updates.update(pid=pid, pid_type_id=pid_type)
        updates["identifiers"] = rules.identifiers(pid, pid_type, media.identifiers)
    if patch.store_config is not None:
        store = stores.resolve(patch.store_config)
        if store.pk != media.store_config_id:
            check_hold(media, "moved to another store")
            if media.store_status == StoreStatus.READY:
                move = moves.get(media.pid)
                if isinstance(move, MediastoreError):
                    raise move
                if move is None or move.old_key != media.store_key or move.store.pk != store.pk:
                    raise Conflict(f"media '{media.pid}' changed while its bytes were copied; try again")
                updates["store_key"] = move.key
            updates["store_config"] = store
    if "expires_at" in patch.model_fields_set and patch.expires_at != media.expires_at:
        check_expiry(patch.expires_at)
        updates["expires_at"] = patch.expires_at
    if "pid" in updates:
        taken[pid] = pid
    return updates


def revert_change(media: Media, version: int, *, rules: IdentifierRules) -> dict[str, Any]:
    """The fields of ``media`` as they were at its revision ``version``, checked by today's rules."""
    check_hold(media, "reverted", edit=True)
    row = (
        Media.history.model.objects.filter(id=media.pk, version=version)
        .exclude(history_type="-")
        .order_by("-history_id")
        .first()
    )
    if row is None:
        raise NotFound(f"Media '{media.pid}' version", version)
    rules.check_pid(row.pid, row.pid_type_id)
    if row.pid != media.pid and Media.objects.filter(pid=row.pid).exists():
        raise Conflict(f"media with pid '{row.pid}' already exists")
    return {
        "pid": row.pid,
        "pid_type_id": row.pid_type_id,
        "identifiers": rules.identifiers(row.pid, row.pid_type_id, row.identifiers),
        "metadata": row.metadata,
        "tag_list": clean_tags(row.tag_list),
    }


# ---------------------------------------------------------------------------------------------
# Update services


def media_patch_apply(
    pairs: list[tuple[str, MediaPatch]], *, user, stores: StoreResolver, moves: Moves
) -> BulkOutcome:
    """Rename, retype or re-store the rows of media; ``pairs`` is [(pid, patch)].

    A READY media changes store only to the verified copy of its bytes in ``moves``
    (``content.moves.media_patch_many`` makes them first); without one that item is a Conflict.
    """
    new_pids = {nfc(patch.new_pid) for _, patch in pairs if patch.new_pid is not None}
    stored = with_pids(Media.objects.all(), new_pids).values_list("pid", flat=True)
    taken = {nfc(pid): pid for pid in stored}
    change = partial(patch_change, rules=IdentifierRules(), stores=stores, taken=taken, moves=moves)
    return bulk_apply(pairs, change, user=user)


def media_tags_update(items: list[UpdateTags], *, user, replace: bool) -> BulkOutcome:
    change = tags_replace if replace else tags_add
    return bulk_apply([(item.pid, item) for item in items], change, user=user, tags_changed=True)


def media_identifiers_update(items: list[UpdateIdentifiers], *, user) -> BulkOutcome:
    change = partial(identifiers_replace, rules=IdentifierRules())
    return bulk_apply([(item.pid, item) for item in items], change, user=user)


def media_storekeys_update(items: list[UpdateStorekey], *, user) -> BulkOutcome:
    """Point media at other keys of their store. A READY media may only point at an existing object."""
    keys = {item.store_key for item in items}
    taken = {
        (store, key): pk
        for store, key, pk in Media.objects.filter(store_key__in=keys).values_list(
            "store_config_id", "store_key", "pk"
        )
    }
    with transaction.atomic():
        outcome = bulk_apply(
            [(item.pid, item) for item in items], partial(storekey_set, taken=taken), user=user
        )
        purge_taken(outcome.changed, user=user)  # a binned media's key now used: its bytes are not its own
    return outcome


def media_metadata_update(items: list[UpdateMetadata], *, user, op: str) -> BulkOutcome:
    """op is "put" (set), "patch" (merge) or "delete"; see media.metadata. The metadata each item
    leaves must pass ``check_limits`` (depth, size), else that item fails."""
    return bulk_apply([(item.pid, item) for item in items], partial(metadata_change, op=op), user=user)


def media_revert(pid: str, *, version: int, user) -> Media:
    """Give the media the pid, pid_type, identifiers, metadata and tags it had at its revision
    ``version`` (the value of its ``version`` field then), as one more change whose history row
    says "revert to version N". Returns the media as it is afterwards.

    The byte fields (store_config, store_key, store_status, size, checksum, etag, content_type) are
    never restored: they describe the bytes stored now, and an old value could point a READY media
    at bytes that are not there. The restored values must pass today's rules: RuleViolation for a
    pid, pid_type, identifier or tag they break, Conflict when another media has that pid now,
    NotFound for an unknown pid or version. Restoring values the media already has writes nothing.
    """
    try:
        outcome = bulk_apply(
            [(pid, version)],
            partial(revert_change, rules=IdentifierRules()),
            user=user,
            tags_changed=True,
            reason=f"revert to version {version}",
            event_type=EventType.REVERTED,
        )
    except IntegrityError:  # another media took the pid since revert_change() looked
        raise Conflict(
            f"the pid of version {version} of media '{pid}' was taken meanwhile; nothing changed"
        ) from None
    raise_first_failure(outcome)
    return outcome.applied[0]


# ---------------------------------------------------------------------------------------------
# Holds


def hold_set(media: Media, hold: HoldIn | None, *, by: str, now) -> dict[str, Any]:
    """The hold fields for placing ``hold`` (None: releasing it)."""
    if hold is None:
        return {
            "hold_since": None,
            "hold_until": None,
            "hold_reason": "",
            "hold_freeze": False,
            "hold_by": "",
        }
    if hold.until is not None and hold.until <= now:
        raise RuleViolation(f"until {hold.until.isoformat()} is in the past; a hold must end later")
    return {
        "hold_since": now,
        "hold_until": hold.until,
        "hold_reason": hold.reason,
        "hold_freeze": hold.freeze,
        "hold_by": by[:150],
    }


def media_hold(pid: str, hold: HoldIn | None, *, user) -> Media:
    """Place (or replace) the hold of the media of ``pid``, or with None release it; a change
    recorded in the history (reason "hold placed: ..." or "hold released") with an event
    ``media.updated``. Releasing a media without a hold changes nothing. NotFound, Expired."""
    now = timezone.now()
    by = getattr(user, "username", "") or ""
    reason = f"hold placed: {hold.reason}" if hold is not None else "hold released"
    outcome = bulk_apply(
        [(pid, hold)], partial(hold_set, by=by, now=now), user=user, reason=reason[:100], expired_too=True
    )
    raise_first_failure(outcome)
    return outcome.applied[0]
