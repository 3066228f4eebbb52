"""The bytes of imported media: where they are, copying them (``--copy-bytes``), checking them.

BucketStore objects stay where they are. A local store's files are expected below our storage
root at the bucket ``--map-path`` gave; with ``--copy-bytes`` a missing one is copied there from
the old absolute path (which must then be readable on this host). The earlier server only ever wrote
bytes through FilesystemStore (``<root>/<key>``), SqliteStore (table ``objects(key, data)``, the
layout ours reads as it is) and BucketStore; its DictStore lived in RAM and is gone.
"""

from __future__ import annotations

import io
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from content.services import hash_object
from importer.plan import Target
from mediastore.errors import MediastoreError
from stores.backends import Backend, ObjectNotFound
from stores.models import StoreType


@dataclass
class Checked:
    status: str  # what the media is imported as: READY only when its bytes were found
    size: int | None = None
    checksum: str = ""
    copied: bool = False
    problem: str = ""


def open_old(target: Target, key: str) -> tuple[BinaryIO, int] | None:
    """The old object's bytes at the earlier server's path and their size, or None when not there."""
    if target.type == StoreType.FILESYSTEM:
        path = Path(target.old_path) / key
        return (path.open("rb"), path.stat().st_size) if path.is_file() else None
    if target.type == StoreType.SQLITE and Path(target.old_path).is_file():
        conn = sqlite3.connect(f"file:{quote(target.old_path)}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT data FROM objects WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None
        finally:
            conn.close()
        if row is None or row[0] is None:
            return None
        return io.BytesIO(row[0]), len(row[0])
    return None


def check_bytes(target: Target, backend: Backend, key: str, status: str, *, copy: bool) -> Checked:
    """Size and checksum of a READY media's bytes (copied first when asked and missing here).

    DictStore media and media whose bytes are missing come back PENDING, the latter with a problem.
    """
    if status != "READY":
        return Checked(status="PENDING")
    if target.type == StoreType.DICT:
        return Checked(status="PENDING")
    copied = False
    try:
        if copy and target.local and not backend.exists(key):
            found = open_old(target, key)
            if found is not None:
                stream, length = found
                with stream:
                    backend.put_stream(key, stream, length)
                copied = True
        size, checksum = hash_object(backend, key)
    except ObjectNotFound:
        where = f"{target.type} {target.bucket!r}"
        return Checked(status="PENDING", problem=f"marked READY but its object {key!r} is not in {where}")
    except MediastoreError as exc:
        problem = f"marked READY but its object could not be read: {exc.message}"
        return Checked(status="PENDING", problem=problem)
    return Checked(status="READY", size=size, checksum=checksum, copied=copied)
