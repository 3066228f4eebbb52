"""Charging writes to the usage table and holding them to the quotas, in the writer's transaction.

Every write that inserts a media row, changes the size of its primary copy, moves it to another
store or deletes it calls ``charge`` with the changes of (store, owner) -> (bytes, media) it makes,
inside the transaction of that write: the usage rows change with ``F()`` arithmetic together with
the media rows, so they cannot drift from a recount (``recount``), and a write that rolls back
takes its charge with it.

A write that adds bytes or media first locks the quotas that apply to it (``SELECT ... FOR UPDATE``
in primary-key order, so writers lock in one order) and reads their use: concurrent writers
against one quota take turns from there to their commit, so their total can never pass the limit.
SQLite runs one write transaction at a time anyway (``transaction_mode IMMEDIATE``). Writes that
only take away (deletes, smaller bytes, the old store of a move) are never refused, even over a
limit an administrator lowered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q

from mediastore import failpoints
from mediastore.errors import NotFound, QuotaExceeded, RuleViolation
from quotas.models import Quota, Usage, describe
from quotas.selectors import quota_use
from stores.models import StoreConfig

# A quota.warning event is written when a write takes a quota's use to this share of its limit
# from below it (WARN_NUMERATOR / WARN_DENOMINATOR: 90%, in integers).
WARN_NUMERATOR, WARN_DENOMINATOR = 9, 10
UNITS = ("bytes", "media")


@dataclass(frozen=True)
class Delta:
    """What one write changes in one (store, owner) pair; ``owner`` is a username, "" for none."""

    store_id: int
    owner: str
    bytes: int = 0
    media: int = 0


@dataclass(frozen=True)
class Crossing:
    """A write took a quota's use of ``unit`` from below 90% of ``limit`` to at least that;
    ``index`` is the delta that did."""

    quota: Quota
    unit: str
    limit: int
    used: int
    index: int

    def as_dict(self) -> dict:
        return {**quota_dict(self.quota), "unit": self.unit, "limit": self.limit, "used": self.used}


def quota_dict(quota: Quota) -> dict:
    return {
        "store": quota.store_id,
        "user": quota.user.get_username() if quota.user_id else None,
        "max_bytes": quota.max_bytes,
        "max_media": quota.max_media,
    }


def _applies(quota: Quota, delta: Delta) -> bool:
    if quota.store_id is not None and quota.store_id != delta.store_id:
        return False
    return quota.user_id is None or quota.user.get_username() == delta.owner


def _use(quota: Quota) -> dict[str, int]:
    return dict(zip(UNITS, quota_use(quota), strict=True))


class Ledger:
    """The charges of one write transaction: ``add`` checks deltas against the quotas (locking and
    reading the ones that apply the first time a store or owner comes up, so a bulk write of many
    media costs a statement per quota, not per media) and keeps them; ``apply`` writes them to the
    usage rows, one ``F()`` update per (store, owner) pair."""

    def __init__(self, *, check: bool = True) -> None:
        self.check = check
        self.quotas: list[Quota] = []
        self.used: dict[int, dict[str, int]] = {}  # quota pk -> its use before this transaction
        self.added: dict[int, dict[str, int]] = {}  # quota pk -> what this ledger's deltas add
        self.stores: set[int] = set()
        self.owners: set[str] = set()
        self.pending: list[Delta] = []

    def add(self, deltas: Iterable[Delta]) -> list[Crossing]:
        """Keep ``deltas`` for ``apply``, after raising QuotaExceeded (507; its ``index`` names the
        delta) when one that adds would take an applicable quota past its limit: then none of them
        is kept. Returns the crossings of 90% of a limit (for ``quota.warning`` events)."""
        if not connection.in_atomic_block:
            raise RuntimeError("usage must be charged in the transaction of its write")
        deltas = [delta for delta in deltas if delta.bytes or delta.media]
        crossings: list[Crossing] = []
        if self.check and any(delta.bytes > 0 or delta.media > 0 for delta in deltas):
            self.reserve({delta.store_id for delta in deltas}, {delta.owner for delta in deltas})
            crossings = self._check(deltas)
        self.pending += deltas
        return crossings

    def reserve(self, stores: set[int], owners: set[str]) -> None:
        """Lock (in pk order, in one statement) the quotas that apply to these stores and owners and
        are not locked yet. A bulk write that will charge many media reserves all it may touch
        first: locking them piece by piece as items come up would take them in an order of its
        own, and two such writes (opposite moves between two stores) could deadlock."""
        stores = stores - self.stores
        owners = {owner for owner in owners if owner} - self.owners
        if not stores and not owners:
            return
        self.stores |= stores
        self.owners |= owners
        applicable = Q(store__isnull=True) | Q(store_id__in=self.stores)
        applicable &= Q(user__isnull=True) | Q(user__username__in=self.owners)
        found = (
            Quota.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(applicable)
            .exclude(pk__in=self.used)
            .order_by("pk")
        )
        for quota in found:
            self.quotas.append(quota)
            self.used[quota.pk] = _use(quota)
            self.added[quota.pk] = dict.fromkeys(UNITS, 0)
        failpoints.hit("quotas.after_lock")  # the live test widens the window to the next lock here

    def _check(self, deltas: list[Delta]) -> list[Crossing]:
        """Walk the deltas in order; the first that takes a quota past a limit is refused, unless
        these deltas together add nothing to that quota (a move within one account's quota)."""
        added = {pk: dict(units) for pk, units in self.added.items()}  # kept only when all fit
        crossings: list[Crossing] = []
        refused: dict[tuple[int, str], QuotaExceeded] = {}
        for index, delta in enumerate(deltas):
            for quota in self.quotas:
                if not _applies(quota, delta):
                    continue
                for unit in UNITS:
                    change, limit = getattr(delta, unit), getattr(quota, f"max_{unit}")
                    before = self.used[quota.pk][unit] + added[quota.pk][unit]
                    added[quota.pk][unit] += change
                    if limit is None or change <= 0:
                        continue
                    after = before + change
                    if after > limit:
                        if (quota.pk, unit) not in refused:
                            exc = QuotaExceeded(
                                describe(
                                    quota.store_id, quota.user.get_username() if quota.user_id else None
                                ),
                                quota=quota_dict(quota),
                                unit=unit,
                                limit=limit,
                                used=self.used[quota.pk][unit],
                                requested=added[quota.pk][unit] - self.added[quota.pk][unit],
                            )
                            exc.index = index
                            refused[(quota.pk, unit)] = exc
                        continue
                    threshold = limit * WARN_NUMERATOR
                    if before * WARN_DENOMINATOR < threshold <= after * WARN_DENOMINATOR:
                        crossings.append(Crossing(quota, unit, limit, after, index))
        for (pk, unit), exc in sorted(refused.items(), key=lambda item: item[1].index):
            if added[pk][unit] > self.added[pk][unit]:
                raise exc
        self.added = added
        return crossings

    def apply(self) -> None:
        """Write the kept deltas to the usage rows (in the caller's transaction)."""
        _apply(self.pending)
        self.pending = []


def charge(deltas: Iterable[Delta], *, check: bool = True) -> list[Crossing]:
    """Check ``deltas`` (with ``check``; see ``Ledger.add``) and add them to the usage rows, in the
    caller's transaction; nothing is charged when QuotaExceeded is raised. Returns the crossings of
    90% of a limit."""
    ledger = Ledger(check=check)
    crossings = ledger.add(deltas)
    ledger.apply()
    return crossings


def _apply(deltas: list[Delta]) -> None:
    totals: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for delta in deltas:
        totals[(delta.store_id, delta.owner)][0] += delta.bytes
        totals[(delta.store_id, delta.owner)][1] += delta.media
    for (store_id, owner), (add_bytes, add_media) in sorted(totals.items()):  # one lock order for all
        if not add_bytes and not add_media:
            continue
        row = Usage.objects.filter(store_id=store_id, owner=owner)
        change = {"bytes": F("bytes") + add_bytes, "media": F("media") + add_media}
        if not row.update(**change):
            # Concurrent first writers of a pair: one insert wins, the others' is ignored.
            Usage.objects.bulk_create([Usage(store_id=store_id, owner=owner)], ignore_conflicts=True)
            row.update(**change)


def precheck(store_id: int, owner: str, *, bytes: int = 0, media: int = 0) -> None:
    """Raise QuotaExceeded now, before any byte is sent or stored, when a write of this size would
    be refused at its commit as things stand (locks held only for this check: the charge at the
    commit decides)."""
    if bytes <= 0 and media <= 0:
        return
    with transaction.atomic():
        Ledger().add([Delta(store_id, owner, bytes, media)])


# ---------------------------------------------------------------------------------------------
# Administration


def quota_put(
    *, store: int | None, user: str | None, max_bytes: int | None, max_media: int | None
) -> Quota | None:
    """Create or replace the quota of (store, user); both limits None removes it (None returned).
    NotFound for an unknown store or user."""
    store_obj = None
    if store is not None:
        store_obj = StoreConfig.objects.filter(pk=store).first()
        if store_obj is None:
            raise NotFound("StoreConfig", store)
    user_obj = None
    if user is not None:
        user_obj = get_user_model().objects.filter(username=user).first()
        if user_obj is None:
            raise NotFound("User", user)
    for name, value in (("max_bytes", max_bytes), ("max_media", max_media)):
        if value is not None and value < 0:
            raise RuleViolation(f"{name} must be 0 or more, or null for no limit")
    existing = Quota.objects.filter(store=store_obj, user=user_obj)
    if max_bytes is None and max_media is None:
        existing.delete()
        return None
    try:
        with transaction.atomic():
            quota, _ = Quota.objects.update_or_create(
                store=store_obj, user=user_obj, defaults={"max_bytes": max_bytes, "max_media": max_media}
            )
    except IntegrityError:  # a concurrent PUT of the same pair created it first: replace that one
        quota = existing.get()
        quota.max_bytes, quota.max_media = max_bytes, max_media
        quota.save()
    return quota


# ---------------------------------------------------------------------------------------------
# Accounts renamed and deleted


def usage_rename(old: str, new: str) -> None:
    """The usage of the owner ``old`` is the usage of ``new`` now (an account renamed)."""
    with transaction.atomic():
        Usage.objects.filter(owner=old).update(owner=new)


def usage_orphan(username: str) -> None:
    """The media of a deleted account have no owner now: its usage moves to "no owner"."""
    with transaction.atomic():
        rows = list(Usage.objects.filter(owner=username).order_by("store_id"))
        moves = []
        for row in rows:
            moves += [
                Delta(row.store_id, username, -row.bytes, -row.media),
                Delta(row.store_id, "", row.bytes, row.media),
            ]
        charge(moves, check=False)
        Usage.objects.filter(owner=username, bytes=0, media=0).delete()
