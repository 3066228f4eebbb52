"""Safe resolution of store paths and keys inside the storage root.

Local stores (directories, zip and SQLite files) live under ``settings.MEDIASTORE_STORAGE_ROOT``.
A client names them with a relative path (a leading ``/`` is ignored); nothing it writes may
resolve outside the root, through ``..`` or through a symlink.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from django.conf import settings

from mediastore.errors import RuleViolation
from mediastore.limits import MAX_KEY_LENGTH

# File systems refuse a path part (a file or directory name) over 255 bytes (ENAMETOOLONG, a 500
# before). A store's own name leaves room for the files it keeps beside it (SQLite's "-journal").
MAX_NAME_BYTES = 255
MAX_BUCKET_NAME_BYTES = MAX_NAME_BYTES - len("-journal")


class NameTooLong(RuleViolation):
    """A path part longer than a file name may be: nothing can be stored under it."""


def _check_name_lengths(parts: list[str], what: str, limit: int) -> None:
    for part in parts:
        if len(part.encode("utf-8", "surrogatepass")) > limit:
            raise NameTooLong(
                f"{what} has a path part of more than {limit} bytes (UTF-8), longer than a file name "
                f"may be: {part[:40]!r}..."
            )


def storage_root() -> Path:
    """The configured storage root, created on first use, with symlinks resolved."""
    root = Path(settings.MEDIASTORE_STORAGE_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def _clean_relative(value: str, what: str) -> PurePosixPath:
    if "\x00" in value:
        raise RuleViolation(f"{what} must not contain NUL characters")
    if "\\" in value:
        raise RuleViolation(f"{what} must use '/' as separator, not '\\'")
    stripped = value.lstrip("/")
    parts = [p for p in stripped.split("/") if p not in ("", ".")]
    if not parts:
        raise RuleViolation(f"{what} must name a path below the storage root, got {value!r}")
    if ".." in parts:
        raise RuleViolation(f"{what} must not contain '..': {value!r}")
    _check_name_lengths(parts, what, MAX_BUCKET_NAME_BYTES)
    return PurePosixPath(*parts)


def normalize_store_path(bucket: str) -> str:
    """The canonical form of a local store's ``bucket``: relative, no ``.``/empty parts.

    Raises RuleViolation for ``..``, NUL, backslashes, an empty path, or a path that resolves
    (following symlinks that already exist) outside the storage root.
    """
    relative = _clean_relative(bucket, "bucket")
    resolve_store_path(str(relative))
    return str(relative)


def resolve_store_path(bucket: str) -> Path:
    """Absolute path of a local store inside the storage root, refusing any escape."""
    root = storage_root()
    relative = _clean_relative(bucket, "bucket")
    target = Path(os.path.realpath(root / relative))
    if target != root and root not in target.parents:
        raise RuleViolation(f"bucket {bucket!r} resolves outside the storage root")
    return target


def validate_store_key(key: str) -> str:
    """Check a store key a client sets: a relative ``/``-separated path of non-empty parts, none of
    them ``.`` or ``..``, no NUL or backslash, valid Unicode text, at most MAX_KEY_LENGTH long.

    Returns the key unchanged: keys are stored as given, so that a client can point a media at
    an object that already exists under exactly that name.
    """
    if not key or not key.strip():
        raise RuleViolation("store_key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise RuleViolation(f"store_key is longer than {MAX_KEY_LENGTH} characters")
    if "\x00" in key:
        raise RuleViolation("store_key must not contain NUL characters")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise RuleViolation("store_key must be valid Unicode text (no lone surrogates)") from None
    if key.startswith("/") or "\\" in key:
        raise RuleViolation(f"store_key must be a relative path with '/' separators: {key!r}")
    parts = key.split("/")
    if ".." in parts:
        raise RuleViolation(f"store_key must not contain '..': {key!r}")
    if any(part in ("", ".") for part in parts):
        raise RuleViolation(f"store_key must not have empty or '.' parts (or end with '/'): {key!r}")
    return key


def resolve_key_path(directory: Path, key: str) -> Path:
    """Absolute path of ``key`` below a store ``directory``, refusing any escape (symlinks too)
    and parts longer than a file name may be."""
    validate_store_key(key)
    parts = key.split("/")
    _check_name_lengths(parts, "store_key", MAX_NAME_BYTES)
    base = os.path.realpath(directory)
    target = _real_below(base, parts)
    if target == base or not target.startswith(os.path.join(base, "")):
        raise RuleViolation(f"store_key {key!r} resolves outside its store")
    return Path(target)


def _real_below(base: str, parts: list[str]) -> str:
    """``os.path.realpath`` of the path of a valid key's ``parts`` (none empty, ``.`` or ``..``)
    below ``base``, a path ``realpath`` gave: only the key's own parts are looked at (``realpath``
    would look at each part of ``base`` again, the most of a store write's path work), and when one
    of them is a symlink, the whole path is resolved by ``realpath``."""
    path = base
    for part in parts:
        path = os.path.join(path, part)
        try:
            if not stat.S_ISLNK(os.lstat(path).st_mode):
                continue
        except FileNotFoundError:  # nothing below a missing part can be a symlink either
            break
        except OSError:  # as realpath: a part it cannot look at is taken as it is
            continue
        return os.path.realpath(os.path.join(base, *parts))
    return os.path.join(base, *parts)


def places_overlap(ours: tuple[Path, ...], theirs: tuple[Path, ...]) -> bool:
    """Whether two stores' places on disk (``Backend.local_paths``) share anything: a path in
    both, or a path of one inside a path of the other. Paths are absolute and resolved."""
    return any(a == b or a in b.parents or b in a.parents for a in ours for b in theirs)
