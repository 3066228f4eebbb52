"""Writes of media.

Every write goes through here so that change marks, versions, tags and the audit history stay
consistent. Bulk writes validate every item in Python first, then write the valid ones with a
constant number of queries (bulk_create/bulk_update plus bulk history rows), so their cost does
not grow in queries with the number of media.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import IntegrityError, transaction
from django.utils import timezone
from taggit.models import Tag

from identifiers.models import IdentifierType
from identifiers.rules import check_value, matches
from media import metadata as meta_ops
from media.models import EventType, Media, StoreStatus, TaggedMedia, next_marks
from media.outbox import event_for, record
from media.schemas import (
    MediaIn,
    MediaPatch,
    UpdateIdentifiers,
    UpdateMetadata,
    UpdateStorekey,
    UpdateTags,
    media_out_dict,
)
from mediastore.errors import Conflict, MediastoreError, NotFound, RuleViolation
from mediastore.limits import MAX_PID_LENGTH, MAX_TAG_LENGTH
from stores.models import StoreConfig
from stores.paths import validate_store_key
from stores.services import store_get, store_get_or_create

log = logging.getLogger(__name__)

# pids that would be routed to another endpoint than /api/media/{pid}
RESERVED_PIDS = {"create", "read", "delete", "update", "dump", "search", "urls"}
RESERVED_PID_PREFIXES = ("update/", "url/")
RESERVED_PID_SUFFIXES = ("/history", "/content", "/verify", "/complete", "/revert")


# ---------------------------------------------------------------------------------------------
# Rules


def check_pid(pid: str) -> str:
    if not pid or pid != pid.strip():
        raise RuleViolation(f"bad pid {pid!r}: must be non-empty with no leading or trailing spaces")
    if len(pid) > MAX_PID_LENGTH:
        raise RuleViolation(f"bad pid: longer than {MAX_PID_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in pid):
        raise RuleViolation(f"bad pid {pid!r}: control characters are not allowed")
    if pid in RESERVED_PIDS or pid.startswith(RESERVED_PID_PREFIXES) or pid.endswith(RESERVED_PID_SUFFIXES):
        raise RuleViolation(f"bad pid {pid!r}: reserved, it would collide with another /api/media/ endpoint")
    return pid


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Sorted distinct tag names; RuleViolation for empty or over-long ones."""
    names = set()
    for tag in tags:
        name = tag.strip()
        if not name:
            raise RuleViolation("tags must not be empty")
        if len(name) > MAX_TAG_LENGTH:
            raise RuleViolation(f"tag {name[:20]!r}... is longer than {MAX_TAG_LENGTH} characters")
        names.add(name)
    return sorted(names)


class IdentifierRules:
    """The identifier types, loaded once for a whole request (one query)."""

    def __init__(self) -> None:
        self.patterns: dict[str, str] = dict(IdentifierType.objects.values_list("name", "pattern"))

    def check_pid(self, pid: str, pid_type: str) -> None:
        if pid_type not in self.patterns:
            raise RuleViolation(f"bad pid_type: {pid_type}")
        check_pid(pid)
        check_value(pid_type, self.patterns[pid_type], pid, "pid")

    def identifiers(self, pid: str, pid_type: str, identifiers: dict[str, str]) -> dict[str, str]:
        """Checked identifiers to store: a repeated pid_type key must equal the pid and is dropped."""
        result = {}
        for key, value in identifiers.items():
            if key not in self.patterns:
                raise RuleViolation(f"bad identifier_type: {key}")
            if key == pid_type:
                if value != pid:
                    raise RuleViolation(
                        f"duplicate pid_type in identifiers DO NOT MATCH: {key}={value!r} but pid={pid!r}"
                    )
                continue
            check_value(key, self.patterns[key], value, f"identifier {key}")
            result[key] = value
        return result


class StoreResolver:
    """Store configurations by pk or description, each looked up (or created by ``user``) once per
    request."""

    def __init__(self, *, user) -> None:
        self._cache: dict[Any, StoreConfig] = {}
        self.user = user

    def resolve(self, spec: Any) -> StoreConfig:
        key = spec if isinstance(spec, int) else (spec.type, spec.bucket, spec.s3_url)
        if key not in self._cache:
            if isinstance(spec, int):
                self._cache[key] = store_get(spec)
            else:
                self._cache[key] = store_get_or_create(
                    type=spec.type, bucket=spec.bucket, s3_url=spec.s3_url, user=self.user
                )
        return self._cache[key]


def new_store_key() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------------------------
# Tags


def _tags_by_name(names: set[str]) -> dict[str, Tag]:
    tags = {tag.name: tag for tag in Tag.objects.filter(name__in=names)}
    for name in sorted(names - tags.keys()):  # one insert per new distinct tag, never per media
        try:
            with transaction.atomic():
                tags[name] = Tag.objects.create(name=name)
        except IntegrityError:  # created at the same moment by another request
            tags[name] = Tag.objects.get(name=name)
    return tags


def sync_tags(media: list[Media], *, fresh: bool = False) -> None:
    """Make taggit's rows of these media equal their ``tag_list``."""
    if not media:
        return
    if not fresh:
        TaggedMedia.objects.filter(content_object_id__in=[m.pk for m in media]).delete()
    tags = _tags_by_name({name for m in media for name in m.tag_list})
    TaggedMedia.objects.bulk_create(
        [TaggedMedia(content_object_id=m.pk, tag=tags[name]) for m in media for name in m.tag_list]
    )


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
    rules.check_pid(pid, item.pid_type)
    identifiers = rules.identifiers(pid, item.pid_type, item.identifiers)
    tags = clean_tags(item.tags)
    meta_ops.check_limits(item.metadata)
    store = stores.resolve(item.store_config)
    return Media(
        pid=pid,
        pid_type_id=item.pid_type,
        store_config=store,
        store_key=new_store_key(),
        store_status=StoreStatus.PENDING,
        identifiers=identifiers,
        metadata=item.metadata,
        tag_list=tags,
    )


def media_prepare_many(items: list[MediaIn], *, user, name_items: bool = True) -> list[Media]:
    """Validate new media and build their rows, unsaved: the first invalid item raises, naming its
    index and pid when ``name_items``. Store configurations they name are got or created (by ``user``)."""
    rules, stores = IdentifierRules(), StoreResolver(user=user)
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
    taken = set(Media.objects.filter(pid__in=seen).values_list("pid", flat=True))
    if taken:
        pid = min(taken, key=seen.__getitem__)
        exc = Conflict(f"media with pid '{pid}' already exists")
        if name_items:
            exc.extra.update(index=seen[pid], pid=pid)
        raise exc
    return objs


@transaction.atomic
def media_insert(objs: list[Media], *, user) -> list[Media]:
    """Insert prepared media with their history and tags, all or none."""
    if not objs:
        return []
    now = timezone.now()
    for obj, mark in zip(objs, next_marks(len(objs)), strict=True):
        obj.stamp(mark)
        obj.created = obj.updated = now
    try:
        Media.objects.bulk_create(objs)
    except IntegrityError:  # another request took one of the pids since media_prepare_many looked
        raise Conflict(
            "a media with one of these pids was created concurrently; nothing was created"
        ) from None
    Media.history.bulk_history_create(objs, default_user=user, default_date=now)
    sync_tags(objs, fresh=True)
    record([event_for(obj, EventType.CREATED, user=user, now=now) for obj in objs])
    return objs


def media_create_many(items: list[MediaIn], *, user, name_items: bool = True) -> list[Media]:
    """Create all the media or none (store_status PENDING)."""
    return media_insert(media_prepare_many(items, user=user, name_items=name_items), user=user)


def media_create(item: MediaIn, *, user) -> Media:
    return media_create_many([item], user=user, name_items=False)[0]


# ---------------------------------------------------------------------------------------------
# Updates: one engine for every per-item update endpoint


@dataclass
class BulkOutcome:
    successes: list[str] = field(default_factory=list)
    failures: list[tuple[str, MediastoreError]] = field(default_factory=list)
    changed: list[Media] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "successes": self.successes,
            "failures": [{"pid": pid, "error": exc.kind, "msg": exc.message} for pid, exc in self.failures],
        }


Compute = Callable[[Media], dict[str, Any]]


def _differs(media: Media, attr: str, value: Any) -> bool:
    if isinstance(value, StoreConfig):
        return media.store_config_id != value.pk
    return getattr(media, attr) != value


def bulk_apply(
    items: list[tuple[str, Compute]],
    *,
    user,
    tags_changed: bool = False,
    reason: str = "",
    event_type: str | None = None,
) -> BulkOutcome:
    """Apply ``compute(media)`` to the media of each pid; each item succeeds or fails on its own.

    ``compute`` returns the attributes to set (it must not modify the media itself) or raises a
    MediastoreError, which becomes that item's failure. Items are applied in order, so two items
    for one pid see each other. Then every changed media is written, stamped and recorded in the
    history in one go, with ``reason`` as the history rows' change reason, and one outbox event per
    changed media: ``event_type``, else ``media.moved`` when its store changed, ``media.tags_changed``
    when only its tags did, ``media.updated`` otherwise.
    """
    outcome = BulkOutcome()
    with transaction.atomic():
        found = {
            m.pid: m
            for m in Media.objects.select_related("store_config__s3cfg")
            .select_for_update(of=("self",))
            .filter(pid__in={pid for pid, _ in items})
        }
        by_pk: dict[int, Media] = {}
        fields: set[str] = set()
        changed_of: dict[int, set[str]] = {}
        for pid, compute in items:
            media = found.get(pid)
            try:
                if media is None:
                    raise NotFound("Media", pid)
                updates = {k: v for k, v in compute(media).items() if _differs(media, k, v)}
            except MediastoreError as exc:
                outcome.failures.append((pid, exc))
                continue
            for attr, value in updates.items():
                setattr(media, attr, value)
                fields.add(attr.removesuffix("_id"))
                changed_of.setdefault(media.pk, set()).add(attr.removesuffix("_id"))
            if updates:
                by_pk[media.pk] = media
            outcome.successes.append(pid)
        outcome.changed = list(by_pk.values())
        if outcome.changed:
            now = timezone.now()
            for media, mark in zip(outcome.changed, next_marks(len(outcome.changed)), strict=True):
                media.stamp(mark)
                media.updated = now
            Media.objects.bulk_update(outcome.changed, [*sorted(fields), "mark", "version", "updated"])
            Media.history.bulk_history_create(
                outcome.changed,
                update=True,
                default_user=user,
                default_date=now,
                default_change_reason=reason,
            )
            if tags_changed:
                sync_tags(outcome.changed)
            record(
                [
                    event_for(
                        media,
                        event_type or change_type(changed_of[media.pk]),
                        user=user,
                        now=now,
                        changed=changed_of[media.pk],
                    )
                    for media in outcome.changed
                ]
            )
    return outcome


def change_type(fields: set[str]) -> str:
    """The event type of an update that changed these fields (model names, ``_id`` dropped)."""
    if "store_config" in fields:
        return EventType.MOVED
    if fields == {"tag_list"}:
        return EventType.TAGS_CHANGED
    return EventType.UPDATED


def raise_first_failure(outcome: BulkOutcome) -> None:
    if outcome.failures:
        raise outcome.failures[0][1]


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


def _prepare_moves(
    pairs: list[tuple[str, MediaPatch]], stores: StoreResolver
) -> dict[str, PreparedMove | MediastoreError]:
    """Copy the bytes of READY media whose store changes, before any row is touched.

    The copies run outside the database transaction (they may take long); the rows then switch to
    the copies in the bulk write, and ``_finish_moves`` removes whichever copy lost.
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


def _finish_moves(moves: dict[str, PreparedMove | MediastoreError], outcome: BulkOutcome) -> None:
    """Delete the old bytes of media that moved, and the unused copies of those that did not."""
    moved = {(m.store_config_id, m.store_key) for m in outcome.changed}
    for move in moves.values():
        if isinstance(move, MediastoreError):
            continue
        if (move.store.pk, move.key) in moved:
            byte_mover().discard(move.old_store.backend(), move.old_key)
        else:
            byte_mover().discard(move.store.backend(), move.key)


def _patch_compute(
    patch: MediaPatch,
    rules: IdentifierRules,
    stores: StoreResolver,
    taken: set[str],
    moves: dict[str, PreparedMove | MediastoreError],
) -> Compute:
    def compute(media: Media) -> dict[str, Any]:
        updates: dict[str, Any] = {}
        pid = patch.new_pid if patch.new_pid is not None else media.pid
        pid_type = patch.pid_type if patch.pid_type is not None else media.pid_type_id
        if pid != media.pid or pid_type != media.pid_type_id:
            rules.check_pid(pid, pid_type)
            if pid != media.pid and pid in taken:
                raise Conflict(f"media with pid '{pid}' already exists")
            updates.update(pid=pid, pid_type_id=pid_type)
            updates["identifiers"] = rules.identifiers(pid, pid_type, media.identifiers)
        if patch.store_config is not None:
            store = stores.resolve(patch.store_config)
            if store.pk != media.store_config_id:
                if media.store_status == StoreStatus.READY:
                    move = moves.get(media.pid)
                    if isinstance(move, MediastoreError):
                        raise move
                    if move is None or move.old_key != media.store_key or move.store.pk != store.pk:
                        raise Conflict(f"media '{media.pid}' changed while its bytes were copied; try again")
                    updates["store_key"] = move.key
                updates["store_config"] = store
        if "pid" in updates:
            taken.add(pid)
        return updates

    return compute


def media_patch_many(pairs: list[tuple[str, MediaPatch]], *, user) -> BulkOutcome:
    """Rename, retype or re-store media; ``pairs`` is [(pid, patch)].

    A READY media changes store only after its bytes were copied to the new store and verified;
    the old copy is removed once the row points at the new one.
    """
    rules, stores = IdentifierRules(), StoreResolver(user=user)
    new_pids = {patch.new_pid for _, patch in pairs if patch.new_pid is not None}
    taken = set(Media.objects.filter(pid__in=new_pids).values_list("pid", flat=True))
    moves = _prepare_moves(pairs, stores)
    computes = [(pid, _patch_compute(patch, rules, stores, taken, moves)) for pid, patch in pairs]
    outcome = BulkOutcome()
    try:
        outcome = bulk_apply(computes, user=user)
    finally:
        _finish_moves(moves, outcome)
    return outcome


def media_patch(pid: str, patch: MediaPatch, *, user) -> None:
    raise_first_failure(media_patch_many([(pid, patch)], user=user))


def media_tags_update(items: list[UpdateTags], *, user, replace: bool) -> BulkOutcome:
    def computer(item: UpdateTags) -> Compute:
        def compute(media: Media) -> dict[str, Any]:
            names = clean_tags(item.tags)
            return {"tag_list": names if replace else sorted(set(media.tag_list) | set(names))}

        return compute

    return bulk_apply([(item.pid, computer(item)) for item in items], user=user, tags_changed=True)


def media_identifiers_update(items: list[UpdateIdentifiers], *, user) -> BulkOutcome:
    rules = IdentifierRules()

    def computer(item: UpdateIdentifiers) -> Compute:
        return lambda media: {
            "identifiers": rules.identifiers(media.pid, media.pid_type_id, item.identifiers)
        }

    return bulk_apply([(item.pid, computer(item)) for item in items], user=user)


def media_storekeys_update(items: list[UpdateStorekey], *, user) -> BulkOutcome:
    """Point media at other keys of their store. A READY media may only point at an existing object."""
    keys = {item.store_key for item in items}
    taken = {
        (store, key): pk
        for store, key, pk in Media.objects.filter(store_key__in=keys).values_list(
            "store_config_id", "store_key", "pk"
        )
    }

    def computer(item: UpdateStorekey) -> Compute:
        def compute(media: Media) -> dict[str, Any]:
            key = validate_store_key(item.store_key)
            owner = taken.get((media.store_config_id, key))
            if owner is not None and owner != media.pk:
                raise Conflict(f"store_key {key!r} is already used by another media of this store")
            if key != media.store_key and media.store_status == StoreStatus.READY:
                if not media.store_config.backend().exists(key):
                    raise Conflict(
                        f"no stored object at store_key {key!r}; a READY media must point at its bytes"
                    )
            taken.pop((media.store_config_id, media.store_key), None)
            taken[(media.store_config_id, key)] = media.pk
            return {"store_key": key}

        return compute

    return bulk_apply([(item.pid, computer(item)) for item in items], user=user)


def media_metadata_update(items: list[UpdateMetadata], *, user, op: str) -> BulkOutcome:
    """op is "put" (set), "patch" (merge) or "delete"; see media.metadata. The metadata each item
    leaves must pass ``check_limits`` (depth, size), else that item fails."""

    def computer(item: UpdateMetadata) -> Compute:
        def compute(media: Media) -> dict[str, Any]:
            # Both the stored metadata (unless replaced or cleared whole) and the data are copied
            # below, and copying recurses: nothing deeper than the limit may get there.
            if item.keys or op == "patch":
                meta_ops.check_depth(
                    media.metadata, "the stored metadata (replace or clear it whole to fix it)"
                )
            if op == "delete":
                return {"metadata": meta_ops.delete(media.metadata, item.keys)}
            meta_ops.check_depth(item.data, "data")
            if op == "put":
                result = meta_ops.put(media.metadata, item.keys, item.data)
            else:
                result = meta_ops.merge(media.metadata, item.keys, item.data)
            meta_ops.check_limits(result)
            return {"metadata": result}

        return compute

    return bulk_apply([(item.pid, computer(item)) for item in items], user=user)


# ---------------------------------------------------------------------------------------------
# Revert


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
    rules = IdentifierRules()
    revisions = Media.history.model.objects
    reverted: list[Media] = []

    def compute(media: Media) -> dict[str, Any]:
        row = (
            revisions.filter(id=media.pk, version=version)
            .exclude(history_type="-")
            .order_by("-history_id")
            .first()
        )
        if row is None:
            raise NotFound(f"Media '{media.pid}' version", version)
        rules.check_pid(row.pid, row.pid_type_id)
        if row.pid != media.pid and Media.objects.filter(pid=row.pid).exists():
            raise Conflict(f"media with pid '{row.pid}' already exists")
        restored = {
            "pid": row.pid,
            "pid_type_id": row.pid_type_id,
            "identifiers": rules.identifiers(row.pid, row.pid_type_id, row.identifiers),
            "metadata": row.metadata,
            "tag_list": clean_tags(row.tag_list),
        }
        reverted.append(media)
        return restored

    try:
        outcome = bulk_apply(
            [(pid, compute)],
            user=user,
            tags_changed=True,
            reason=f"revert to version {version}",
            event_type=EventType.REVERTED,
        )
    except IntegrityError:  # another media took the pid since compute() looked
        raise Conflict(
            f"the pid of version {version} of media '{pid}' was taken meanwhile; nothing changed"
        ) from None
    raise_first_failure(outcome)
    return reverted[0]


# ---------------------------------------------------------------------------------------------
# Delete


def media_delete(pid: str, *, user) -> None:
    """Delete a media, then its bytes.

    The row goes first, in a short transaction: a crash or a store failure afterwards leaves an
    unreferenced object (found by ``manage.py collect_orphans``), never a READY row without bytes.
    A failure to remove the bytes is logged, not raised: the media is deleted either way.
    """
    with transaction.atomic():
        media = (
            Media.objects.select_related("store_config__s3cfg")
            .select_for_update(of=("self",))
            .filter(pid=pid)
            .first()
        )
        if media is None:
            raise NotFound("Media", pid)
        backend, key = media.store_config.backend(), media.store_key
        as_it_was = media_out_dict(media)
        media._history_user = user
        media.delete()
        record([event_for(media, EventType.DELETED, user=user, as_it_was=as_it_was)])
    try:
        backend.delete(key)
    except MediastoreError as exc:
        log.warning("media %r deleted; its object %r could not be removed: %s", pid, key, exc.message)


def media_delete_many(pids: list[str], *, user) -> BulkOutcome:
    outcome = BulkOutcome()
    for pid in pids:
        try:
            media_delete(pid, user=user)
        except MediastoreError as exc:
            outcome.failures.append((pid, exc))
        else:
            outcome.successes.append(pid)
    return outcome
