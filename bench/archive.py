#!/usr/bin/env python
"""Benchmark: ``/api/download/archive`` of many media, and the server's memory meanwhile (issue 28).

Stores ``--media`` media (2,000 by default) of ``--mib`` MiB in all (600 by default) spread over a
FilesystemStore, a BucketStore on a moto S3 server (in its own process, so its memory is not
counted) and a SqliteStore, all tagged ``bench``; then downloads them as zip (POST with the search
body) and as tar (GET with query parameters) through gunicorn with one worker, and prints for each
the time to the first byte, the seconds and MiB/s of the whole download, and the growth of the
worker's resident memory (VmRSS polled every 20 ms) over its RSS before the request, with PASS/FAIL
against the target of issue 28: less than 64 MiB whatever the archive's size. Each archive is
written to the work directory and checked: Python's zipfile/tarfile open it and every member's
SHA-256 equals the manifest and the bytes uploaded.

Runs in a throw-away directory, on SQLite, or on a throw-away PostgreSQL database when
``POSTGRES_DB`` is set (tests.support.servers.Server). From the repository root::

    python bench/archive.py                        # 2,000 media, 600 MiB
    python bench/archive.py --media 300 --mib 30   # a quick run

Exit status: 0 when it ran (1 with ``--strict`` when a target failed), 2 when it could not run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as bench/archive.py: tests.support

from tests.support.s3 import MotoProcess, isolated_environment  # noqa: E402
from tests.support.servers import Server  # noqa: E402

TARGET_MIB = 64
MiB = 1024 * 1024


def worker_pid(master: int) -> int:
    """The one gunicorn worker: the child process of the master."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                return int(entry.name)
    raise RuntimeError("no gunicorn worker found")


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Peak(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, rss(pid), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, rss(self.pid))


def download(server: Server, method: str, url: str, target: Path, **kwargs) -> tuple[float, float]:
    """Seconds to the first byte and in all."""
    started = time.perf_counter()
    first = None
    with server.session.request(method, url, stream=True, timeout=3600, **kwargs) as response:
        assert response.status_code == 200, response.text
        with target.open("wb") as out:
            for piece in response.iter_content(MiB):
                if first is None:
                    first = time.perf_counter() - started
                out.write(piece)
    return first or 0.0, time.perf_counter() - started


def check(found: dict[str, str], manifest_text: str, digests: dict[str, str], flat: bool) -> None:
    manifest = {name: digest for digest, name in (line.split("  ", 1) for line in manifest_text.splitlines())}
    for pid, digest in digests.items():
        name = "data/" + (pid.replace("/", "%2F") if flat else pid)
        assert found[name] == digest == manifest[name], pid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", type=int, default=2000)
    parser.add_argument("--mib", type=int, default=600)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target failed")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mediastore-bench-archive-"))
    moto = MotoProcess(workdir, isolated_environment(dict(os.environ)))
    server = None
    try:
        s3 = moto.start()
        bucket = "bench-archive"
        s3.client().create_bucket(Bucket=bucket)
        server = Server("mediastore-bench-archive-", 1, MEDIASTORE_STORAGE_ROOT=str(workdir / "root"))
        server.add_s3(s3)
        stores = [
            {"type": "FilesystemStore", "bucket": "products"},
            {"type": "BucketStore", "bucket": bucket, "s3_url": s3.url},
            {"type": "SqliteStore", "bucket": "products.sqlite"},
        ]
        rng = random.Random("bench-archive")
        average = args.mib * MiB // args.media
        digests: dict[str, str] = {}
        print(f"storing {args.media} media, {args.mib} MiB ...", flush=True)
        for i in range(args.media):
            pid = f"bench/{stores[i % 3]['type']}/m{i:05d}"
            data = rng.randbytes(rng.randint(average // 2, average * 3 // 2))
            server.create(pid, stores[i % 3], tags=["bench"])
            answer = server.session.put(f"{server.base}/api/media/{pid}/content", data=data, timeout=120)
            assert answer.status_code == 200, answer.text
            digests[pid] = hashlib.sha256(data).hexdigest()
        worker = worker_pid(server.app.pid)
        failed = False
        runs = [
            ("zip", "POST", "/api/download/archive", {"json": {"tags": ["bench"]}}),
            ("tar", "GET", "/api/download/archive", {"params": {"tags": "bench", "format": "tar"}}),
        ]
        for name, method, path, kwargs in runs:
            target = workdir / f"all.{name}"
            base = rss(worker)
            peak = Peak(worker)
            peak.start()
            first, seconds = download(server, method, server.base + path, target, **kwargs)
            peak.done.set()
            peak.join()
            size = target.stat().st_size
            growth = (peak.peak - base) / MiB
            verdict = "PASS" if growth < TARGET_MIB else "FAIL"
            failed |= verdict == "FAIL"
            print(
                f"{name}: {size / MiB:.0f} MiB, first byte {first:.2f} s, {seconds:.1f} s "
                f"({size / MiB / seconds:.0f} MiB/s), worker RSS +{growth:.1f} MiB "
                f"(target < {TARGET_MIB}) {verdict}",
                flush=True,
            )
            if name == "zip":
                with zipfile.ZipFile(target) as archive:
                    found = {n: hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist()}
                    manifest = archive.read("manifest-sha256.txt").decode()
            else:
                with tarfile.open(target, "r:") as archive:
                    found, manifest = {}, ""
                    for info in archive.getmembers():
                        body = archive.extractfile(info).read()
                        found[info.name] = hashlib.sha256(body).hexdigest()
                        if info.name == "manifest-sha256.txt":
                            manifest = body.decode()
            check(found, manifest, digests, flat=False)
            print(f"{name}: every member's SHA-256 equals the manifest and the upload", flush=True)
            target.unlink()
        return 1 if failed and args.strict else 0
    finally:
        if server is not None:
            server.close()
        moto.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
