"""A generated tree of files to ingest, shared by the ingest tests and bench/ingest.py."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

MB = 1 << 20


def make_tree(
    root: Path,
    *,
    small: int = 2000,
    big: int = 3,
    big_mb: int = 50,
    fanout: int = 10,
    small_size: int | None = None,
) -> dict[str, str]:
    """Write ``small`` small files (tens to a few thousand bytes, or exactly ``small_size`` bytes
    each when given; nested two folders deep, ``fanout`` per folder) and ``big`` files of
    ``big_mb`` MiB under ``root``. Returns {relpath: "sha256:<hex>"} of every file.

    Cheap to make: one MiB of random bytes, repeated with a per-file prefix, so each big file
    differs from the others and costs one write; small files are slices of one random block.
    """
    sums: dict[str, str] = {}
    block = os.urandom(MB)
    for n in range(small):
        rel = f"d{n // (fanout * fanout):03d}/s{n // fanout % fanout:02d}/f{n:05d}.txt"
        start = (n * 7919) % (MB - 5000)
        data = f"file {n}\n".encode() + block[start : start + 20 + (n * 37) % 3000]
        if small_size is not None:
            data = (data + block[: max(small_size - len(data), 0)])[:small_size]
        sums[rel] = _write(root / rel, [data])
    for n in range(big):
        rel = f"big/large-{n}.bin"
        head = f"large file {n}\n".encode()
        sums[rel] = _write(root / rel, [head, *([block] * big_mb)])
    return sums


def _write(path: Path, chunks: list[bytes]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"
