"""System check of the RAM store (DictStore) without Redis, registered in ``StoresConfig.ready``.

Without ``MEDIASTORE_REDIS_URL`` DictStore objects are files in ``MEDIASTORE_RAM_DIR``, shared by
the workers of one host. That works only when the directory is on a RAM file system (tmpfs; else
"RAM" objects go to disk and outlive reboots) and belongs to the server's user (DictStore refuses a
directory of another user, and every RAM store request would fail with 502).
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import DatabaseError

RAM_FILE_SYSTEMS = {"tmpfs", "ramfs"}


def file_system_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (or its nearest existing parent), from
    /proc/self/mounts: the mount point that is the longest prefix of the path wins."""
    path = path.resolve()
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    best, kind = "", None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def ram_store_in_use(databases) -> bool:
    """Whether any DictStore is configured; asked only when the check was given databases
    (``migrate`` at start-up, ``check --database default``), never before the tables exist."""
    if not databases:
        return False
    from stores.models import StoreConfig, StoreType

    try:
        return StoreConfig.objects.filter(type=StoreType.DICT).exists()
    except DatabaseError:
        return False  # not migrated yet


@register()
def ram_store_without_redis(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    if settings.DEBUG or settings.MEDIASTORE_REDIS_URL or not ram_store_in_use(databases):
        return []
    root = Path(settings.MEDIASTORE_RAM_DIR)
    hint = (
        "Set MEDIASTORE_REDIS_URL, or point MEDIASTORE_RAM_DIR at a directory on a tmpfs that the "
        "server's user owns (the default under /dev/shm is one)."
    )
    if root.exists() and (not root.is_dir() or root.stat().st_uid != os.geteuid()):
        return [
            Warning(
                f"A RAM store (DictStore) is configured without Redis, and its directory {root} "
                "(MEDIASTORE_RAM_DIR) is not a directory of this user: every RAM store request fails.",
                hint=hint,
                id="stores.W001",
            )
        ]
    kind = file_system_type(root)
    if kind is not None and kind not in RAM_FILE_SYSTEMS:
        return [
            Warning(
                f"A RAM store (DictStore) is configured without Redis, and its directory {root} "
                f"(MEDIASTORE_RAM_DIR) is on a {kind} file system, not in RAM: its objects are "
                "written to disk.",
                hint=hint,
                id="stores.W002",
            )
        ]
    return []


@register()
def ram_store_on_several_hosts(app_configs=None, databases=None, **kwargs) -> list[Error]:
    """Without Redis a RAM store's objects live in one host's RAM: with MEDIASTORE_HOSTS above 1 a
    read on another host would not find them (404 for a READY media), so the server refuses to start."""
    if settings.MEDIASTORE_HOSTS == 1 or settings.MEDIASTORE_REDIS_URL or not ram_store_in_use(databases):
        return []
    return [
        Error(
            f"A RAM store (DictStore) is configured without Redis, and MEDIASTORE_HOSTS is "
            f"{settings.MEDIASTORE_HOSTS}: its objects would be in one host's RAM, invisible to the others.",
            hint="Set MEDIASTORE_REDIS_URL (the same on every host), or remove the RAM stores "
            "(docs/scaling.md).",
            id="stores.E001",
        )
    ]
