"""manage.py ingest --in-place: files already inside a FilesystemStore's directory are registered
without copying a byte (the store directory's inode numbers stay as they were, no file is added)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from media.models import Media, MediaEvent, StoreStatus
from tests.content.ingest_tree import make_tree
from tests.content.test_ingest import content, ingest, run_capturing_failure

pytestmark = pytest.mark.django_db(transaction=True)


def snapshot(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every file below ``directory``: (inode, size, modification time in ns)."""
    result = {}
    for path in directory.rglob("*"):
        info = path.lstat()
        result[path.relative_to(directory).as_posix()] = (info.st_ino, info.st_size, info.st_mtime_ns)
    return result


@pytest.fixture
def store_dir(ingest_stores, tmp_path) -> Path:
    directory = tmp_path / "root" / "products"
    make_tree(directory / "incoming", small=300, big=1, big_mb=5)
    return directory


def test_files_inside_the_store_are_registered_without_a_copy(api, ingest_stores, store_dir):
    before = snapshot(store_dir)
    args = [
        str(store_dir / "incoming"),
        *ingest_stores["FilesystemStore"],
        "--pid-type",
        "local",
        "--in-place",
    ]
    out = ingest(*args, "--pid", "{relpath}", "--identifier", "filename={name}")
    assert out.startswith("stored 301, replaced 0, skipped 0, failed 0; 0.0 MiB written"), out
    assert snapshot(store_dir) == before  # same files, same inodes, nothing new (no temp files either)

    media = {m.pid: m for m in Media.objects.all()}
    assert len(media) == 301
    big = media["big/large-0.bin"]
    assert big.store_key == "incoming/big/large-0.bin" and big.store_status == StoreStatus.READY
    assert big.identifiers == {"filename": "large-0.bin"}
    assert content(api, "big/large-0.bin") == (store_dir / "incoming/big/large-0.bin").read_bytes()
    assert api.get("/api/media/d000/s03/f00031.txt/verify").json()["ok"] is True
    assert MediaEvent.objects.filter(type="media.created").count() == 301

    again = ingest(*args)
    assert again.startswith("stored 0, replaced 0, skipped 301, failed 0;"), again
    assert snapshot(store_dir) == before


def test_a_changed_file_in_place_is_reported_then_re_registered_with_replace(api, ingest_stores, store_dir):
    args = [
        str(store_dir / "incoming" / "d000"),
        *ingest_stores["FilesystemStore"],
        "--pid-type",
        "local",
        "--in-place",
    ]
    ingest(*args)
    changed = store_dir / "incoming/d000/s00/f00001.txt"
    changed.write_bytes(b"edited in place")
    report, error = run_capturing_failure(*args)
    assert (
        "failed 1;" in report
        and "FAILED s00/f00001.txt (s00/f00001.txt): differs from the stored media" in report
    )
    before = snapshot(store_dir)
    out = ingest(*args, "--replace")
    assert out.startswith("stored 0, replaced 1, skipped 99, failed 0"), out
    assert snapshot(store_dir) == before  # the file is kept where it is, as it is
    media = Media.objects.get(pid="s00/f00001.txt")
    assert media.store_key == "incoming/d000/s00/f00001.txt" and media.size == len(b"edited in place")
    assert content(api, "s00/f00001.txt") == b"edited in place"


def test_files_outside_the_store_and_symlinks_are_refused(ingest_stores, store_dir, tmp_path):
    outside = tmp_path / "elsewhere"
    make_tree(outside, small=3, big=0)
    link = store_dir / "incoming" / "link.txt"
    os.symlink(outside / "d000/s00/f00000.txt", link)
    before = snapshot(store_dir)
    report, error = run_capturing_failure(
        str(outside), str(link), *ingest_stores["FilesystemStore"], "--pid-type", "local", "--in-place"
    )
    assert error.returncode == 1
    assert "stored 0, replaced 0, skipped 1, failed 3;" in report
    assert "is not a file inside the directory of FilesystemStore 'products'" in report
    assert Media.objects.count() == 0 and snapshot(store_dir) == before


def test_in_place_needs_a_store_of_plain_files(ingest_stores, tmp_path):
    (tmp_path / "a.txt").write_bytes(b"a")
    with pytest.raises(CommandError, match="--in-place needs a store that keeps plain files"):
        call_command(
            "ingest",
            str(tmp_path / "a.txt"),
            *ingest_stores["BucketStore"],
            "--pid-type",
            "local",
            "--in-place",
            "--user",
            "alice",
        )
