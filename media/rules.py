"""Rules a media's fields must follow: pids, tags, identifiers (against the identifier types'
patterns) and store configurations (got or created once per request). Pure checks and lookups;
the writes that apply them are in ``media.services``."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Collection, Iterable
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from identifiers.models import IdentifierType
from identifiers.rules import check_value, clean_text
from mediastore.errors import RuleViolation
from mediastore.limits import MAX_PID_LENGTH, MAX_TAG_LENGTH
from stores.models import StoreConfig
from stores.services import store_forget, store_get, store_get_or_create_telling

log = logging.getLogger(__name__)

# pids that would be routed to another endpoint than /api/media/{pid}
RESERVED_PIDS = {"create", "read", "delete", "update", "dump", "search", "urls"}
RESERVED_PID_PREFIXES = ("update/", "url/")
RESERVED_PID_SUFFIXES = ("/history", "/content", "/verify", "/complete", "/revert", "/replicas", "/preview")
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")
# The column of Media.content_type (and TusUpload.content_type).
MAX_CONTENT_TYPE_LENGTH = 255


def clean_content_type(value: str, field: str = "content_type") -> str:
    """A declared content type as it may be stored: RuleViolation (422, naming ``field``) when it
    is longer than its column or holds a control character (CR and LF would make every later
    download's Content-Type header fail; NUL no database stores). Every path that stores a
    content type (POST /api/upload, PUT .../content, tus uploads) checks it here."""
    if len(value) > MAX_CONTENT_TYPE_LENGTH:
        raise RuleViolation(f"{field} is longer than {MAX_CONTENT_TYPE_LENGTH} characters")
    if CONTROL_CHARACTER.search(value):
        raise RuleViolation(f"{field} {value[:40]!r}: control characters (CR, LF, NUL, ...) are not allowed")
    return value


def served_content_type(stored: str, default: str) -> str:
    """The Content-Type header for a stored content type: ``default`` for one that no header can
    carry (stored before ``clean_content_type`` refused it)."""
    if not stored or len(stored) > MAX_CONTENT_TYPE_LENGTH or CONTROL_CHARACTER.search(stored):
        return default
    return stored


def check_pid(pid: str) -> str:
    """The pid to store (NFC, see ``clean_text``); RuleViolation when it breaks a rule."""
    pid = clean_text(pid, "bad pid")
    if not pid or pid != pid.strip():
        raise RuleViolation(f"bad pid {pid!r}: must be non-empty with no leading or trailing spaces")
    if len(pid) > MAX_PID_LENGTH:
        raise RuleViolation(f"bad pid: longer than {MAX_PID_LENGTH} characters")
    if CONTROL_CHARACTER.search(pid):
        raise RuleViolation(f"bad pid {pid!r}: control characters are not allowed")
    if pid in RESERVED_PIDS or pid.startswith(RESERVED_PID_PREFIXES) or pid.endswith(RESERVED_PID_SUFFIXES):
        raise RuleViolation(f"bad pid {pid!r}: reserved, it would collide with another /api/media/ endpoint")
    return pid


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Sorted distinct tag names; RuleViolation for empty or over-long ones, or more than
    ``MEDIASTORE_MAX_TAGS`` of them (``check_tag_count``)."""
    names = set()
    for tag in tags:
        name = tag.strip()
        if not name:
            raise RuleViolation("tags must not be empty")
        if len(name) > MAX_TAG_LENGTH:
            raise RuleViolation(f"tag {name[:20]!r}... is longer than {MAX_TAG_LENGTH} characters")
        names.add(name)
    check_tag_count(names)
    return sorted(names)


def check_tag_count(names: Collection[str]) -> None:
    """RuleViolation (422) when a media would carry more than ``MEDIASTORE_MAX_TAGS`` tags: every
    write of a media's tags checks the media's whole list afterwards, so the cost of writing and
    searching one media's tags stays bounded."""
    limit = settings.MEDIASTORE_MAX_TAGS
    if len(names) > limit:
        raise RuleViolation(
            f"a media may carry at most {limit} tags (MEDIASTORE_MAX_TAGS); "
            f"this would leave it with {len(names)}"
        )


class IdentifierRules:
    """The identifier types, loaded once for a whole request (one query)."""

    def __init__(self) -> None:
        self.patterns: dict[str, str] = dict(IdentifierType.objects.values_list("name", "pattern"))

    def check_pid(self, pid: str, pid_type: str) -> str:
        """The pid to store (NFC), checked against ``pid_type``'s pattern."""
        if pid_type not in self.patterns:
            raise RuleViolation(f"bad pid_type: {pid_type}")
        pid = check_pid(pid)
        check_value(pid_type, self.patterns[pid_type], pid, "pid")
        return pid

    def identifiers(self, pid: str, pid_type: str, identifiers: dict[str, str]) -> dict[str, str]:
        """Checked identifiers to store (values in NFC, see ``clean_text``): a repeated pid_type key
        must equal the pid (``pid`` as stored) and is dropped."""
        result = {}
        for key, value in identifiers.items():
            if key not in self.patterns:
                raise RuleViolation(f"bad identifier_type: {key}")
            value = clean_text(value, f"identifier {key}")
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
        self.created: list[StoreConfig] = []  # made by this resolver: forget() takes them back

    def resolve(self, spec: Any) -> StoreConfig:
        key = spec if isinstance(spec, int) else (spec.type, spec.bucket, spec.s3_url)
        if key not in self._cache:
            if isinstance(spec, int):
                self._cache[key] = store_get(spec)
            else:
                store, created = store_get_or_create_telling(
                    type=spec.type, bucket=spec.bucket, s3_url=spec.s3_url, user=self.user
                )
                if created:
                    self.created.append(store)
                self._cache[key] = store
        return self._cache[key]

    def forget(self) -> None:
        """Delete the stores this resolver created that no media uses: the operation that needed
        them failed, and it leaves nothing behind."""
        created, self.created = self.created, []
        for store in created:
            try:
                store_forget(store, user=self.user)
            except DatabaseError as exc:  # the failure being handled is the one to report
                log.warning("store configuration %s made for a failed operation stays: %s", store.pk, exc)


def new_store_key() -> str:
    """A new store key: the hex of a random (version 4) UUID, as ``uuid.uuid4().hex`` spells it,
    made without building the ``UUID`` object (a third of the time)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    return raw.hex()
