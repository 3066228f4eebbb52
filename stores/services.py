"""Writes of S3 configurations and store configurations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError, RestrictedError

from mediastore.errors import Conflict, NotFound, RuleViolation, StorageError
from stores.backends import LOCAL_STORE_TYPES, S3_STORE_TYPES, ObjectNotFound, backend_class, build_backend
from stores.endpoints import has_userinfo
from stores.models import DEFAULT_REGION, AddressingStyle, S3Config, StoreConfig
from stores.paths import places_overlap
from stores.probe import probe_backend

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# PostgreSQL advisory lock held while a local store is checked and created (any constant works; this
# one is "mediastr" in ASCII).
LOCAL_STORES_LOCK = 0x6D65646961737472


def s3cfg_get(pk: int) -> S3Config:
    try:
        return S3Config.objects.get(pk=pk)
    except S3Config.DoesNotExist:
        raise NotFound("S3Config", pk) from None


def store_get(pk: int) -> StoreConfig:
    try:
        return StoreConfig.objects.select_related("s3cfg").get(pk=pk)
    except StoreConfig.DoesNotExist:
        raise NotFound("StoreConfig", pk) from None


def check_s3_url(url: str) -> str:
    """``url`` if it is an http(s) URL without user info (credentials belong in the key fields)."""
    if has_userinfo(url):
        raise RuleViolation(
            "S3 url must not contain user info (user:password@); give the keys as access_key and secret_key"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError as exc:  # e.g. "http://[" (an unclosed IPv6 address)
        raise RuleViolation(f"S3 url {url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RuleViolation(f"S3 url must be an http:// or https:// URL, got {url!r}")
    return url


def check_s3_keys(access_key: str, secret_key: str) -> None:
    """Both keys, or neither (the server's standard AWS credential chain); RuleViolation else."""
    if bool(access_key) != bool(secret_key):
        raise RuleViolation(
            "give both access_key and secret_key, or neither (the server's standard AWS credential "
            "chain: AWS_* environment, profiles, instance role)"
        )


@transaction.atomic
def s3cfg_create(
    *,
    url: str,
    access_key: str = "",
    secret_key: str = "",
    region: str = DEFAULT_REGION,
    addressing_style: str = AddressingStyle.PATH,
    user: User | None,
) -> S3Config:
    """Create an S3 configuration; identical again is a no-op, the same url with other keys or
    settings a Conflict. Nothing is probed: no store uses a new configuration yet.

    ``user`` is recorded as the author in the audit history (as in every write below).
    """
    check_s3_url(url)
    check_s3_keys(access_key, secret_key)
    existing = S3Config.objects.select_for_update().filter(url=url).first()
    wanted = (access_key, secret_key, region, addressing_style)
    if existing is not None:
        if (existing.access_key, existing.secret_key, existing.region, existing.addressing_style) != wanted:
            raise Conflict(
                f"an S3Config for url {url!r} exists with other credentials or settings; "
                f"use PUT /api/s3cfg/{existing.pk}"
            )
        return existing
    cfg = S3Config(
        url=url,
        access_key=access_key,
        secret_key=secret_key,
        region=region,
        addressing_style=addressing_style,
    )
    cfg._history_user = user
    cfg.save()
    return cfg


def s3cfg_update(
    *,
    pk: int,
    url: str,
    access_key: str = "",
    secret_key: str = "",
    region: str = DEFAULT_REGION,
    addressing_style: str = AddressingStyle.PATH,
    user: User | None,
    probe: bool = False,
) -> None:
    """Replace an S3 configuration. With ``probe``, every store using it is probed with the new
    settings first (outside any transaction: S3 may take seconds), and the first that fails is a
    RuleViolation naming it and the failure, with nothing saved."""
    check_s3_url(url)
    check_s3_keys(access_key, secret_key)
    cfg = s3cfg_get(pk)
    if S3Config.objects.filter(url=url).exclude(pk=pk).exists():
        raise Conflict(f"another S3Config already has url {url!r}")
    cfg.url, cfg.access_key, cfg.secret_key = url, access_key, secret_key
    cfg.region, cfg.addressing_style = region, addressing_style
    if probe:
        for store in cfg.stores.order_by("pk"):
            store.s3cfg = cfg  # the unsaved new settings
            probe_store(store, f"store {store.pk} ({store.type} '{store.bucket}') with these settings")
    with transaction.atomic():
        if S3Config.objects.filter(url=url).exclude(pk=pk).exists():
            raise Conflict(f"another S3Config already has url {url!r}")
        if not S3Config.objects.select_for_update().filter(pk=pk).exists():
            raise NotFound("S3Config", pk)
        cfg._history_user = user
        cfg.save()


def probe_store(store: StoreConfig, described: str) -> None:
    """Probe ``store`` (saved or not; ``stores.probe``): RuleViolation (422) naming ``described``
    and what failed when it cannot write, read back and delete a small object."""
    try:
        probe_backend(store.backend())
    except ObjectNotFound as exc:
        raise RuleViolation(
            f"probe of {described} failed: object '{exc}' vanished; nothing was saved"
        ) from None
    except StorageError as exc:
        raise RuleViolation(
            f"probe of {described} failed: {exc.message}; nothing was saved (?probe=false skips the probe)"
        ) from None


@transaction.atomic
def s3cfg_delete(*, pk: int, user: User | None) -> None:
    cfg = s3cfg_get(pk)
    if cfg.stores.exists():
        raise Conflict(f"S3Config {pk} is used by store configurations; delete those first")
    cfg._history_user = user
    cfg.delete()


def normalize_store(store_type: str, bucket: str, s3_url: str) -> tuple[str, str, S3Config | None]:
    """Validate a store description; returns (type, canonical bucket, S3 config or None).

    The type's backend class holds its bucket rules; this adds what needs the database (the S3
    configuration named by ``s3_url``)."""
    backend = backend_class(store_type)
    if not backend.uses_s3:
        if s3_url:
            only = " or ".join(S3_STORE_TYPES)
            raise RuleViolation(f"a {store_type} does not take an s3_url (only {only} does)")
        return store_type, backend.normalize_bucket(bucket), None
    if not s3_url:
        raise RuleViolation(f"a {store_type} needs s3_url naming an S3Config")
    if has_userinfo(s3_url):
        raise RuleViolation("s3_url must not contain user info (user:password@)")
    s3cfg = S3Config.objects.filter(url=s3_url).first()
    if s3cfg is None:
        raise RuleViolation(
            f'No S3Config with url="{s3_url}" found. Please create S3Config credentials for this url first'
        )
    return store_type, backend.normalize_bucket(bucket), s3cfg


def is_local_store(store_type: str) -> bool:
    """Whether stores of this type live at a path below the storage root (and must not overlap)."""
    return store_type in LOCAL_STORE_TYPES


def store_get_or_create(
    *, type: str, bucket: str, s3_url: str = "", user: User | None, probe: bool = False
) -> StoreConfig:
    """The store configuration for (type, bucket, s3 config), created (by ``user``) when new.

    A new local store (a directory or file below the storage root) must not share its place with
    another one: RuleViolation naming the other store when it would (see ``claim_local_place``).
    With ``probe``, a new store is probed before it is saved (``probe_store``: RuleViolation
    naming what failed, nothing saved); an existing one is returned as it is.
    """
    return store_get_or_create_telling(type=type, bucket=bucket, s3_url=s3_url, user=user, probe=probe)[0]


def store_get_or_create_telling(
    *, type: str, bucket: str, s3_url: str = "", user: User | None, probe: bool = False
) -> tuple[StoreConfig, bool]:
    """``store_get_or_create``, and whether this call created the store (so that an operation
    that then fails can take it back with ``store_forget``)."""
    store_type, bucket, s3cfg = normalize_store(type, bucket, s3_url)
    lookup = {"type": store_type, "bucket": bucket, "s3cfg": s3cfg}
    store = StoreConfig.objects.select_related("s3cfg").filter(**lookup).first()
    if store is not None:
        return store, False
    described = f"the new {store_type} '{bucket}'"
    if is_local_store(store_type):
        with transaction.atomic():
            same = claim_local_place(store_type, bucket)
            if same:
                return same, False
            if probe:  # under the lock, after the overlap check: nothing is written where it may not be
                probe_store(StoreConfig(**lookup), described)
            return _store_create(lookup, user), True
    if probe:
        probe_store(StoreConfig(**lookup), described)
    try:
        with transaction.atomic():
            return _store_create(lookup, user), True
    except IntegrityError:  # created concurrently by another request
        return StoreConfig.objects.select_related("s3cfg").get(**lookup), False


def store_forget(store: StoreConfig, *, user: User | None) -> None:
    """Delete a store configuration that an operation created on the fly and then failed, unless
    something uses it meanwhile (a concurrent request's media: the delete is refused and the store
    stays). A failed upload used to leave its store behind, shown red on /status/."""
    store._history_user = user
    try:
        with transaction.atomic():
            store.delete()
    except (ProtectedError, RestrictedError):
        pass


def _store_create(fields: dict, user: User | None) -> StoreConfig:
    store = StoreConfig(**fields)
    store._history_user = user
    store.save(force_insert=True)
    return store


def lock_local_stores() -> None:
    """Hold, until the current transaction ends, the right to create local store configurations.

    Overlap is a relation between rows (one path inside another), which no unique constraint can
    express; so the check and the insert run under one lock, and two concurrent creations of
    overlapping stores cannot both pass the check. PostgreSQL: a transaction-level advisory lock
    (it blocks nothing else, not even other writes to the table). SQLite: transactions begin
    IMMEDIATE (settings), so the database's write lock is already held from the start.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCAL_STORES_LOCK])


def claim_local_place(store_type: str, bucket: str, *, exclude_pk: int | None = None) -> StoreConfig | None:
    """Check, under ``lock_local_stores``, that a local store of ``store_type`` at the normalised
    ``bucket`` may be created; call it inside the transaction that then creates the row.

    Returns an existing configuration that already is this store (same type, same place on disk,
    e.g. an older row spelled ``/a`` for ``a``), else None: create it. Raises RuleViolation when
    its directory or file (or a file it keeps beside it) equals, lies inside or contains another
    local store's, naming that store; or when its place cannot hold it (a directory where its zip
    file must go, a file where its directory must go). Rows that already overlap each other (from
    before this check existed) are left as they are.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("claim_local_place must run inside the transaction that creates the store")
    lock_local_stores()
    lookup = StoreConfig.objects.select_related("s3cfg")
    same = lookup.filter(type=store_type, bucket=bucket, s3cfg=None).exclude(pk=exclude_pk).first()
    if same is not None:
        return same
    backend = build_backend(store_type, bucket)
    ours = backend.local_paths()
    for other, theirs in _local_places(lookup.filter(type__in=LOCAL_STORE_TYPES).exclude(pk=exclude_pk)):
        if not places_overlap(ours, theirs):
            continue
        if other.type == store_type and theirs[0] == ours[0]:
            return other
        raise RuleViolation(
            f"{store_type} '{bucket}' would overlap {other.type} '{other.bucket}' (store {other.pk}): "
            "a local store's directory or file must not be, lie inside or contain another's"
        )
    backend.check_place()
    return None


def _local_places(stores: Iterable[StoreConfig]) -> Iterator[tuple[StoreConfig, tuple[Path, ...]]]:
    """Each local store with its place on disk; rows that no request can use (written before paths
    were checked, e.g. leading out of the storage root) are skipped."""
    for store in stores:
        try:
            yield store, store.backend().local_paths()
        except RuleViolation:
            continue


def local_store_overlaps() -> list[tuple[StoreConfig, StoreConfig]]:
    """Pairs of existing local store configurations that share a place on disk: rows written
    before overlaps were refused (``manage.py check_store_overlaps`` lists them)."""
    places = list(_local_places(StoreConfig.objects.filter(type__in=LOCAL_STORE_TYPES).order_by("pk")))
    return [
        (first, second)
        for i, (first, ours) in enumerate(places)
        for second, theirs in places[i + 1 :]
        if places_overlap(ours, theirs)
    ]


@transaction.atomic
def store_delete(*, pk: int, user: User | None) -> None:
    store = store_get(pk)
    if store.media.exists():
        raise Conflict(f"StoreConfig {pk} is used by media; delete or move those first")
    binned = list(store.binned_media.order_by("pid").values_list("pid", flat=True)[:11])
    if binned:
        shown = ", ".join(repr(pid) for pid in binned[:10]) + (", ..." if len(binned) > 10 else "")
        raise Conflict(
            f"StoreConfig {pk} is used by media in the recycle bin ({shown}); restore and move them, or "
            "purge them (DELETE /api/trash/{pid}) first",
            pids=binned[:10],
        )
    store._history_user = user
    store.delete()


@transaction.atomic
def store_set_default_ttl(*, pk: int, default_ttl: int | None, user: User | None) -> StoreConfig:
    """Set (or with None remove) the store's ``default_ttl``, with a history row."""
    store = StoreConfig.objects.select_for_update(of=("self",)).select_related("s3cfg").filter(pk=pk).first()
    if store is None:
        raise NotFound("StoreConfig", pk)
    if store.default_ttl != default_ttl:
        store.default_ttl = default_ttl
        store._history_user = user
        store.save(update_fields=["default_ttl"])
    return store
