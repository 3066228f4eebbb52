"""Writes of S3 configurations and store configurations."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from mediastore.errors import Conflict, NotFound, RuleViolation
from stores.endpoints import has_userinfo
from stores.models import S3Config, StoreConfig, StoreType
from stores.paths import normalize_store_path

if TYPE_CHECKING:
    from django.contrib.auth.models import User

LOCAL_TYPES = {StoreType.FILESYSTEM, StoreType.HASHDIR, StoreType.ZIP, StoreType.SQLITE}
S3_BUCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")


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
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RuleViolation(f"S3 url must be an http:// or https:// URL, got {url!r}")
    return url


@transaction.atomic
def s3cfg_create(*, url: str, access_key: str, secret_key: str, user: User | None) -> S3Config:
    """Create an S3 configuration; identical again is a no-op, the same url with other keys a Conflict.

    ``user`` is recorded as the author in the audit history (as in every write below).
    """
    check_s3_url(url)
    existing = S3Config.objects.select_for_update().filter(url=url).first()
    if existing is not None:
        if (existing.access_key, existing.secret_key) != (access_key, secret_key):
            raise Conflict(
                f"an S3Config for url {url!r} exists with other credentials; use PUT /api/s3cfg/{existing.pk}"
            )
        return existing
    cfg = S3Config(url=url, access_key=access_key, secret_key=secret_key)
    cfg._history_user = user
    cfg.save()
    return cfg


@transaction.atomic
def s3cfg_update(*, pk: int, url: str, access_key: str, secret_key: str, user: User | None) -> None:
    check_s3_url(url)
    cfg = s3cfg_get(pk)
    if S3Config.objects.filter(url=url).exclude(pk=pk).exists():
        raise Conflict(f"another S3Config already has url {url!r}")
    cfg.url, cfg.access_key, cfg.secret_key = url, access_key, secret_key
    cfg._history_user = user
    cfg.save()


@transaction.atomic
def s3cfg_delete(*, pk: int, user: User | None) -> None:
    cfg = s3cfg_get(pk)
    if cfg.stores.exists():
        raise Conflict(f"S3Config {pk} is used by store configurations; delete those first")
    cfg._history_user = user
    cfg.delete()


def normalize_store(store_type: str, bucket: str, s3_url: str) -> tuple[str, str, S3Config | None]:
    """Validate a store description; returns (type, canonical bucket, S3 config or None)."""
    if store_type not in StoreType.values:
        raise RuleViolation(f'type "{store_type}" not supported.')
    if store_type == StoreType.BUCKET:
        if not s3_url:
            raise RuleViolation("a BucketStore needs s3_url naming an S3Config")
        if has_userinfo(s3_url):
            raise RuleViolation("s3_url must not contain user info (user:password@)")
        s3cfg = S3Config.objects.filter(url=s3_url).first()
        if s3cfg is None:
            raise RuleViolation(
                f'No S3Config with url="{s3_url}" found. '
                "Please create S3Config credentials for this url first"
            )
        bucket = bucket.strip("/")
        name = bucket.split("/", 1)[0]
        if not S3_BUCKET_RE.fullmatch(name):
            raise RuleViolation(f"bad S3 bucket name {name!r}")
        return store_type, bucket, s3cfg
    if s3_url:
        raise RuleViolation(f"a {store_type} does not take an s3_url (only BucketStore does)")
    if store_type in LOCAL_TYPES:
        return store_type, normalize_store_path(bucket), None
    if "\x00" in bucket:
        raise RuleViolation("bucket must not contain NUL characters")
    return store_type, bucket.lstrip("/"), None


def store_get_or_create(*, type: str, bucket: str, s3_url: str = "", user: User | None) -> StoreConfig:
    """The store configuration for (type, bucket, s3 config), created (by ``user``) when new."""
    store_type, bucket, s3cfg = normalize_store(type, bucket, s3_url)
    lookup = {"type": store_type, "bucket": bucket, "s3cfg": s3cfg}
    store = StoreConfig.objects.select_related("s3cfg").filter(**lookup).first()
    if store is not None:
        return store
    try:
        with transaction.atomic():
            store = StoreConfig(**lookup)
            store._history_user = user
            store.save()
            return store
    except IntegrityError:  # created concurrently by another request
        return StoreConfig.objects.select_related("s3cfg").get(**lookup)


@transaction.atomic
def store_delete(*, pk: int, user: User | None) -> None:
    store = store_get(pk)
    if store.media.exists():
        raise Conflict(f"StoreConfig {pk} is used by media; delete or move those first")
    store._history_user = user
    store.delete()
