"""manage.py ingest through call_command: a generated tree into a FilesystemStore and into S3
(moto), reruns, changed files, dry runs, pid and identifier templates.

The interrupted run (a real process, SIGINT) and its resumption are in test_ingest_live.py,
--in-place in test_ingest_in_place.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from identifiers.models import IdentifierType
from media.models import Media, MediaEvent, StoreStatus
from stores.models import StoreConfig
from tests.content.ingest_tree import make_tree

# Worker threads use their own database connections, so the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

# SQLite's test database is in memory with a shared cache, where a second connection writing at the
# same time fails at once with "database table is locked" (no busy wait as with a database file):
# one worker thread there. The real process in test_ingest_live.py runs several on a database file.
WORKERS = "4" if connection.vendor == "postgresql" else "1"


# 600 small files (several of the command's batches) and three of 20 MiB (three parts each in S3,
# whose parts are 8 MiB): 2,000 and 50 MiB took two and a half minutes into moto's server.
SMALL, BIG_MB = 600, 20


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    return root, make_tree(root, small=SMALL, big_mb=BIG_MB)


def ingest(*args, user="alice", **kw) -> str:
    """Run the command expecting success; its standard output (the summary)."""
    if "--workers" not in args:
        args = (*args, "--workers", WORKERS)
    out = io.StringIO()
    try:
        call_command("ingest", *args, "--user", user, "--no-progress", stdout=out, stderr=io.StringIO(), **kw)
    except CommandError as exc:
        raise AssertionError(f"{exc}:\n{out.getvalue()[:3000]}") from exc
    return out.getvalue()


def content(api, pid: str) -> bytes:
    response = api.get(f"/api/media/{pid}/content")
    assert response.status_code == 200, response
    return b"".join(response.streaming_content)


def store_objects(store_type: str) -> set[tuple[str, int]]:
    backend = StoreConfig.objects.get(type=store_type).backend()
    return {(obj.key, obj.size) for obj in backend.list_objects()}


@pytest.mark.parametrize("store_type", ["FilesystemStore", "BucketStore"])
def test_a_tree_is_stored_then_a_rerun_stores_nothing_new(api, ingest_stores, tree, store_type):
    root, sums = tree
    args = [str(root), *ingest_stores[store_type], "--pid-type", "local", "--workers", WORKERS]
    out = ingest(*args, "--identifier", "filename={name}", "--tags", "ingested,raw")
    assert out.startswith(f"stored {SMALL + 3}, replaced 0, skipped 0, failed 0;"), out

    media = {m.pid: m for m in Media.objects.all()}
    assert set(media) == set(sums)
    assert all(m.store_status == StoreStatus.READY for m in media.values())
    assert {pid: m.checksum for pid, m in media.items()} == sums
    sizes = {rel: (root / rel).stat().st_size for rel in sums}
    assert {pid: m.size for pid, m in media.items()} == sizes
    big = media["big/large-1.bin"]
    assert big.identifiers == {"filename": "large-1.bin"} and big.tag_list == ["ingested", "raw"]
    assert big.content_type == "application/octet-stream"
    assert media["d000/s00/f00000.txt"].content_type == "text/plain"
    # The bytes the API serves are the files' bytes.
    for rel in ["big/large-0.bin", "big/large-2.bin", "d000/s00/f00000.txt", "d005/s09/f00599.txt"]:
        assert content(api, rel) == (root / rel).read_bytes()
    # Each media was created once, by the acting user, with its event.
    events = MediaEvent.objects.filter(type="media.created")
    assert events.count() == SMALL + 3 and set(events.values_list("user", flat=True)) == {"alice"}
    assert set(Media.history.values_list("history_user__username", flat=True)) == {"alice"}
    objects = store_objects(store_type)
    assert len(objects) == SMALL + 3

    again = ingest(*args, "--identifier", "filename={name}", "--tags", "ingested,raw")
    assert again.startswith(f"stored 0, replaced 0, skipped {SMALL + 3}, failed 0; 0.0 MiB written"), again
    assert MediaEvent.objects.count() == SMALL + 3
    assert Media.history.count() == SMALL + 3
    assert store_objects(store_type) == objects


def test_a_changed_file_is_reported_and_replaced_only_when_asked(api, ingest_stores, tmp_path):
    root = tmp_path / "src"
    make_tree(root, small=30, big=0)
    args = [str(root), *ingest_stores["FilesystemStore"], "--pid-type", "local"]
    ingest(*args)
    changed = root / "d000/s01/f00012.txt"
    changed.write_bytes(b"new bytes")
    same_size = root / "d000/s02/f00020.txt"
    data = bytearray(same_size.read_bytes())
    data[-1] ^= 0xFF  # same size, other checksum
    same_size.write_bytes(bytes(data))
    before = {m.pid: (m.store_key, m.checksum) for m in Media.objects.all()}

    counted = ingest_counts()
    report, error = run_capturing_failure(*args)
    assert counted_since(counted) == {"stored": 0, "replaced": 0, "skipped": 28, "failed": 2, "bytes": 0}
    assert error.returncode == 1
    assert {m.pid: (m.store_key, m.checksum) for m in Media.objects.all()} == before
    assert report.startswith("stored 0, replaced 0, skipped 28, failed 2;"), report
    assert "FAILED d000/s01/f00012.txt (d000/s01/f00012.txt): differs from the stored media" in report
    assert "FAILED d000/s02/f00020.txt" in report

    counted = ingest_counts()
    replaced = ingest(*args, "--replace")
    assert replaced.startswith("stored 0, replaced 2, skipped 28, failed 0;"), replaced
    written = len(b"new bytes") + len(data)
    expected = {"stored": 0, "replaced": 2, "skipped": 28, "failed": 0, "bytes": written}
    assert counted_since(counted) == expected
    assert content(api, "d000/s01/f00012.txt") == b"new bytes"
    assert content(api, "d000/s02/f00020.txt") == bytes(data)
    media = Media.objects.get(pid="d000/s01/f00012.txt")
    assert media.checksum == "sha256:" + hashlib.sha256(b"new bytes").hexdigest()
    assert media.store_key != before["d000/s01/f00012.txt"][0]  # a fresh key, as PUT .../content does
    assert len(store_objects("FilesystemStore")) == 30  # the old objects were removed
    event = MediaEvent.objects.filter(pid=media.pid).last()
    assert (event.type, event.user) == ("media.bytes_stored", "alice")


def ingest_counts() -> dict[str, float]:
    """What /metrics would say of ingest in this process: files by result, and bytes."""
    from prometheus_client import REGISTRY

    results = ("stored", "replaced", "skipped", "failed")
    files = "mediastore_ingest_files_total"
    counts = {r: REGISTRY.get_sample_value(files, {"result": r}) or 0 for r in results}
    counts["bytes"] = REGISTRY.get_sample_value("mediastore_ingest_bytes_total") or 0
    return counts


def counted_since(before: dict[str, float]) -> dict[str, float]:
    return {name: value - before[name] for name, value in ingest_counts().items()}


def run_capturing_failure(*args) -> tuple[str, CommandError]:
    """Run the command expecting it to fail; its standard output and the error."""
    if "--workers" not in args:
        args = (*args, "--workers", WORKERS)
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("ingest", *args, "--user", "alice", "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue(), failed.value


def test_a_dry_run_writes_nothing(ingest_stores, tmp_path, settings):
    root = tmp_path / "src"
    make_tree(root, small=25, big=0)
    store_dir = tmp_path / "root" / "products"
    counts = (Media.objects.count(), MediaEvent.objects.count(), StoreConfig.objects.count())
    counted = ingest_counts()
    out = ingest(
        str(root), "--store", "FilesystemStore:new-one", "--create-store", "--pid-type", "local", "--dry-run"
    )
    assert out.startswith(
        "dry run, nothing written: would store 25, would replace 0, would skip 0, would fail 0"
    )
    out = ingest(str(root), *ingest_stores["FilesystemStore"], "--pid-type", "local", "--dry-run")
    assert "would store 25" in out
    assert (Media.objects.count(), MediaEvent.objects.count(), StoreConfig.objects.count()) == counts
    assert set(counted_since(counted).values()) == {0}  # a dry run counts nothing in /metrics
    assert not store_dir.exists() or not any(store_dir.rglob("*"))
    assert not (tmp_path / "root" / "new-one").exists()
    # A dry run checks the rules the writes would meet: pids the pattern refuses fail.
    IdentifierType.objects.create(name="strict", pattern=r"f000[01]\d")
    report, error = run_capturing_failure(
        str(root), *ingest_stores["FilesystemStore"], "--pid-type", "strict", "--pid", "{stem}", "--dry-run"
    )
    assert "would store 20, would replace 0, would skip 0, would fail 5" in report
    assert "FAILED d000/s02/f00024.txt (f00024): " in report and error.returncode == 1
    assert Media.objects.count() == counts[0]


def test_pid_and_identifier_templates(ingest_stores, tmp_path):
    root = tmp_path / "src"
    sums = make_tree(root, small=12, big=0, fanout=3)
    store = ingest_stores["FilesystemStore"]
    out = ingest(
        str(root),
        *store,
        "--pid-type",
        "local",
        "--pid",
        "run-{parent}/{stem}",
        "--identifier",
        "filename={name}",
        "--identifier",
        "ext={suffix}",
    )
    assert out.startswith("stored 12,"), out
    media = Media.objects.get(pid="run-d000/s01/f00004")
    assert media.identifiers == {"filename": "f00004.txt", "ext": ".txt"}

    Media.objects.all().delete()
    ingest(str(root), *store, "--pid-type", "local", "--pid", "sha256", "--identifier", "filename={relpath}")
    pids = {m.identifiers["filename"]: m.pid for m in Media.objects.all()}
    assert pids == {rel: digest.removeprefix("sha256:") for rel, digest in sums.items()}


def test_two_files_making_one_pid_fail_the_second(ingest_stores, tmp_path):
    root = tmp_path / "src"
    make_tree(root, small=6, big=0, fanout=3)  # f00000..f00002 in s00, f00003..f00005 in s01
    (root / "d000/s01/f00000.txt").write_bytes(b"same name, other folder")
    report, _ = run_capturing_failure(
        str(root), *ingest_stores["FilesystemStore"], "--pid-type", "local", "--pid", "name", "--workers", "1"
    )
    assert "stored 6," in report and "failed 1;" in report
    assert (
        "FAILED d000/s01/f00000.txt (f00000.txt): pid 'f00000.txt' is also made from 'd000/s00/f00000.txt'"
        in report
    )
    assert Media.objects.get(pid="f00000.txt").size != len(b"same name, other folder")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--store", "FilesystemStore:nowhere"], "no store configuration FilesystemStore 'nowhere'"),
        (["--store", "FilesystemStore"], "--store wants TYPE:BUCKET"),
        (
            ["--store", "FilesystemStore:products", "--pid-type", "nope"],
            "--pid-type nope: no identifier type of that name (there are: ext, filename, local); create it",
        ),
        (
            ["--store", "FilesystemStore:products", "--identifier", "nope={name}"],
            "--identifier nope: no identifier type of that name (there are: ext, filename, local)",
        ),
        (["--store", "FilesystemStore:products", "--pid", "{stem}{size}"], "names {size}"),
        (["--store", "FilesystemStore:products", "--in-place", "--user", "nobody"], "no user 'nobody'"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(ingest_stores, tmp_path, extra, message):
    (tmp_path / "a.txt").write_bytes(b"a")
    args = [str(tmp_path / "a.txt"), "--pid-type", "local", *extra]
    if "--user" not in extra:
        args += ["--user", "alice"]
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("ingest", *args, "--no-progress")
    assert Media.objects.count() == 0


def test_the_default_user_is_the_service_account_else_the_first_superuser(
    ingest_stores, tmp_path, django_user_model, monkeypatch
):
    (tmp_path / "a.txt").write_bytes(b"a")
    (tmp_path / "b.txt").write_bytes(b"b")
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    monkeypatch.delenv("DJANGO_SERVICEUSER_USERNAME", raising=False)
    call_command(
        "ingest",
        str(tmp_path / "a.txt"),
        "--store",
        "FilesystemStore:products",
        "--pid-type",
        "local",
        "--no-progress",
        stdout=io.StringIO(),
    )
    monkeypatch.setenv("DJANGO_SERVICEUSER_USERNAME", "alice")
    call_command(
        "ingest",
        str(tmp_path / "b.txt"),
        "--store",
        "FilesystemStore:products",
        "--pid-type",
        "local",
        "--no-progress",
        stdout=io.StringIO(),
    )
    users = dict(MediaEvent.objects.values_list("pid", "user"))
    assert users == {"a.txt": "root", "b.txt": "alice"}


def test_metadata_file_and_missing_store_created_on_request(ingest_stores, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"campaign": {"name": "c1"}, "n": 3}))
    out = ingest(
        str(tmp_path / "src"),
        "--store",
        "FilesystemStore:fresh",
        "--create-store",
        "--pid-type",
        "local",
        "--metadata",
        str(meta),
    )
    assert out.startswith("stored 1,")
    media = Media.objects.select_related("store_config").get()
    assert media.metadata == {"campaign": {"name": "c1"}, "n": 3}
    assert (media.store_config.type, media.store_config.bucket) == ("FilesystemStore", "fresh")
