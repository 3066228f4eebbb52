"""Replication rules (``ReplicationRule``): declared copies that the worker keeps asking for.

A rule names which media it covers (pid types, tags, primary store) and the stores each must have
a GOOD copy in. ``missing_copies`` finds the covered READY media that have no replica yet in one of
those stores (nor their primary there) and asks for one (COPYING, with a ``replica.created``
event), a batch at a time; the worker runs it at every pass, so a rule reaches media made later,
media whose tags change to match, and the media that matched when it was made. A copy that is
lost (deleted, or BAD or MISSING) is the worker's or ``verify --repair``'s to rewrite.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from content.models import Replica, ReplicaEvent, ReplicaState, ReplicationRule
from content.replicas import replica_dict, replica_event, store_dict
from identifiers.models import IdentifierType
from media.models import Media, StoreStatus
from media.outbox import record
from media.rules import StoreResolver
from mediastore.errors import Conflict, NotFound, RuleViolation
from stores.models import StoreConfig

BATCH = 200


def rule_dict(rule: ReplicationRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "match": {"pid_type": rule.pid_types, "tags": rule.tags, "store": rule.store_id},
        "copies": [store_dict(store) for store in rule.copies.select_related("s3cfg").order_by("pk")],
    }


def rule_list() -> list[dict[str, Any]]:
    return [rule_dict(rule) for rule in ReplicationRule.objects.order_by("name")]


def rule_create(
    *, name: str, pid_types: list[str], tags: list[str], store: int | None, copies: list, user
) -> dict:
    """Make a rule; RuleViolation (422) naming an unknown pid type or store, or a rule without
    copies; Conflict when the name is taken. The copies' stores are got or created as in media
    create (and forgotten again when the rule is refused)."""
    name = name.strip()
    if not name or "/" in name:
        raise RuleViolation("a rule needs a name without '/' (it is part of DELETE /api/rules/{name})")
    if not copies:
        raise RuleViolation("a rule needs at least one store in copies")
    known = set(IdentifierType.objects.filter(name__in=pid_types).values_list("name", flat=True))
    for pid_type in pid_types:
        if pid_type not in known:
            raise RuleViolation(f"bad pid_type: {pid_type}")
    if store is not None and not StoreConfig.objects.filter(pk=store).exists():
        raise RuleViolation(f"unknown store: {store} (match.store names a store pk)")
    for spec in copies:
        if isinstance(spec, int) and not StoreConfig.objects.filter(pk=spec).exists():
            raise RuleViolation(f"unknown store: {spec} (copies name store pks or store descriptions)")
    stores = StoreResolver(user=user)
    try:
        targets = [stores.resolve(spec) for spec in copies]
        if store is not None and store in {t.pk for t in targets}:
            raise RuleViolation(f"store {store} is the matched primary store; it cannot also hold a copy")
        with transaction.atomic():
            if ReplicationRule.objects.filter(name=name).exists():
                raise Conflict(f"a replication rule named '{name}' exists")
            rule = ReplicationRule.objects.create(
                name=name, pid_types=sorted(set(pid_types)), tags=sorted(set(tags)), store_id=store
            )
            rule.copies.set(targets)
    except (RuleViolation, Conflict, IntegrityError):
        stores.forget()
        raise
    return rule_dict(rule)


def rule_delete(name: str) -> None:
    """Forget a rule; the copies it asked for stay (delete them one by one if unwanted)."""
    deleted, _ = ReplicationRule.objects.filter(name=name).delete()
    if not deleted:
        raise NotFound("ReplicationRule", name)


def covered(rule: ReplicationRule) -> QuerySet[Media]:
    media = Media.objects.filter(store_status=StoreStatus.READY).exclude(checksum="")  # copies are checked
    if rule.pid_types:
        media = media.filter(pid_type_id__in=rule.pid_types)
    for tag in rule.tags:
        media = media.filter(tagged_items__tag__name=tag)
    if rule.store_id is not None:
        media = media.filter(store_config_id=rule.store_id)
    return media


def missing_copies(limit: int = BATCH) -> int:
    """Ask for up to ``limit`` copies the rules want and no media has yet; how many were asked."""
    asked = 0
    for rule in ReplicationRule.objects.prefetch_related("copies"):
        for store in rule.copies.all():
            if asked >= limit:
                return asked
            wanted = (
                covered(rule)
                .exclude(store_config_id=store.pk)
                .exclude(replicas__store_config_id=store.pk)
                .select_related("store_config__s3cfg")
                .order_by("pk")[: limit - asked]
            )
            for media in wanted:
                asked += ask_copy(media, store, rule)
    return asked


def ask_copy(media: Media, store: StoreConfig, rule: ReplicationRule) -> int:
    """A COPYING replica of ``media`` in ``store`` for ``rule`` (1), or 0 when one appeared meanwhile."""
    try:
        with transaction.atomic():
            replica = Replica.objects.create(media=media, store_config=store, state=ReplicaState.COPYING)
            replica.store_config = store
            out = replica_dict(replica)
            out["rule"] = rule.name
            record([replica_event(media, ReplicaEvent.CREATED, out)])
    except IntegrityError:  # another worker asked for it first (or the media went)
        return 0
    return 1
