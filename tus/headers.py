"""Parsing the tus 1.0 request headers (and the one header mediastore adds meaning to,
``Upload-Metadata``) into values or ``TusError``s with the protocol's status codes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from media.schemas import MediaIn
from mediastore.errors import MediastoreError, RuleViolation
from mediastore.parser import NUL_MESSAGE, has_bad_text, loads
from stores.schemas import StoreConfigIn
from stores.services import store_get

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,creation-defer-length,checksum,termination,expiration"
OFFSET_TYPE = "application/offset+octet-stream"
# Upload-Checksum algorithms (Tus-Checksum-Algorithm), by their tus names.
CHECKSUMS: dict[str, Callable[[], Any]] = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "md5": hashlib.md5}

_DIGITS = re.compile(r"[0-9]{1,19}")
_KEY = re.compile(r"[!#-+\--~]+")  # printable ASCII without space and comma

# Upload-Metadata keys that tus clients send on their own (tus-js-client, Uppy: the file's name and
# type): accepted and not stored; `filetype` is the content type when `content_type` is absent.
CLIENT_KEYS = frozenset({"filename", "filetype", "name", "type", "relativePath"})
MEDIA_KEYS = (
    "pid",
    "pid_type",
    "store",
    "identifiers",
    "metadata",
    "tags",
    "content_type",
    "replace",
    "etag",
    "expires_at",
)


class TusError(MediastoreError):
    """A request the protocol refuses: ``{"detail": "..."}`` with the protocol's status code."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status
        self.headers = headers or {}

    def body(self) -> dict:
        return {"detail": self.message}


def length_header(value: str | None, name: str) -> int | None:
    """A non-negative integer header (``Upload-Length``, ``Upload-Offset``); None when absent."""
    if value is None:
        return None
    if not _DIGITS.fullmatch(value.strip()):
        raise TusError(400, f"{name} must be a non-negative whole number of bytes, not {value[:40]!r}")
    return int(value)


def checksum_header(value: str | None) -> tuple[str, bytes] | None:
    """``Upload-Checksum: <algorithm> <base64 digest>`` as (algorithm, digest); 400 when the
    algorithm is not one of CHECKSUMS or the digest is not base64."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise TusError(
            400,
            f"Upload-Checksum algorithm {algorithm[:20]!r} is not supported; use one of "
            f"{', '.join(CHECKSUMS)} (Tus-Checksum-Algorithm)",
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise TusError(400, "Upload-Checksum: the digest must be base64") from None
    return algorithm, digest


def parse_metadata(header: str) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value may be absent)
    into a dict of strings. 400 for a malformed header, a repeated key or a value that is not
    base64 of UTF-8."""
    entries: dict[str, str] = {}
    for pair in header.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        if not _KEY.fullmatch(key):
            raise TusError(400, f"Upload-Metadata: {key[:40]!r} is not a valid key")
        if key in entries:
            raise TusError(400, f"Upload-Metadata: the key {key!r} is given twice")
        try:
            entries[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            problem = f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8 text"
            raise TusError(400, problem) from None
    return entries


def _json(key: str, text: str) -> Any:
    """An entry's JSON, parsed as strictly as the JSON API parses bodies (``mediastore.parser``):
    a repeated key, nesting past the depth limit or a NUL in a string is 422 naming the entry."""
    try:
        value = loads(text.encode())
    except RuleViolation as exc:
        raise RuleViolation(f"Upload-Metadata '{key}': {exc.message}") from None
    if has_bad_text(value):
        raise RuleViolation(f"Upload-Metadata '{key}': {NUL_MESSAGE}")
    return value


def _json_entry(entries: dict[str, str], key: str, kind: type, default: Any) -> Any:
    if key not in entries:
        return default
    try:
        value = _json(key, entries[key])
    except ValueError:
        raise RuleViolation(f"Upload-Metadata '{key}' must be JSON ({kind.__name__})") from None
    if not isinstance(value, kind):
        raise RuleViolation(f"Upload-Metadata '{key}' must be a JSON {kind.__name__}")
    return value


def store_spec(value: str) -> StoreConfigIn:
    """The ``store`` entry: a store configuration's pk, or its JSON description."""
    if _DIGITS.fullmatch(value.strip()):
        store = store_get(int(value))
        s3_url = store.s3cfg.url if store.s3cfg else ""
        return StoreConfigIn(type=store.type, bucket=store.bucket, s3_url=s3_url)
    try:
        spec = _json("store", value)
    except ValueError:
        spec = None
    if not isinstance(spec, dict):
        raise RuleViolation(
            "Upload-Metadata 'store' must be a store configuration's pk or its JSON description "
            '({"type": ..., "bucket": ..., "s3_url": ...})'
        )
    return StoreConfigIn(**spec)


def truthy(value: str) -> bool:
    word = value.strip().lower()
    if word in ("", "1", "true", "yes"):
        return True
    if word in ("0", "false", "no"):
        return False
    raise RuleViolation(f"Upload-Metadata 'replace' must be true or false, not {value[:20]!r}")


def media_request(entries: dict[str, str]) -> tuple[MediaIn | None, str, bool, str]:
    """What an upload's metadata asks for: (the new media, or None for a replace; the pid; whether
    it replaces the bytes of the existing media ``pid``; the If-Match ETag of a replace).

    Keys other than MEDIA_KEYS and CLIENT_KEYS are refused (422 naming them), so that a misspelt
    key is never silently dropped."""
    unknown = sorted(set(entries) - set(MEDIA_KEYS) - CLIENT_KEYS)
    if unknown:
        raise RuleViolation(
            f"Upload-Metadata has unknown keys {', '.join(unknown)}; known are {', '.join(MEDIA_KEYS)} "
            f"(and {', '.join(sorted(CLIENT_KEYS))}, which are ignored)"
        )
    for key in MEDIA_KEYS:
        if "\x00" in entries.get(key, ""):
            raise RuleViolation(f"Upload-Metadata '{key}': {NUL_MESSAGE}")
    pid = entries.get("pid", "")
    if truthy(entries["replace"]) if "replace" in entries else False:
        extra = sorted({"pid_type", "store", "identifiers", "metadata", "tags", "expires_at"} & set(entries))
        if extra:
            raise RuleViolation(
                f"Upload-Metadata: an upload that replaces bytes takes only pid, etag and content_type, "
                f"not {', '.join(extra)} (change those with PATCH /api/media/{{pid}})"
            )
        if not pid:
            raise RuleViolation(
                "Upload-Metadata: 'replace' needs the 'pid' of the media whose bytes it replaces"
            )
        if "etag" in entries and not entries["etag"].strip():
            raise RuleViolation(
                "Upload-Metadata 'etag' is empty: give the ETag the replaced bytes must still have "
                "(as GET /api/media/{pid}/content answers it), or leave the key out"
            )
        return None, pid, True, entries.get("etag", "")
    if "etag" in entries:
        raise RuleViolation("Upload-Metadata: 'etag' applies only to an upload with 'replace'")
    for key in ("pid_type", "store"):
        if not entries.get(key):
            raise RuleViolation(
                f"Upload-Metadata needs '{key}' (or 'replace' with the pid of an existing media)"
            )
    # expires_at: ISO 8601 as in the API; empty or "null": never (not the store's default_ttl).
    expiry = {}
    if "expires_at" in entries:
        text = entries["expires_at"].strip()
        expiry["expires_at"] = None if text.lower() in ("", "null") else text
    try:
        item = MediaIn(
            **expiry,
            pid=pid or None,
            pid_type=entries["pid_type"],
            store_config=store_spec(entries["store"]),
            identifiers=_json_entry(entries, "identifiers", dict, {}),
            metadata=_json_entry(entries, "metadata", dict, {}),
            tags=_json_entry(entries, "tags", list, []),
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
            for error in exc.errors()
        )
        raise RuleViolation(f"Upload-Metadata does not describe a media: {problems}") from None
    return item, pid, False, ""
