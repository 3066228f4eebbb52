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

Run from the repository root with the project's virtualenv::

    python bench/transfer.py                       # 10 and 100 MiB, both stores
    python bench/transfer.py --sizes 10 --stores fs --repeat 3
    python bench/transfer.py --postgres --keep

Exit status: 0 when it ran (1 with ``--strict`` when a target failed), 2 when it could not run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as bench/transfer.py: tests.support

from tests.support.ports import free_port  # noqa: E402
from tests.support.postgres import PostgresDatabase  # noqa: E402
from tests.support.processes import REPO, HarnessError, Process, http_ok, tail  # noqa: E402
from tests.support.s3 import MotoProcess, S3Server, isolated_environment  # noqa: E402

MIB = 1 << 20
STORE_ALIASES = {
    "fs": "FilesystemStore",
    "filesystem": "FilesystemStore",
    "filesystemstore": "FilesystemStore",
    "s3": "BucketStore",
    "bucket": "BucketStore",
    "bucketstore": "BucketStore",
}
SHORT = {"FilesystemStore": "fs", "BucketStore": "s3"}
PID_TYPE = "bench"
BUCKET = "mediastore-bench"
USERNAME = "bench-admin"
BASE64_FACTOR = 4  # base64 peak RSS growth must stay below this many times the object size
STREAM_RSS_LIMIT_MB = 64
SPEEDUP = 5  # streaming must be at least this many times as fast as base64
POLL_SECONDS = 0.02
OPERATIONS = ("base64 upload", "base64 download", "stream upload", "stream download")


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


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
# Resident memory of a process


def read_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in bytes."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, rest = line.split(":", 1)
                values[name] = int(rest.split()[0]) * 1024
    return values


def reset_hwm(pid: int) -> bool:
    """Reset the peak RSS (VmHWM) of ``pid`` to its current RSS; False where the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    status = read_status(pid)
    return status["VmHWM"] <= status["VmRSS"] + 4 * MIB


class RssSampler(threading.Thread):
    """Polls VmRSS of one process until stopped; ``peak`` is the largest value seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, read_status(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return  # the worker is gone; the operation will report the failure
            if self._stop_event.wait(POLL_SECONDS):
                return

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        with contextlib.suppress(OSError, KeyError):
            self.peak = max(self.peak, read_status(self.pid)["VmRSS"])
        return self.peak


# ---------------------------------------------------------------------------------------------
# Child processes: moto and gunicorn


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    return int(text.rpartition(")")[2].split()[1])


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and parent_of(int(entry)) == pid:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
                    found.append(int(entry))
    return found


class Gunicorn:
    """One gunicorn master with one sync worker; the worker's RSS is the server's."""

    def __init__(self, workdir: Path, env: dict[str, str], timeout: int) -> None:
        self.workdir = workdir
        self.env = env
        self.timeout = timeout
        self.out = workdir / "gunicorn.out"
        self.errorlog = workdir / "gunicorn.log"
        self.config = workdir / "gunicorn_bench.conf.py"
        self.process: Process | None = None
        self.url = ""

    @property
    def proc(self) -> subprocess.Popen:
        assert self.process is not None
        return self.process.proc

    def start(self) -> None:
        # An explicit config file, so the repository's gunicorn.conf.py (2 workers, 0.0.0.0) is not read.
        self.config.write_text("control_socket_disable = True\n")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "gunicorn", "-c", str(self.config), "--chdir", str(REPO)]
        command += ["-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}", "--timeout", str(self.timeout)]
        command += ["--error-logfile", str(self.errorlog), "mediastore.wsgi"]
        self.process = Process("gunicorn", command, self.env, self.out, cwd=self.workdir)
        self.wait_ready(120)

    def wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        try:
            self.process.wait_until(lambda: http_ok(f"{self.url}/api/health"), timeout, 0.2)
        except HarnessError as exc:
            raise BenchError(f"{exc}\n  gunicorn.log:\n{tail(self.errorlog)}") from None

    def worker_pid(self, timeout: float = 60) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise BenchError(
                    f"gunicorn exited with status {code}:\n{tail(self.errorlog)}\n{tail(self.out)}"
                )
            workers = children_of(self.proc.pid)
            if len(workers) == 1:
                return workers[0]
            time.sleep(0.05)
        raise BenchError(f"gunicorn has no single worker process:\n{tail(self.errorlog)}")

    def restart_worker(self) -> int:
        """Stop the worker; the master starts a fresh one. Returns its pid once it answers."""
        old = self.worker_pid()
        os.kill(old, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = children_of(self.proc.pid)
            if len(workers) == 1 and workers[0] != old:
                break
            time.sleep(0.05)
        else:
            raise BenchError(f"gunicorn did not replace its worker within 60 s:\n{tail(self.errorlog)}")
        self.wait_ready(120)
        return self.worker_pid()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


# ---------------------------------------------------------------------------------------------
# The API as a client sees it


class BigBlocks(HTTPAdapter):
    """Send request bodies read from files in 1 MiB blocks (urllib3's default is 16 KiB)."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        kwargs["blocksize"] = MIB
        super().init_poolmanager(*args, **kwargs)


class Api:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = (10, timeout)
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.mount("http://", BigBlocks())
        self.token = ""

    def request(
        self, method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.session.request(
                method, self.url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise BenchError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code not in expect:
            raise BenchError(f"{method} {path}: HTTP {response.status_code} {response.text[:500]}")
        return response

    def login(self, username: str, password: str) -> None:
        self.token = self.request(
            "POST", "/api/login", json={"username": username, "password": password}
        ).json()["token"]


def store_config(store: str, moto: S3Server | None) -> dict:
    if store == "BucketStore":
        assert moto is not None
        return {"type": "BucketStore", "bucket": f"{BUCKET}/objects", "s3_url": moto.url}
    return {"type": "FilesystemStore", "bucket": "bench"}


def media_json(pid: str, store: dict) -> dict:
    return {
        "pid": pid,
        "pid_type": PID_TYPE,
        "store_config": store,
        "identifiers": {},
        "metadata": {},
        "tags": [],
    }


def upload_body(pid: str, store: dict, encoded: bytes) -> bytes:
    """The JSON of ``POST /api/upload``, built around the already encoded bytes (no json.dumps copy)."""
    head = json.dumps({"mediadata": media_json(pid, store), "content_type": "application/octet-stream"})
    return b"".join([head[:-1].encode(), b', "base64": "', encoded, b'"}'])


@dataclass
class Payload:
    size_mb: int
    path: Path
    sha256: str
    encoded: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return self.size_mb * MIB


def make_payload(workdir: Path, size_mb: int) -> Payload:
    path = workdir / f"payload-{size_mb}MiB.bin"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size_mb):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            out.write(chunk)
    return Payload(size_mb, path, digest.hexdigest(), base64.b64encode(path.read_bytes()))


@dataclass
class Measurement:
    store: str
    size_mb: int
    operation: str
    seconds: float
    growth: int  # bytes
    base_rss: int  # bytes

    @property
    def mb_per_s(self) -> float:
        return self.size_mb / self.seconds if self.seconds > 0 else float("inf")


class Bench:
    def __init__(self, args: argparse.Namespace, api: Api, server: Gunicorn, moto: S3Server | None) -> None:
        self.args = args
        self.api = api
        self.server = server
        self.moto = moto
        self.workdir: Path = args.workdir
        self.hwm_ok: bool | None = None
        self.worker = server.worker_pid()

    # -- set-up and warm-up --------------------------------------------------------------------

    def prepare(self) -> None:
        self.api.request("POST", "/api/identifier", json={"name": PID_TYPE, "pattern": ""})
        if self.moto is not None:
            moto = self.moto
            s3 = {"url": moto.url, "access_key": moto.access_key, "secret_key": moto.secret_key}
            self.api.request("POST", "/api/s3cfg", json=s3)

    def warm_up(self, store: dict) -> None:
        """Run every code path once with a small object, so imports, URL resolvers and S3 clients
        exist before a measurement starts (a real server is warm)."""
        small = os.urandom(4096) + b"warm"
        pid_a, pid_b = f"warm-{uuid.uuid4().hex[:12]}", f"warm-{uuid.uuid4().hex[:12]}"
        json_type = {"Content-Type": "application/json"}
        self.api.request(
            "POST", "/api/upload", data=upload_body(pid_a, store, base64.b64encode(small)), headers=json_type
        )
        self.api.request("GET", f"/api/download/{pid_a}")
        self.api.request("POST", "/api/media", json=media_json(pid_b, store))
        raw_type = {"Content-Type": "application/octet-stream"}
        self.api.request("PUT", f"/api/media/{pid_b}/content", data=small, headers=raw_type)
        self.api.request("GET", f"/api/media/{pid_b}/content")
        for pid in (pid_a, pid_b):
            self.api.request("DELETE", f"/api/media/{pid}", expect=(204,))

    def fresh_worker(self, store: dict) -> None:
        if not self.args.reuse_worker:
            self.worker = self.server.restart_worker()
            self.warm_up(store)
        time.sleep(0.3)  # let the worker finish with the previous answer

    # -- one measured operation ----------------------------------------------------------------

    def measure(self, store_name: str, store: dict, size_mb: int, operation: str, run: Callable[[], None]):
        self.fresh_worker(store)
        pid = self.worker
        base = read_status(pid)["VmRSS"]
        hwm_reset = reset_hwm(pid)
        if self.hwm_ok is None:
            self.hwm_ok = hwm_reset
        sampler = RssSampler(pid)
        sampler.start()
        started = time.perf_counter()
        try:
            run()
        finally:
            seconds = time.perf_counter() - started
            peak = sampler.stop()
        if hwm_reset:
            with contextlib.suppress(OSError, KeyError):
                peak = max(peak, read_status(pid)["VmHWM"])
        if self.server.worker_pid() != pid:
            raise BenchError(f"the worker died during {operation}:\n{tail(self.server.errorlog)}")
        result = Measurement(store_name, size_mb, operation, seconds, max(peak - base, 0), base)
        if self.args.verbose:
            print(
                f"    {store_name} {size_mb} MiB {operation}: {seconds:.3f} s, "
                f"RSS {base / MIB:.0f} -> {peak / MIB:.0f} MiB",
                flush=True,
            )
        return result

    # -- the four operations -------------------------------------------------------------------

    def verify_media(self, pid: str, payload: Payload) -> None:
        media = self.api.request("GET", f"/api/media/{pid}").json()
        expected = (payload.size, f"sha256:{payload.sha256}", "READY")
        got = (media.get("size"), media.get("checksum"), media.get("store_status"))
        if got != expected:
            raise BenchError(f"media {pid}: stored {got}, expected {expected}")

    def round(self, store_name: str, payload: Payload, rep: int) -> list[Measurement]:
        store = store_config(store_name, self.moto)
        tag = f"{SHORT[store_name]}-{payload.size_mb}m-{rep}-{uuid.uuid4().hex[:8]}"
        pid_b64, pid_stream = f"bench-b64-{tag}", f"bench-stream-{tag}"
        size_mb = payload.size_mb
        results = []

        end_to_end = self.args.end_to_end
        body = b"" if end_to_end else upload_body(pid_b64, store, payload.encoded)

        def base64_upload() -> None:
            data = body
            if end_to_end:  # the client's own work too: read the file, encode it, build the JSON
                data = upload_body(pid_b64, store, base64.b64encode(payload.path.read_bytes()))
            self.api.request("POST", "/api/upload", data=data, headers={"Content-Type": "application/json"})

        results.append(self.measure(store_name, store, size_mb, "base64 upload", base64_upload))
        body = b""  # free the client's copy
        self.verify_media(pid_b64, payload)

        answer: list[bytes] = []

        def base64_download() -> None:
            # Read in 1 MiB pieces: requests' own .content reads 10 KiB at a time, which would slow
            # down the base64 side for reasons of the client, not the server.
            with self.api.request("GET", f"/api/download/{pid_b64}", stream=True) as response:
                raw = b"".join(response.iter_content(MIB))
            answer.append(base64.b64decode(json.loads(raw)["base64"]) if end_to_end else raw)

        results.append(self.measure(store_name, store, size_mb, "base64 download", base64_download))
        data = answer.pop()
        if not end_to_end:
            data = base64.b64decode(json.loads(data)["base64"])
        if len(data) != payload.size or hashlib.sha256(data).hexdigest() != payload.sha256:
            raise BenchError(f"base64 download of {pid_b64}: the bytes differ from what was uploaded")
        del data

        self.api.request("POST", "/api/media", json=media_json(pid_stream, store))
        put_answer: list[dict] = []

        def stream_upload() -> None:
            with payload.path.open("rb") as source:  # requests sends it block by block, Content-Length set
                put_answer.append(
                    self.api.request(
                        "PUT",
                        f"/api/media/{pid_stream}/content",
                        data=source,
                        headers={"Content-Type": "application/octet-stream"},
                    ).json()
                )

        results.append(self.measure(store_name, store, size_mb, "stream upload", stream_upload))
        got = (put_answer[0].get("size"), put_answer[0].get("checksum"))
        if got != (payload.size, f"sha256:{payload.sha256}"):
            raise BenchError(f"stream upload of {pid_stream}: the server recorded {got}")
        self.verify_media(pid_stream, payload)

        received: list[bytes] = []

        def stream_download() -> None:
            # The chunks are kept, not written to a file: a client's disk is not what is measured.
            with self.api.request("GET", f"/api/media/{pid_stream}/content", stream=True) as response:
                received.extend(response.iter_content(MIB))

        results.append(self.measure(store_name, store, size_mb, "stream download", stream_download))
        digest = hashlib.sha256()
        for chunk in received:
            digest.update(chunk)
        if sum(map(len, received)) != payload.size or digest.hexdigest() != payload.sha256:
            raise BenchError(f"stream download of {pid_stream}: the bytes differ from what was uploaded")
        received.clear()

        for pid in (pid_b64, pid_stream):
            self.api.request("DELETE", f"/api/media/{pid}", expect=(204,))
        return results


# ---------------------------------------------------------------------------------------------
# Results


def best_of(measurements: list[Measurement]) -> list[Measurement]:
    """Per store, size and operation: the best time and the largest memory growth of the repeats."""
    grouped: dict[tuple[str, int, str], list[Measurement]] = {}
    for m in measurements:
        grouped.setdefault((m.store, m.size_mb, m.operation), []).append(m)
    combined = []
    for (store, size_mb, operation), group in grouped.items():
        worst = max(group, key=lambda m: m.growth)
        seconds = min(m.seconds for m in group)
        combined.append(Measurement(store, size_mb, operation, seconds, worst.growth, worst.base_rss))
    return combined


def report(results: list[Measurement]) -> list[str]:
    """Print the table; return the failed checks."""
    by_key = {(m.store, m.size_mb, m.operation): m for m in results}
    header = (
        f"{'store':<16}{'size':>9}  {'operation':<16}{'seconds':>9}{'MiB/s':>9}{'base RSS':>10}"
        f"{'peak +RSS':>11}  {'target':<34}{'result':>6}"
    )
    print(header)
    print("-" * len(header))
    failed = []
    previous = None
    for m in results:
        if previous is not None and (previous.store, previous.size_mb) != (m.store, m.size_mb):
            print()
        previous = m
        checks = []
        growth_mb = m.growth / MIB
        if m.operation.startswith("base64"):
            limit = BASE64_FACTOR * m.size_mb
            checks.append((f"peak +RSS < {BASE64_FACTOR}x size = {limit} MiB", growth_mb < limit))
        else:
            checks.append((f"peak +RSS < {STREAM_RSS_LIMIT_MB} MiB", growth_mb < STREAM_RSS_LIMIT_MB))
            other = by_key.get((m.store, m.size_mb, m.operation.replace("stream", "base64")))
            if other is not None:
                ratio = m.mb_per_s / other.mb_per_s
                checks.append((f"speed >= {SPEEDUP}x base64 (is {ratio:.2f}x)", ratio >= SPEEDUP))
        for index, (target, ok) in enumerate(checks):
            verdict = "PASS" if ok else "FAIL"
            if index == 0:
                line = (
                    f"{m.store:<16}{m.size_mb:>5} MiB  {m.operation:<16}{m.seconds:>9.3f}{m.mb_per_s:>9.1f}"
                    f"{m.base_rss / MIB:>10.1f}{growth_mb:>11.1f}  "
                )
            else:
                line = f"{'':<16}{'':>9}  {m.operation:<16}{'':>9}{'':>9}{'':>10}{'':>11}  "
            print(f"{line}{target:<34}{verdict:>6}")
            if not ok:
                failed.append(f"{m.store} {m.size_mb} MiB {m.operation}: {target}")
    return failed


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


def run(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> int:
    workdir: Path = args.workdir
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
