"""What an import would do: every kind compared with what is already here, nothing written.

``make_plan`` sorts each row of the source into new (to import), identical (already here: skipped),
differs (already here with other values: reported, ours kept) or skipped (a problem: reported).
Problems that an operator must decide on (paths with no ``--map-path``, patterns RE2 refuses) are
*blocking*: ``--apply`` refuses to start while any is left, unless the flag that decides is given.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, identify_hasher

from identifiers.models import IdentifierType
from identifiers.rules import check_name, clean_text, compile_pattern, matches
from importer.paths import PathMap
from importer.source import OldMedia, OldUser, Snapshot
from media.models import Media, StoreStatus
from media.pids import lookup_set, nfc
from media.rules import check_pid, clean_tags
from mediastore.errors import RuleViolation
from mediastore.models import ApiToken, hash_token
from stores.backends import backend_class
from stores.models import S3Config, StoreConfig, StoreType
from stores.paths import normalize_store_path, validate_store_key
from stores.services import check_s3_url, is_local_store

IMPORT_REASON = "imported from the earlier server"


@dataclass(frozen=True)
class Target:
    """Our store configuration for an old one; ``old_path``: the old absolute path (local types)."""

    type: str
    bucket: str
    s3_url: str = ""
    old_path: str = ""

    @property
    def local(self) -> bool:
        return is_local_store(self.type)


@dataclass
class Plan:
    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    problems: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    identifier_types: list[tuple[str, str]] = field(default_factory=list)
    s3_configs: list[tuple[str, str, str]] = field(default_factory=list)
    stores: dict[int, Target] = field(default_factory=dict)  # old store id -> ours
    users: list[OldUser] = field(default_factory=list)
    usernames: dict[int, str] = field(default_factory=dict)  # old user id -> username here
    tokens: list[tuple[str, str, Any]] = field(default_factory=list)  # (key, username, created)
    media: list[OldMedia] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)  # old ids of deleted media with history

    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        self.counts[kind][outcome] += n


def make_plan(
    snap: Snapshot, paths: PathMap, *, accept_bad_patterns: bool, skip_unmapped: bool, group: str
) -> Plan:
    plan = Plan()
    for table in snap.missing_tables:
        plan.warnings.append(f"the source has no table {table}: nothing of it to import")
    types = _identifier_types(plan, snap, accept_bad_patterns)
    urls = _s3_configs(plan, snap)
    _stores(plan, snap, paths, urls, skip_unmapped)
    _users(plan, snap, group)
    _media(plan, snap, types)
    _deleted(plan, snap)
    return plan


def _identifier_types(plan: Plan, snap: Snapshot, accept_bad: bool) -> dict[str, str]:
    """Fill the plan; returns the pattern of every type the media may use after the import."""
    ours = dict(IdentifierType.objects.values_list("name", "pattern"))
    usable = dict(ours)
    for name, pattern in snap.identifier_types:
        try:
            check_name(name)
        except RuleViolation as exc:
            plan.problems.append(f"identifier type {name!r} not imported: {exc.message}")
            plan.count("identifier types", "skipped")
            continue
        try:
            if pattern:
                compile_pattern(pattern)
        except RuleViolation as exc:
            if not accept_bad:
                plan.blocking.append(
                    f"identifier type {name!r}: {exc.message}. With --accept-bad-patterns it is imported "
                    "with no pattern (any value)"
                )
                plan.count("identifier types", "skipped")
                continue
            plan.warnings.append(f"identifier type {name!r} imported with no pattern: {exc.message}")
            pattern = ""
        if name in ours:
            if ours[name] == pattern:
                plan.count("identifier types", "identical")
            else:
                plan.conflicts.append(
                    f"identifier type {name!r} exists here with pattern {ours[name]!r}, the earlier server "
                    f"has {pattern!r}: ours kept"
                )
                plan.count("identifier types", "differs")
            continue
        plan.identifier_types.append((name, pattern))
        usable[name] = pattern
        plan.count("identifier types", "new")
    return usable


def _s3_configs(plan: Plan, snap: Snapshot) -> dict[int, str]:
    """Fill the plan; returns the url of every usable old S3 config by old id."""
    ours = {cfg.url: cfg for cfg in S3Config.objects.all()}
    urls: dict[int, str] = {}
    for old_id, (url, access_key, secret_key) in snap.s3_configs.items():
        try:
            check_s3_url(url)
        except RuleViolation as exc:
            plan.problems.append(f"S3 config {old_id} not imported (nor its stores and media): {exc.message}")
            plan.count("S3 configs", "skipped")
            continue
        urls[old_id] = url
        if url in ours:
            if (ours[url].access_key, ours[url].secret_key) == (access_key, secret_key):
                plan.count("S3 configs", "identical")
            else:
                plan.conflicts.append(f"S3 config {url!r} exists here with other keys: ours kept")
                plan.count("S3 configs", "differs")
            continue
        plan.s3_configs.append((url, access_key, secret_key))
        plan.count("S3 configs", "new")
    return urls


def _stores(plan: Plan, snap: Snapshot, paths: PathMap, urls: dict[int, str], skip_unmapped: bool) -> None:
    for old_id, (store_type, bucket, s3cfg_id) in snap.store_configs.items():
        what = f"store config {old_id} ({store_type} {bucket!r})"
        if store_type not in StoreType.values:
            plan.problems.append(f"{what}: type not supported here; its media are skipped")
            plan.count("store configs", "skipped")
            continue
        if store_type == StoreType.BUCKET:
            if s3cfg_id not in urls:
                plan.problems.append(f"{what}: its S3 config is missing or refused; its media are skipped")
                plan.count("store configs", "skipped")
                continue
            try:
                canonical = backend_class(store_type).normalize_bucket(bucket)
            except RuleViolation as exc:
                plan.problems.append(f"{what}: {exc.message}; its media are skipped")
                plan.count("store configs", "skipped")
                continue
            target = Target(store_type, canonical, urls[s3cfg_id])
        elif is_local_store(store_type):
            new = paths.map(bucket)
            if new is None:
                message = f"{what}: no --map-path covers this path"
                if skip_unmapped:
                    plan.problems.append(f"{message}; its media are skipped (--skip-unmapped)")
                else:
                    plan.blocking.append(f"{message} (or pass --skip-unmapped to leave its media out)")
                plan.count("store configs", "skipped")
                continue
            try:
                new = normalize_store_path(new)
            except RuleViolation as exc:
                plan.problems.append(f"{what}: mapped to {new!r}, which is refused: {exc.message}")
                plan.count("store configs", "skipped")
                continue
            target = Target(store_type, new, old_path=bucket)
        else:
            target = Target(store_type, bucket.lstrip("/"))
        plan.stores[old_id] = target
        lookup = {"type": target.type, "bucket": target.bucket}
        if target.s3_url:
            exists = StoreConfig.objects.filter(**lookup, s3cfg__url=target.s3_url).exists()
        else:
            exists = StoreConfig.objects.filter(**lookup, s3cfg=None).exists()
        plan.count("store configs", "identical" if exists else "new")


def _users(plan: Plan, snap: Snapshot, group: str) -> None:
    User = get_user_model()
    names = [u.username for u in snap.users.values()]
    ours = {user.username: user for user in User.objects.filter(username__in=names)}
    hashers = {path.rsplit(".", 1)[-1] for path in settings.PASSWORD_HASHERS}
    conflicted: set[int] = set()
    for old in snap.users.values():
        plan.usernames[old.id] = old.username
        if old.password and not old.password.startswith(UNUSABLE_PASSWORD_PREFIX):
            try:
                hasher = identify_hasher(old.password)
            except ValueError:
                hasher = None
            if hasher is None or type(hasher).__name__ not in hashers:
                plan.warnings.append(
                    f"user {old.username!r}: the password hash is of a kind this server does not accept "
                    "(PASSWORD_HASHERS); they cannot log in until their password is set again"
                )
        here = ours.get(old.username)
        if here is None:
            plan.users.append(old)
            plan.count("users", "new")
            continue
        fields = ("password", "is_superuser", "is_staff", "is_active")
        differing = [name for name in fields if getattr(here, name) != getattr(old, name)]
        if differing:
            plan.conflicts.append(
                f"user {old.username!r} exists here with other {', '.join(differing)}: ours kept, "
                "their tokens are not imported"
            )
            plan.count("users", "differs")
            conflicted.add(old.id)
        else:
            plan.count("users", "identical")
    for key, user_id, created in snap.tokens:
        if user_id not in plan.usernames or user_id in conflicted:
            plan.problems.append(f"token {key[:8]}… not imported: its user is missing or differs here")
            plan.count("tokens", "skipped")
            continue
        row = ApiToken.objects.select_related("user").filter(key_hash=hash_token(key)).first()
        if row is None:
            plan.tokens.append((key, plan.usernames[user_id], created))
            plan.count("tokens", "new")
        elif row.user.username == plan.usernames[user_id]:
            plan.count("tokens", "identical")
        else:
            plan.conflicts.append(f"token {key[:8]}… belongs to another user here: not imported")
            plan.count("tokens", "differs")
    if any(not u.is_superuser for u in plan.users):
        plan.warnings.append(f"users who are not superusers go into the group {group!r}")


def media_problem(old: OldMedia, types: dict[str, str]) -> str | None:
    """Why this media cannot come over as it is, or None. Normalises the pid and identifier values
    (Unicode NFC, as every new one), identifiers and metadata."""
    if old.pid_type not in types:
        return f"pid_type {old.pid_type!r} is not an identifier type here"
    try:
        old.pid = check_pid(old.pid)
        validate_store_key(old.store_key)
    except RuleViolation as exc:
        return exc.message
    if old.metadata is None:
        old.metadata = {}
    if old.identifiers is None:
        old.identifiers = {}
    if not isinstance(old.metadata, dict):
        return "metadata is not a JSON object"
    if not isinstance(old.identifiers, dict) or not all(isinstance(v, str) for v in old.identifiers.values()):
        return "identifiers is not an object of strings"
    try:
        old.identifiers = {k: clean_text(v, f"identifier {k}") for k, v in old.identifiers.items()}
    except RuleViolation as exc:
        return exc.message
    old.identifiers = {k: v for k, v in old.identifiers.items() if not (k == old.pid_type and v == old.pid)}
    unknown = sorted(set(old.identifiers) - set(types))
    if unknown:
        return f"identifier keys {unknown} are not identifier types here"
    try:
        old.tags = clean_tags(old.tags)
    except RuleViolation as exc:  # an empty or over-long tag, or more than MEDIASTORE_MAX_TAGS
        return exc.message
    return None


def _media(plan: Plan, snap: Snapshot, types: dict[str, str]) -> None:
    existing = Media.objects.select_related("store_config__s3cfg").filter(
        pid__in=lookup_set(m.pid for m in snap.media)
    )
    ours = {nfc(m.pid): m for m in existing}
    taken: set[tuple[Target, str]] = set()
    pids: set[str] = set()
    for old in snap.media:
        target = plan.stores.get(old.store_config_id)
        if target is None:
            plan.count("media", "skipped")
            continue
        problem = media_problem(old, types)
        if problem is None and (target, old.store_key) in taken:
            problem = f"store key {old.store_key!r} is used twice in {target.type} {target.bucket!r}"
        if problem is None and old.pid in pids:
            problem = "another media has the same pid once both are in Unicode NFC"
        if problem is not None:
            plan.problems.append(f"media {old.pid!r} not imported: {problem}")
            plan.count("media", "skipped")
            continue
        taken.add((target, old.store_key))
        pids.add(old.pid)
        here = ours.get(old.pid)
        if here is not None:
            differing = media_differences(here, old, target)
            if here.store_status == StoreStatus.PENDING and old.store_status == StoreStatus.READY:
                plan.warnings.append(
                    f"media {old.pid!r} is PENDING here, READY on the earlier server: once its bytes are in "
                    f"place, POST /api/upload/{old.pid}/complete makes it READY"
                )
            if differing:
                fields = ", ".join(differing)
                plan.conflicts.append(f"media {old.pid!r} exists here with other {fields}: ours kept")
                plan.count("media", "differs")
            else:
                plan.count("media", "identical")
            continue
        for name, value in [(old.pid_type, old.pid), *old.identifiers.items()]:
            if not matches(types[name], value):
                plan.warnings.append(
                    f"media {old.pid!r}: {value!r} does not match the pattern of {name!r} (the earlier "
                    "server never checked); imported as it is"
                )
        plan.media.append(old)
        plan.count("media", "new")
        plan.count("history rows", "new", len(snap.history.get(old.id, [])) + 1)
        if target.type == StoreType.DICT and old.store_status == StoreStatus.READY:
            plan.warnings.append(f"media {old.pid!r} comes over PENDING: its DictStore bytes were in RAM")


def media_differences(here: Media, old: OldMedia, target: Target) -> list[str]:
    """The fields of the media here that differ from the earlier server's. The status is not one:
    here it says whether the bytes were found (and may change through uploads since)."""
    store = here.store_config
    expected = {
        "pid_type": (here.pid_type_id, old.pid_type),
        "store_config": (
            (store.type, store.bucket, store.s3_url),
            (target.type, target.bucket, target.s3_url),
        ),
        "store_key": (here.store_key, old.store_key),
        "identifiers": (here.identifiers, old.identifiers),
        "metadata": (here.metadata, old.metadata),
        "tags": (here.tag_list, old.tags),
    }
    return [name for name, (ours, theirs) in expected.items() if ours != theirs]


def _deleted(plan: Plan, snap: Snapshot) -> None:
    """Media deleted on the earlier server: their history comes over (GET .../history shows it)."""
    live = {m.id for m in snap.media}
    historical = Media.history.model.objects
    for old_id, rows in snap.history.items():
        if old_id in live:
            continue
        last = rows[-1]
        if historical.filter(pid=last.pid, history_type=last.type, history_date=last.date).exists():
            plan.count("deleted media histories", "identical")
            continue
        plan.deleted.append(old_id)
        plan.count("deleted media histories", "new")
        plan.count("history rows", "new", len(rows))
