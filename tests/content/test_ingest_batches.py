"""Ingest inserts new media in batches (content.ingest.commit): one transaction per batch, yet each
file keeps its own result, history row (with its own change reason) and event, a conflict fails
only its file, and a batch that fails leaves no row and no object behind.

A crash in the middle of a batch (a real process) is in test_ingest_live.py.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from content import ingest_runner
from content.ingest import INGEST_REASON, FileWork, IngestPlan, Outcome, Staged, find_sources
from content.ingest_runner import Ingest
from identifiers.models import IdentifierType
from media.models import Media, MediaEvent, StoreStatus
from media.schemas import MediaIn
from media.services import media_create
from stores.models import StoreConfig
from stores.schemas import StoreConfigIn
from stores.services import store_get_or_create
from tests.content.ingest_tree import make_tree

pytestmark = pytest.mark.django_db(transaction=True)

# As in test_ingest.py: SQLite's in-memory test database takes one writing thread at a time.
WORKERS = 3 if connection.vendor == "postgresql" else 1
FILES = 12
# A statement that looks media up by many pids (media.pids.with_pids), on either database.
PID_LOOKUP = re.compile(r'FROM "media_media".*"media_media"\."pid"\)? (COLLATE "C" )?IN \(', re.S)


@pytest.fixture
def store(settings, tmp_path, monkeypatch) -> StoreConfig:
    settings.MEDIASTORE_STORAGE_ROOT = str(tmp_path / "root")
    IdentifierType.objects.create(name="local", pattern="")
    monkeypatch.setattr(ingest_runner, "BATCH_SECONDS", 3600)  # batches fill up however slow the machine
    return store_get_or_create(type="FilesystemStore", bucket="products", user=None)


def run(root, store: StoreConfig, user, *, batch: int = FILES, workers: int = 1):
    sources, _ = find_sources([root])
    plan = IngestPlan(store=store, pid_type="local", user=user)
    return Ingest(plan, sources, workers=workers, batch=batch).run()


def objects(store: StoreConfig) -> set[str]:
    return {obj.key for obj in StoreConfig.objects.get(pk=store.pk).backend().list_objects()}


def test_a_batch_is_one_insert_with_each_files_history_and_event(store, user, tmp_path):
    root = tmp_path / "src"
    sums = make_tree(root, small=FILES, big=0, fanout=4, small_size=4096)
    summary = run(root, store, user)

    assert summary.count(Outcome.STORED) == FILES and not summary.failures
    media = {m.pid: m for m in Media.objects.all()}
    assert {pid: m.checksum for pid, m in media.items()} == sums
    assert {m.size for m in media.values()} == {4096}
    assert all(m.store_status == StoreStatus.READY for m in media.values())
    assert len(set(Media.history.values_list("history_date", flat=True))) == 1  # one media_insert
    assert objects(store) == {m.store_key for m in media.values()}
    reasons = dict(Media.history.values_list("pid", "history_change_reason"))
    assert set(reasons) == set(sums)  # each its own file's path (cut at the front when long)
    assert all(r.startswith(INGEST_REASON) and r.endswith(f"/src/{pid}") for pid, r in reasons.items())
    assert Media.history.count() == FILES
    events = list(MediaEvent.objects.values_list("pid", "type", "user"))
    assert sorted(events) == sorted((pid, "media.created", "alice") for pid in sums)


def test_a_pid_taken_during_a_batch_fails_only_its_file(store, user, tmp_path, monkeypatch):
    """The pid is free when the file is checked and its bytes stored, and taken (by another client)
    before its batch commits: the batch is retried without it."""
    root = tmp_path / "src"
    sums = make_tree(root, small=FILES, big=0, fanout=4)
    taken = "d000/s01/f00005.txt"
    store_bytes = FileWork.store

    def store_then_race(self, pid, media, *backend):
        staged = store_bytes(self, pid, media, *backend)
        if pid == taken:
            spec = StoreConfigIn(type="DictStore", bucket="elsewhere")
            media_create(MediaIn(pid=pid, pid_type="local", store_config=spec), user=user)
        return staged

    monkeypatch.setattr(FileWork, "store", store_then_race)
    summary = run(root, store, user, workers=WORKERS)

    assert summary.count(Outcome.STORED) == FILES - 1
    [failed] = summary.failures
    assert (failed.source.relpath, failed.pid) == (taken, taken)
    assert "created concurrently" in failed.detail
    media = {m.pid: m for m in Media.objects.select_related("store_config")}
    assert {pid: m.checksum for pid, m in media.items() if pid != taken} == {
        pid: s for pid, s in sums.items() if pid != taken
    }
    assert media[taken].store_config.type == "DictStore"  # the other client's media, untouched
    assert media[taken].store_status == StoreStatus.PENDING
    # The failed file's bytes were removed; each stored media has its object, history and event.
    assert objects(store) == {m.store_key for pid, m in media.items() if pid != taken}
    assert Media.history.filter(history_change_reason__startswith=INGEST_REASON).count() == FILES - 1
    assert MediaEvent.objects.filter(type="media.created").count() == FILES  # the other client's too
    assert set(Media.objects.values_list("version", flat=True)) == {1}  # the retry did not stamp them twice


def test_a_failed_batch_leaves_nothing_and_a_rerun_stores_everything(store, user, tmp_path, settings):
    root = tmp_path / "src"
    sums = make_tree(root, small=FILES, big=0, fanout=4)
    settings.MEDIASTORE_FAILPOINTS = {"ingest.before_commit": "error"}  # after the batch's inserts
    summary = run(root, store, user, batch=5)

    assert summary.count(Outcome.FAILED) == FILES
    assert all("injected failure" in r.detail for r in summary.results)
    assert not Media.objects.exists() and not Media.history.exists() and not MediaEvent.objects.exists()
    assert objects(store) == set()  # no object without its row

    settings.MEDIASTORE_FAILPOINTS = {}
    again = run(root, store, user, batch=5)
    assert again.count(Outcome.STORED) == FILES and not again.failures
    assert dict(Media.objects.values_list("pid", "checksum")) == sums
    assert MediaEvent.objects.count() == Media.history.count() == FILES
    assert objects(store) == set(Media.objects.values_list("store_key", flat=True))
    assert run(root, store, user).count(Outcome.SKIPPED) == FILES


def test_a_failing_progress_callback_after_a_commit_keeps_every_stored_file(store, user, tmp_path):
    """The batch has committed when its files are reported; a report that raises (a progress bar on
    a closed terminal) must not make the worker insert the batch again, which conflicted with its own
    rows and removed the bytes they point at."""
    root = tmp_path / "src"
    sums = make_tree(root, small=4, big=0, fanout=2)
    sources, _ = find_sources([root])
    calls = []

    def broken(result):
        calls.append(result)
        if len(calls) == 1:
            raise OSError("the terminal went away")

    summary = Ingest(IngestPlan(store=store, pid_type="local", user=user), sources, on_result=broken).run()

    media = {m.pid: m for m in Media.objects.all()}
    assert {pid: m.checksum for pid, m in media.items()} == sums
    assert objects(store) == {m.store_key for m in media.values()}  # every row's bytes are there
    assert summary.count(Outcome.STORED) == 4 and not summary.failures and len(calls) == 4


def test_every_worker_gets_files_of_a_small_tree(store, user, tmp_path):
    root = tmp_path / "src"
    make_tree(root, small=8, big=0, fanout=2)
    sources, _ = find_sources([root])
    ingest = Ingest(IngestPlan(store=store, pid_type="local", user=user), sources, workers=4)
    for source in sources:
        ingest.todo.put(source)

    shares = [len(ingest.take()) for _ in range(4)]

    assert shares == [2, 2, 1, 1], shares  # a quarter of what is left, rounded up (before: 8, 0, 0, 0)


def test_a_chunk_looks_up_its_pids_once(store, user, tmp_path):
    """Issue 34 item 6: the chunk's look-up of its pids (``media_stored``, telling new from stored
    media) also told ``media_prepare_many`` which pids are free; before, it looked the same pids up
    again. A stored media of the chunk is still skipped, and the new ones staged."""
    root = tmp_path / "src"
    sums = make_tree(root, small=FILES, big=0, fanout=4)
    sources, _ = find_sources([root])
    plan = IngestPlan(store=store, pid_type="local", user=user)
    run_first = Ingest(plan, sources[:1]).run()
    assert run_first.count(Outcome.STORED) == 1

    ingest = Ingest(plan, sources, batch=FILES)
    with CaptureQueriesContext(connection) as queries:
        done = ingest.chunk(sources)
    lookups = [q["sql"] for q in queries if PID_LOOKUP.search(q["sql"])]

    assert len(lookups) == 1, lookups
    staged = [d for d in done if isinstance(d, Staged)]
    assert [d.outcome for d in done if not isinstance(d, Staged)] == [Outcome.SKIPPED]
    assert sorted(s.result.pid for s in staged) == sorted(sums)[1:]
    ingest.flush(staged)
    assert dict(Media.objects.values_list("pid", "checksum")) == sums
