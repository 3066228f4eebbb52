"""Resumable uploads (tus) of a large file: throughput and the server's memory (issue 25; a script).

    python bench/tus.py                    # 200 MiB in 5 MiB chunks, FilesystemStore and S3 (moto)
    python bench/tus.py --size-mib 40      # smaller
    python bench/tus.py --chunk-mib 16     # other PATCH sizes

A real server (``bin/start``, gunicorn with 4 workers, on SQLite or, with POSTGRES_HOST etc. and
POSTGRES_DB set, a throw-away PostgreSQL database) and tuspy upload a file of random bytes; the
upload is stopped after half and resumed by a new client from the URL it stored, as in
tests/deploy/test_tus_live.py. Printed per store: seconds, MiB/s, and the largest growth of any
worker's peak RSS (VmHWM, reset before through ``/proc/<pid>/clear_refs``) over its RSS before,
against the issue's bound of 64 MiB (``PASS``/``FAIL``). Bytes and SHA-256 are checked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tusclient import client as tus_client  # noqa: E402
from tusclient.storage.filestorage import FileStorage  # noqa: E402

from tests.support.s3 import MotoProcess, isolated_environment  # noqa: E402
from tests.support.servers import Server, make_workdir, remove_workdir  # noqa: E402

MiB = 1 << 20
BOUND_MIB = 64


def worker_pids(server: Server) -> list[int]:
    master = server.app.proc.pid
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def upload(server: Server, path: Path, pid: str, store: dict, chunk: int, urls: Path) -> None:
    metadata = {"pid": pid, "pid_type": "pidtype", "store": json.dumps(store)}
    size = path.stat().st_size
    for stop_at in (size // 2, None):  # a first client stops halfway, a second one resumes
        client = tus_client.TusClient(f"{server.base}/api/tus/", headers=dict(server.session.headers))
        uploader = client.uploader(
            file_path=str(path),
            chunk_size=chunk,
            metadata=metadata,
            store_url=True,
            url_storage=FileStorage(str(urls)),
        )
        uploader.upload(stop_at=stop_at)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--chunk-mib", type=int, default=5)
    args = parser.parse_args()
    cleaned = isolated_environment(dict(os.environ), drop_proxies=True)  # for boto3 and requests here too
    os.environ.clear()
    os.environ.update(cleaned)
    workdir = make_workdir("mediastore-bench-tus-")
    moto = MotoProcess(workdir, dict(os.environ))
    s3 = moto.start()
    server = Server("mediastore-bench-tus-", 4)
    failed = False
    try:
        server.add_s3(s3)
        bucket = "bench-tus"
        s3.client().create_bucket(Bucket=bucket)
        payload = workdir / "payload.bin"
        digest = hashlib.sha256()
        with open(payload, "wb") as out:
            for _ in range(args.size_mib):
                block = os.urandom(MiB)
                digest.update(block)
                out.write(block)
        stores = {
            "FilesystemStore": {"type": "FilesystemStore", "bucket": "bench-tus"},
            "BucketStore": {"type": "BucketStore", "bucket": bucket, "s3_url": s3.url},
        }
        print(f"tus upload of {args.size_mib} MiB in {args.chunk_mib} MiB chunks, 4 workers, resumed halfway")
        for name, store in stores.items():
            pids = worker_pids(server)
            before = {}
            for pid in pids:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
                before[pid] = status(pid, "VmRSS")
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as urls:
                upload(
                    server, payload, f"bench-{name}", store, args.chunk_mib * MiB, Path(urls) / "urls.json"
                )
            seconds = time.perf_counter() - started
            growth = max(status(pid, "VmHWM") - before[pid] for pid in pids) / MiB
            media = server.media(f"bench-{name}")
            intact = (
                media["checksum"] == f"sha256:{digest.hexdigest()}" and media["size"] == args.size_mib * MiB
            )
            verdict = "PASS" if growth < BOUND_MIB and intact else "FAIL"
            failed |= verdict == "FAIL"
            print(
                f"  {name:16} {seconds:6.1f} s  {args.size_mib / seconds:6.1f} MiB/s  "
                f"peak RSS growth {growth:5.1f} MiB (bound {BOUND_MIB})  "
                f"checksum {'ok' if intact else 'WRONG'}  {verdict}"
            )
    finally:
        server.close()
        moto.stop()
        remove_workdir(workdir)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
