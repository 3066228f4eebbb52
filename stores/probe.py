"""Probing a store: write a small object under a fresh key of the reserved ``mediastore-health-``
prefix, read it back and delete it. ``manage.py probe_stores`` and the status page record the
outcome (status.health); creating or changing a store configuration through the API refuses a
store that fails it (stores.services).
"""

from __future__ import annotations

import secrets

from mediastore.errors import StorageError
from stores.backends import Backend, ObjectNotFound

# No key the server assigns to a media starts so; the probe deletes what it wrote.
PROBE_KEY_PREFIX = "mediastore-health-"
PROBE_BYTES = b"mediastore health probe\n"


def probe_key() -> str:
    return f"{PROBE_KEY_PREFIX}{secrets.token_hex(8)}"


def probe_backend(backend: Backend, key: str | None = None) -> None:
    """Write, read back and delete a small object in ``backend``. Raises StorageError (or the
    backend's RuleViolation) naming the step that failed and, for S3, the endpoint's error code."""
    key = key or probe_key()
    backend.put(key, PROBE_BYTES)
    try:
        read = backend.get(key)
    except ObjectNotFound:
        raise StorageError(f"the probe object '{key}' was written but not found when read back") from None
    if read != PROBE_BYTES:
        raise StorageError(f"the probe object '{key}' read back differs from what was written")
    backend.delete(key)
