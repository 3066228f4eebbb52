"""The client side of bench/transfer.py: the API as a client sees it, the four measured
operations, and the table of results against the targets."""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from bench.transfer_worker import MIB, BenchError, Gunicorn, RssSampler, read_status, reset_hwm
from tests.support.processes import tail
from tests.support.s3 import S3Server

SHORT = {"FilesystemStore": "fs", "BucketStore": "s3"}
PID_TYPE = "bench"
BUCKET = "mediastore-bench"
BASE64_FACTOR = 4  # base64 peak RSS growth must stay below this many times the object size
STREAM_RSS_LIMIT_MB = 64
SPEEDUP = 5  # streaming must be at least this many times as fast as base64
OPERATIONS = ("base64 upload", "base64 download", "stream upload", "stream download")


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
