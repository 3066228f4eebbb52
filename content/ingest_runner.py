"""Running an ingest: files on worker threads, results collected, a clean stop (see content.ingest)."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import DatabaseError, connections

from content.ingest import FileWork, IngestPlan, Interrupted, Outcome, Result, Source, Watch
from mediastore import metrics
from mediastore.errors import MediastoreError, RuleViolation
from stores.models import StoreConfig
from stores.services import normalize_store, store_get_or_create

log = logging.getLogger(__name__)


@dataclass
class Summary:
    results: list[Result]
    not_started: int
    seconds: float
    stopped: bool

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome == outcome)

    @property
    def written(self) -> int:
        return sum(result.written for result in self.results)

    @property
    def failures(self) -> list[Result]:
        return sorted(
            (r for r in self.results if r.outcome == Outcome.FAILED), key=lambda r: r.source.relpath
        )


class Ingest:
    """Ingest ``sources`` by ``plan`` on ``workers`` threads. ``on_bytes(n)`` is called as file
    bytes are read, ``on_result(result)`` once per file (both from worker threads). ``stop()`` may
    be called from any thread (a signal handler): files in flight are abandoned, no new one starts.
    """

    def __init__(
        self,
        plan: IngestPlan,
        sources: list[Source],
        *,
        workers: int = 1,
        on_bytes: Callable[[int], None] = lambda n: None,
        on_result: Callable[[Result], None] = lambda r: None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.plan, self.sources, self.workers = plan, sources, workers
        self.on_result = on_result
        self.watch = Watch(on_bytes)
        self.lock = threading.Lock()
        self.results: list[Result] = []
        self.claimed: dict[str, str] = {}  # pid -> relpath of the file that made it
        self.todo: queue.SimpleQueue[Source] = queue.SimpleQueue()

    def stop(self) -> None:
        self.watch.stopped.set()

    def run(self) -> Summary:
        started = time.monotonic()
        for source in self.sources:
            self.todo.put(source)
        threads = [
            threading.Thread(target=self.work, name=f"ingest-{n}", daemon=True)
            for n in range(min(self.workers, len(self.sources)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():  # short joins, so the main thread still runs signal handlers
                thread.join(0.2)
        return Summary(
            results=self.results,
            not_started=len(self.sources) - len(self.results),
            seconds=time.monotonic() - started,
            stopped=self.watch.stopped.is_set(),
        )

    def work(self) -> None:
        try:
            while not self.watch.stopped.is_set():
                try:
                    source = self.todo.get_nowait()
                except queue.Empty:
                    return
                result = self.one(source)
                with self.lock:
                    self.results.append(result)
                if not self.plan.dry_run:  # /metrics: counted when run with the server's metrics directory
                    metrics.INGEST_FILES.labels(result.outcome.value).inc()
                    metrics.INGEST_BYTES.inc(result.written)
                self.on_result(result)
        finally:
            connections.close_all()  # this thread's connections only (they are per thread)

    def one(self, source: Source) -> Result:
        work = FileWork(self.plan, source, self.watch)
        pid = ""
        try:
            pid, identifiers = work.names()
            with self.lock:
                first = self.claimed.setdefault(pid, source.relpath)
            if first != source.relpath:
                return Result(source, Outcome.FAILED, pid, f"pid '{pid}' is also made from '{first}'")
            return work.run(pid, identifiers)
        except Interrupted:
            return Result(source, Outcome.INTERRUPTED, pid, "stopped before it was stored")
        except MediastoreError as exc:
            return Result(source, Outcome.FAILED, pid, exc.message)
        except OSError as exc:
            return Result(source, Outcome.FAILED, pid, f"cannot read the file: {exc.strerror or exc}")
        except DatabaseError as exc:
            return Result(source, Outcome.FAILED, pid, f"database error: {exc}")
        except Exception as exc:  # a bug: logged with its traceback, listed, and the exit status says so
            log.exception("ingest of %s failed unexpectedly", source.path)
            return Result(source, Outcome.FAILED, pid, f"unexpected {type(exc).__name__}: {exc}")
        finally:
            work.finish()


# ---------------------------------------------------------------------------------------------
# What the command resolves before it starts


def find_store(
    spec: str, *, s3_url: str = "", create: bool = False, dry_run: bool = False, user=None
) -> StoreConfig:
    """The store configuration named ``TYPE:BUCKET`` (with ``s3_url`` for a BucketStore).

    An existing one is used as it is; a missing one is created (as ``POST /api/store`` would, by
    ``user``) only with ``create`` (in a ``dry_run``: returned unsaved), else RuleViolation saying
    how to create it.
    """
    store_type, sep, bucket = spec.partition(":")
    if not sep or not store_type or not bucket:
        raise RuleViolation(f"--store wants TYPE:BUCKET (e.g. FilesystemStore:products), got {spec!r}")
    store_type, bucket, s3cfg = normalize_store(store_type, bucket, s3_url)
    found = StoreConfig.objects.select_related("s3cfg").filter(type=store_type, bucket=bucket, s3cfg=s3cfg)
    store = found.first()
    if store is not None:
        return store
    if create and dry_run:  # what would be created, unsaved: a dry run writes nothing
        return StoreConfig(type=store_type, bucket=bucket, s3cfg=s3cfg)
    if not create:
        raise RuleViolation(
            f"no store configuration {store_type} '{bucket}'"
            + (f" at {s3_url}" if s3_url else "")
            + ": create it first (POST /api/store or the admin), or pass --create-store"
        )
    return store_get_or_create(type=store_type, bucket=bucket, s3_url=s3_url, user=user)


SERVICE_USER_VARIABLE = "DJANGO_SERVICEUSER_USERNAME"


def acting_user(username: str | None, *, replace: bool = False):
    """The account the ingest acts as (history and events name it): ``username``; by default the
    service account of ``$DJANGO_SERVICEUSER_USERNAME`` when it exists, else the first superuser.
    It must be active and allowed to add media (and to change them, with ``replace``)."""
    users = get_user_model()
    if username:
        user = users.objects.filter(username=username).first()
        if user is None:
            raise RuleViolation(f"no user {username!r}")
    else:
        service = os.environ.get(SERVICE_USER_VARIABLE, "").strip()
        user = users.objects.filter(username=service).first() if service else None
        if user is None:
            user = users.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if user is None:
            raise RuleViolation(
                f"no user to act as: pass --user, or create the service account (${SERVICE_USER_VARIABLE}, "
                "manage.py ensure_serviceuser) or a superuser"
            )
    needed = ["media.add_media"] + (["media.change_media"] if replace else [])
    if not user.is_active or not user.has_perms(needed):
        raise RuleViolation(f"user {user.username!r} is inactive or lacks {', '.join(needed)}")
    return user
