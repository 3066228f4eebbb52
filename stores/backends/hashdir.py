"""HashdirStore: like FilesystemStore, but spread over 65536 sub-directories by key hash.

The object for ``key`` lives at ``<directory>/h[0:2]/h[2:4]/<encoded key>`` with
``h = sha256(key)``, so a million objects never land in one directory. The encoded key is one
filename: ``/`` and ``..`` cannot act as path components.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import quote, unquote

from mediastore.errors import RuleViolation
from stores.backends.filesystem import FilesystemStore
from stores.paths import resolve_key_path, validate_store_key

# Well below NAME_MAX (255 bytes) so the name fits every common filesystem.
MAX_FILENAME = 200
_LONG_HEAD = 120


def encode_filename(key: str, digest: str) -> str:
    """A filename for ``key`` that is unique per key and holds no path syntax.

    ``quote(safe="")`` escapes ``/`` and every byte outside ``A-Za-z0-9_.-~``. A leading ``.``
    becomes ``%2E`` (quote itself never writes that), so no name is ``.``, ``..``, hidden, or
    mistaken for a temporary file. Names too long for the filesystem keep their head and get
    ``%%<digest>``: ``%%`` never occurs in quote's output, so they cannot collide with short ones.
    """
    encoded = quote(key, safe="", errors="surrogatepass")
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    if len(encoded) > MAX_FILENAME:
        encoded = f"{encoded[:_LONG_HEAD]}%%{digest}"
    return encoded


class HashdirStore(FilesystemStore):
    """Objects as files under ``directory/h[0:2]/h[2:4]/`` (created on the first write)."""

    type_name = "HashdirStore"
    kind = "hashdir store"

    def _path(self, key: str) -> Path:
        validate_store_key(key)  # again: _key_of passes decoded names that no caller checked
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        relative = f"{digest[:2]}/{digest[2:4]}/{encode_filename(key, digest)}"
        return resolve_key_path(self.directory, relative)

    def _key_of(self, path: Path) -> str | None:
        """Decode the filename; names shortened with a digest cannot be decoded (None)."""
        if "%%" in path.name:
            return None
        key = unquote(path.name, errors="surrogatepass")
        try:
            return key if self._path(key) == path else None
        except RuleViolation:
            return None
