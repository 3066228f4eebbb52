"""Store health for the status page: is each store reachable and writable, and how fast.

Reading the status page or ``GET /api/stats`` never writes: they show the last recorded probe
(``StoreProbe``, with its time), which ``manage.py probe_stores`` records (a timer runs it every 5
minutes) and ``GET /api/stats?probe=true`` or ``/status/?probe=true`` records on an administrator's
demand.

A probe writes a tiny object under a fresh key through the store's backend, reads it back and
deletes it. All stores are probed at once in threads, and a store that has not answered within
PROBE_TIMEOUT seconds is reported as unreachable (its probe thread finishes on its own; a key it
leaves behind is an orphan that ``manage.py collect_orphans`` finds).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime

from django.db import connections
from django.utils import timezone

from mediastore.errors import MediastoreError
from status.models import StoreProbe
from stores.backends import ObjectNotFound
from stores.models import StoreConfig
from stores.probe import probe_backend, probe_key

PROBE_TIMEOUT = 3.0


def probe(store: StoreConfig) -> dict:
    """{"reachable", "writable", "latency_ms", "error"} for one store (runs in a worker thread)."""
    key = probe_key()
    started = time.perf_counter()
    result = {"reachable": False, "writable": False, "latency_ms": None, "error": ""}
    try:
        backend = store.backend()
        try:
            backend.size(key)  # a fresh key: ObjectNotFound proves the store answers
        except ObjectNotFound:
            pass
        result["reachable"] = True
        probe_backend(backend, key)
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


def probe_and_record(stores: list[StoreConfig], timeout: float = PROBE_TIMEOUT) -> dict[int, dict]:
    """Probe every store now (``probe_all``) and record the results as the last probe of each (the
    rows of stores that no longer exist are removed); store pk -> result with its ``probed_at``."""
    probed_at = timezone.now()
    results = probe_all(stores, timeout)
    rows = [StoreProbe(store_config_id=pk, probed_at=probed_at, **result) for pk, result in results.items()]
    StoreProbe.objects.exclude(store_config_id__in=list(results)).delete()
    if rows:
        StoreProbe.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["store_config_id"],
            update_fields=["reachable", "writable", "latency_ms", "error", "probed_at"],
        )
    return {pk: {**result, "probed_at": probed_at} for pk, result in results.items()}


def last_probes(now: datetime) -> dict[int, dict]:
    """The last recorded probe of each store (one query; nothing is probed): store pk -> result
    with ``probed_at`` and ``age_s``, the seconds between the probe and ``now``."""
    return {
        row.store_config_id: {
            "reachable": row.reachable,
            "writable": row.writable,
            "latency_ms": row.latency_ms,
            "error": row.error,
            "probed_at": row.probed_at,
            "age_s": round(max((now - row.probed_at).total_seconds(), 0.0), 1),
        }
        for row in StoreProbe.objects.all()
    }
