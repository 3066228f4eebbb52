"""Durable names: after a file is renamed (or created) into a directory, the directory itself must
be fsynced, or a power cut can forget the new name even though the file's bytes were synced; a
media marked READY would then point at a file that vanished. The same holds for a directory
created on the way: its own name lives in its parent.

``fsync_directory`` syncs one directory; ``make_directories`` is ``mkdir -p`` that syncs the parent
of every directory it creates. Both raise OSError like the calls they wrap, so each caller turns
failures into its own error (a store's StorageError, the tus staging area's).
"""

from __future__ import annotations

import os
from pathlib import Path

# Where the OS has no O_DIRECTORY the open still works (a directory opened read-only).
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_DIRECTORY", 0)


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make the entries of directory ``path`` (names created, renamed or removed in it) durable."""
    fd = os.open(path, _DIRECTORY_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_directories(path: str | os.PathLike[str], mode: int = 0o777) -> None:
    """Create directory ``path`` and its missing parents (as ``Path.mkdir(parents=True,
    exist_ok=True)``), fsyncing the parent of each one created, so that all of them survive a
    power cut. Nothing is synced when ``path`` already exists (the common case costs one stat)."""
    path = Path(path)
    if path.is_dir():
        return
    missing = []
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=mode)
        except FileExistsError:  # made concurrently by another worker: synced here all the same,
            if not directory.is_dir():  # since this write may commit before that worker syncs
                raise
        fsync_directory(directory.parent)
