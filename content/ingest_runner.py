"""Running an ingest: files on worker threads, results collected, a clean stop (see content.ingest)."""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connections

from content.ingest import (
    UNKNOWN,
    FileWork,
    IngestPlan,
    New,
    Outcome,
    Result,
    Source,
    Staged,
    Watch,
    commit,
    settle,
    stage_many,
)
from media.pids import pick
from media.selectors import media_stored
from mediastore import metrics
from mediastore.errors import RuleViolation
from stores.models import StoreConfig
from stores.services import normalize_store, store_get_or_create

log = logging.getLogger(__name__)

BATCH_FILES = 100  # new media a worker inserts in one transaction, at most
BATCH_BYTES = 64 << 20  # and files of this many bytes together at most (one file may be larger)
BATCH_SECONDS = 1.0  # how long a stored file's row may wait for its batch to fill (about)


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
    bytes are read, ``on_result(result)`` once per file (both from worker threads), for a new
    media once its batch committed. ``stop()`` may be called from any thread (a signal handler):
    files in flight are abandoned, no new one starts; the rows of files whose bytes are already
    stored are committed. ``batch``: new media per transaction (see ``content.ingest.commit``).
    """

    def __init__(
        self,
        plan: IngestPlan,
        sources: list[Source],
        *,
        workers: int = 1,
        on_bytes: Callable[[int], None] = lambda n: None,
        on_result: Callable[[Result], None] = lambda r: None,
        batch: int = BATCH_FILES,
    ) -> None:
        if workers < 1 or batch < 1:
            raise ValueError("workers and batch must be at least 1")
        self.plan, self.sources, self.workers, self.batch = plan, sources, workers, batch
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
        pending: list[Staged] = []
        since = 0.0
        try:
            while not self.watch.stopped.is_set():
                sources = self.take()
                if not sources:
                    return
                for done in self.chunk(sources):
                    if isinstance(done, Staged):
                        since = since if pending else time.monotonic()
                        pending.append(done)
                    else:
                        self.finished(done)
                    if pending and (len(pending) >= self.batch or time.monotonic() - since >= BATCH_SECONDS):
                        # Emptied before the flush: were a batch flushed twice, its second insert
                        # would conflict with its own committed rows and remove their bytes.
                        batch, pending = pending, []
                        self.flush(batch)
        finally:
            try:
                self.flush(pending)  # after a stop too: these files' bytes are complete
            finally:
                connections.close_all()  # this thread's connections only (they are per thread)

    def take(self) -> list[Source]:
        """Files not yet started: up to ``batch`` of them, and ``BATCH_BYTES`` unless one is larger,
        and no more than a fair share of what is left (every worker gets files of a small tree)."""
        sources: list[Source] = []
        size = 0
        share = min(self.batch, max(1, math.ceil(self.todo.qsize() / self.workers)))
        while len(sources) < share and size < BATCH_BYTES:
            try:
                sources.append(self.todo.get_nowait())
            except queue.Empty:
                break
            size += sources[-1].size
        return sources

    def chunk(self, sources: list[Source]) -> list[Result | Staged]:
        """What became of ``sources``, each as ``FileWork.run`` says, with the database asked once
        for the media of all their pids and the new media among them checked together
        (``stage_many``). Files not begun once stopped are left out (not started)."""
        works = [FileWork(self.plan, source, self.watch) for source in sources]
        try:
            done: list[Result | Staged] = []
            named = []
            for work in works:
                if self.watch.stopped.is_set():
                    break
                outcome = settle(work.source, "", lambda work=work: self.name(work))
                if isinstance(outcome, Result):
                    done.append(outcome)
                else:
                    named.append((work, *outcome))
            found = settle(works[0].source, "", lambda: media_stored([pid for _, pid, _ in named]))
            news = []
            for work, pid, identifiers in named:
                if self.watch.stopped.is_set():
                    break
                media = UNKNOWN if isinstance(found, Result) else pick(found, pid)
                outcome = settle(
                    work.source, pid, lambda w=work, p=pid, i=identifiers, m=media: w.run(p, i, m)
                )
                (news if isinstance(outcome, New) else done).append(outcome)
            # The look-up that told new from stored media also tells stage_many which pids are free.
            stored = None if isinstance(found, Result) else found.values()
            return done + stage_many(news, user=self.plan.user, stopped=self.watch.stopped, stored=stored)
        finally:
            for work in works:
                work.finish()

    def name(self, work: FileWork) -> tuple[str, dict[str, str]] | Result:
        """The file's pid and identifiers; a failure when another file of this run made the pid."""
        pid, identifiers = work.names()
        with self.lock:
            first = self.claimed.setdefault(pid, work.source.relpath)
        if first != work.source.relpath:
            return Result(work.source, Outcome.FAILED, pid, f"pid '{pid}' is also made from '{first}'")
        return pid, identifiers

    def flush(self, pending: list[Staged]) -> None:
        try:
            results = commit(pending, user=self.plan.user)
        except Exception as exc:  # a bug: as in one(); commit() removed the batch's bytes
            log.exception("ingest of a batch of %d files failed unexpectedly", len(pending))
            detail = f"unexpected {type(exc).__name__}: {exc}"
            results = [Result(s.result.source, Outcome.FAILED, s.result.pid, detail) for s in pending]
        for result in results:  # committed: a failing progress callback must not undo that
            try:
                self.finished(result)
            except Exception:
                log.exception("reporting the ingest of %s failed", result.source.path)

    def finished(self, result: Result) -> None:
        with self.lock:
            self.results.append(result)
        if not self.plan.dry_run:  # /metrics: counted when run with the server's metrics directory
            metrics.INGEST_FILES.labels(result.outcome.value).inc()
            metrics.INGEST_BYTES.inc(result.written)
        self.on_result(result)


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
