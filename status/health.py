"""Store health for the status page: is each store reachable and writable, and how fast.

A probe writes a tiny object under a fresh key through the store's backend, reads it back and
deletes it. All stores are probed at once in threads, and a store that has not answered within
PROBE_TIMEOUT seconds is reported as unreachable (its probe thread finishes on its own; a key it
leaves behind is an orphan that ``manage.py collect_orphans`` finds).
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor, wait

from django.db import connections

from mediastore.errors import MediastoreError
from stores.backends import ObjectNotFound
from stores.models import StoreConfig

PROBE_TIMEOUT = 3.0
PROBE_BYTES = b"mediastore health probe\n"


def probe(store: StoreConfig) -> dict:
    """{"reachable", "writable", "latency_ms", "error"} for one store (runs in a worker thread)."""
    key = f"mediastore-health-{secrets.token_hex(8)}"
    started = time.perf_counter()
    result = {"reachable": False, "writable": False, "latency_ms": None, "error": ""}
    try:
        backend = store.backend()
        try:
            backend.size(key)  # a fresh key: ObjectNotFound proves the store answers
        except ObjectNotFound:
            pass
        result["reachable"] = True
        backend.put(key, PROBE_BYTES)
        if backend.get(key) != PROBE_BYTES:
            raise ValueError("the probe object read back differs from what was written")
        backend.delete(key)
        result["writable"] = True
    except (MediastoreError, ObjectNotFound, ValueError) as exc:
        result["error"] = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    finally:
        connections.close_all()  # this thread's connection (SqliteStore reads none; safe either way)
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def probe_all(stores: list[StoreConfig], timeout: float = PROBE_TIMEOUT) -> dict[int, dict]:
    """Probe every store at once; store pk -> result. A store slower than ``timeout`` is
    unreachable with error "no answer within N s"."""
    if not stores:
        return {}
    pool = ThreadPoolExecutor(max_workers=min(len(stores), 16), thread_name_prefix="store-probe")
    futures = {store.pk: pool.submit(probe, store) for store in stores}
    wait(futures.values(), timeout=timeout)
    pool.shutdown(wait=False, cancel_futures=True)
    results = {}
    for pk, future in futures.items():
        if future.done() and not future.cancelled():
            results[pk] = future.result()
        else:
            results[pk] = {
                "reachable": False,
                "writable": False,
                "latency_ms": None,
                "error": f"no answer within {timeout:g} s",
            }
    return results
