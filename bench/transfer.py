#!/usr/bin/env python
"""Benchmark: moving bytes through the API, base64 in JSON against raw streaming.

For each store type (FilesystemStore, BucketStore on a moto S3 server) and object size (10 and
100 MiB by default) it measures, on a real gunicorn server with one sync worker:

- base64 upload    ``POST /api/upload`` with ``base64``
- base64 download  ``GET /api/download/{pid}``
- stream upload    ``PUT /api/media/{pid}/content`` (the body streamed from a file by ``requests``)
- stream download  ``GET /api/media/{pid}/content`` (``stream=True``, ``iter_content``)

and prints seconds, MiB/s and the growth of the worker's resident memory over its RSS just before
the operation, with PASS/FAIL against the targets of issue 3, item 11:

- base64: peak RSS growth below 4x the object size;
- streaming: peak RSS growth below 64 MiB whatever the object size;
- streaming at least 5x as fast as base64 (same store and size, upload vs upload, download vs download).

Everything runs in a throw-away directory: SQLite there (or ``--postgres``: a throw-away
PostgreSQL database), ``manage.py migrate`` and ``ensure_superuser``, gunicorn
(``-w 1 --timeout 600``) and, for BucketStore, ``python -m moto.server`` in its own process on a
free loopback port, so neither moto's memory nor the client's is counted as the server's.

The peak is the worker's VmHWM, reset before each operation through ``/proc/<pid>/clear_refs``
where the kernel allows it, and in any case VmRSS polled every 20 ms in a thread; the larger of the
two is reported. By default each measured operation gets a freshly started, warmed-up worker, so
memory freed (but kept) by an earlier operation cannot hide this one's allocations
(``--reuse-worker`` turns that off). Seconds are the HTTP exchange as the client sees it (request
sent, whole answer received, both read in 1 MiB pieces); client-side base64 encoding/decoding and
verification are outside the timer (``--end-to-end`` counts the encoding/decoding), so the
comparison favours base64 if anything. Every transfer is verified (size, SHA-256).

``--durable-names N`` measures instead what fsyncing the directory after each rename costs
(mediastore/durable.py): N writes of a small object (4 KiB, where it weighs most) and N of a 1 MiB
object into a FilesystemStore in the throw-away directory, in this process, with and without the
directory fsync; it prints milliseconds per write and the ratio.

Run from the repository root with the project's virtualenv::

    python bench/transfer.py                       # 10 and 100 MiB, both stores
    python bench/transfer.py --sizes 10 --stores fs --repeat 3
    python bench/transfer.py --postgres --keep
    python bench/transfer.py --durable-names 200

Exit status: 0 when it ran (1 with ``--strict`` when a target failed), 2 when it could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as bench/transfer.py: tests.support

from bench.transfer_client import (  # noqa: E402
    BUCKET,
    OPERATIONS,
    Api,
    Bench,
    Measurement,
    best_of,
    make_payload,
    report,
    store_config,
)
from bench.transfer_worker import BenchError, Gunicorn  # noqa: E402
from tests.support.postgres import PostgresDatabase  # noqa: E402
from tests.support.processes import REPO, HarnessError  # noqa: E402
from tests.support.s3 import MotoProcess, isolated_environment  # noqa: E402

STORE_ALIASES = {
    "fs": "FilesystemStore",
    "filesystem": "FilesystemStore",
    "filesystemstore": "FilesystemStore",
    "s3": "BucketStore",
    "bucket": "BucketStore",
    "bucketstore": "BucketStore",
}
USERNAME = "bench-admin"


# ---------------------------------------------------------------------------------------------
# Small helpers


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes wants whole MiB separated by commas, got {text!r}"
        ) from None
    if not sizes or any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError(f"--sizes wants positive whole MiB, got {text!r}")
    return sizes


def parse_stores(text: str) -> list[str]:
    stores = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name = STORE_ALIASES.get(part.lower())
        if name is None:
            raise argparse.ArgumentTypeError(
                f"unknown store {part!r}: use FilesystemStore (fs) and/or BucketStore (s3)"
            )
        if name not in stores:
            stores.append(name)
    if not stores:
        raise argparse.ArgumentTypeError("--stores is empty")
    return stores


# ---------------------------------------------------------------------------------------------
# Main


def run_manage(python: str, env: dict[str, str], *command: str) -> None:
    try:
        done = subprocess.run(
            [python, str(REPO / "manage.py"), *command],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"manage.py {' '.join(command)} did not finish within 600 s") from None
    if done.returncode != 0:
        raise BenchError(
            f"manage.py {' '.join(command)} failed (status {done.returncode}):\n{done.stdout[-3000:]}"
            f"\n{done.stderr[-3000:]}"
        )


@contextlib.contextmanager
def postgres_database(enabled: bool) -> Iterator[dict[str, str]]:
    """A throw-away PostgreSQL database (dropped afterwards) as POSTGRES_* variables; {} if not enabled."""
    if not enabled:
        yield {}
        return
    database = PostgresDatabase(prefix="mediastore_bench_")
    database.create()
    try:
        yield database.env()
    finally:
        try:
            database.drop()
        except Exception as exc:  # the results are printed already; say what is left behind
            print(f"could not drop PostgreSQL database {database.name}: {exc}", file=sys.stderr)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Throughput and server memory of base64 vs streaming uploads and downloads.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--sizes", type=parse_sizes, default="10,100", help="object sizes in MiB, comma-separated"
    )
    parser.add_argument(
        "--stores",
        type=parse_stores,
        default="FilesystemStore,BucketStore",
        help="FilesystemStore/fs, BucketStore/s3",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; best time, largest RSS")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    parser.add_argument("--postgres", action="store_true", help="use a throw-away PostgreSQL database")
    parser.add_argument(
        "--timeout", type=int, default=600, help="seconds per request and gunicorn worker timeout"
    )
    parser.add_argument(
        "--reuse-worker",
        action="store_true",
        help="measure every operation on the same worker instead of a fresh, warmed-up one each time",
    )
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="count the client's base64 encoding/decoding and JSON work in the base64 times",
    )
    parser.add_argument(
        "--durable-names",
        type=int,
        default=0,
        metavar="N",
        help="only measure the directory fsync: N small and N 1 MiB writes with and without it",
    )
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target fails")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each measurement as it is made")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cleaned = isolated_environment(dict(os.environ), drop_proxies=True)  # for boto3 and requests here too
    os.environ.clear()
    os.environ.update(cleaned)
    workdir = Path(tempfile.mkdtemp(prefix="mediastore-bench-"))
    args.workdir = workdir
    status = 0
    try:
        with contextlib.ExitStack() as cleanup:  # unwinds in reverse: gunicorn, moto, then the database
            status = run(args, cleanup)
    except (BenchError, HarnessError) as exc:
        print(f"\nbenchmark error: {exc}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        status = 2
    finally:
        if args.keep:
            print(f"kept {workdir} (logs: gunicorn.log, gunicorn.out, moto.log)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


def durable_names(workdir: Path, count: int) -> int:
    """Milliseconds per FilesystemStore write with and without the directory fsync."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from stores.backends.filesystem import FilesystemStore

    class Undurable(FilesystemStore):
        durable_names = False

    print(f"directory fsync after rename, {count} writes each, FilesystemStore in {workdir}")
    print(f"{'object':>8}  {'with (ms)':>10}  {'without (ms)':>12}  {'ratio':>6}")
    for size in (4 << 10, 1 << 20):
        data = secrets.token_bytes(size)
        stores = [cls(workdir / f"{cls.__name__}-{size}") for cls in (FilesystemStore, Undurable)]
        spent = [0.0, 0.0]
        for index in range(-1, count):  # index -1 warms up; the two stores alternate, so drift hits both
            for which in (index % 2, 1 - index % 2):
                started = time.perf_counter()
                stores[which].put(f"objects/{index % 16}/k{index}", data)
                if index >= 0:
                    spent[which] += time.perf_counter() - started
        with_sync, without = (total * 1000 / count for total in spent)
        label = f"{size >> 10} KiB" if size < 1 << 20 else f"{size >> 20} MiB"
        print(f"{label:>8}  {with_sync:>10.2f}  {without:>12.2f}  {with_sync / without:>5.2f}x")
    return 0


def run(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> int:
    workdir: Path = args.workdir
    if args.durable_names:
        return durable_names(workdir, args.durable_names)
    pg_env = cleanup.enter_context(postgres_database(args.postgres))
    password = secrets.token_urlsafe(16)
    env = {name: value for name, value in os.environ.items() if not name.startswith("POSTGRES_")}
    env.update(
        {
            "MEDIASTORE_ENV_FILE": "",  # never read the repository's .env
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_LOG_LEVEL": "WARNING",
            "MEDIASTORE_DATA_DIR": str(workdir / "data"),
            "MEDIASTORE_MAX_UPLOAD_MB": str(max(1024, 2 * max(args.sizes) + 16)),
            "DJANGO_SUPERUSER_USERNAME": USERNAME,
            "DJANGO_SUPERUSER_PASSWORD": password,
            "DJANGO_SUPERUSER_EMAIL": "",
            "PYTHONUNBUFFERED": "1",
            **pg_env,
        }
    )
    database = f"PostgreSQL database {pg_env['POSTGRES_DB']}" if pg_env else "SQLite"
    print(f"mediastore transfer benchmark in {workdir}")
    print(
        f"  python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {database}, sizes {args.sizes} MiB, "
        f"stores {args.stores}, repeat {args.repeat}",
        flush=True,
    )
    run_manage(sys.executable, env, "migrate", "--no-input")
    run_manage(sys.executable, env, "ensure_superuser")

    moto = None
    if "BucketStore" in args.stores:
        moto_process = MotoProcess(workdir, env)
        cleanup.callback(moto_process.stop)
        moto = moto_process.start()
        moto.client().create_bucket(Bucket=BUCKET)
        print(f"  moto S3 server at {moto.url} (pid {moto_process.process.pid})", flush=True)

    server = Gunicorn(workdir, env, args.timeout)
    cleanup.callback(server.stop)
    server.start()
    print(f"  gunicorn at {server.url}: master pid {server.proc.pid}, worker pid {server.worker_pid()}")

    api = Api(server.url, args.timeout)
    api.login(USERNAME, password)
    bench = Bench(args, api, server, moto)
    bench.prepare()
    for store_name in args.stores:
        bench.warm_up(store_config(store_name, moto))

    measurements: list[Measurement] = []
    started = time.monotonic()
    for size_mb in args.sizes:
        print(f"  preparing {size_mb} MiB of random bytes", flush=True)
        payload = make_payload(workdir, size_mb)
        for store_name in args.stores:
            for rep in range(args.repeat):
                print(f"  {store_name} {size_mb} MiB, run {rep + 1}/{args.repeat}", flush=True)
                measurements.extend(bench.round(store_name, payload, rep))
        payload.path.unlink()
        del payload
    order = {name: i for i, name in enumerate(args.stores)}
    results = sorted(
        best_of(measurements), key=lambda m: (order[m.store], m.size_mb, OPERATIONS.index(m.operation))
    )
    method = (
        "VmHWM reset per operation + VmRSS polled every 20 ms"
        if bench.hwm_ok
        else "VmRSS polled every 20 ms (this kernel does not reset VmHWM)"
    )
    worker = "one reused worker" if args.reuse_worker else "a fresh warmed-up worker per operation"
    timing = (
        "base64 times include the client's encoding/decoding"
        if args.end_to_end
        else "times are the HTTP exchange only"
    )
    print()
    print(
        f"Results after {time.monotonic() - started:.0f} s (MiB = 2^20 bytes; best time of {args.repeat}, "
        f"{timing}; peak +RSS = peak over the RSS just before: {method}; {worker}):"
    )
    print()
    failed = report(results)
    print()
    if not failed:
        print("All targets PASS.")
        return 0
    print(f"{len(failed)} target(s) FAILED:")
    for line in failed:
        print(f"  - {line}")
    return 1 if args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
