"""FilesystemStore and HashdirStore: their files on disk."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
from pathlib import Path

import pytest

from mediastore.errors import RuleViolation
from stores.backends import (
    ObjectNotFound,
    build_backend,
    filesystem,
)
from stores.backends.filesystem import TEMP_PREFIX
from stores.backends.hashdir import encode_filename
from stores.paths import resolve_key_path
from tests.stores.backends.conftest import PATTERN, TrickleStream, assert_absent, payload

# -- filesystem and hashdir ---------------------------------------------------------------------


def test_filesystem_store_keeps_one_file_per_key(storage_root: Path) -> None:
    backend = build_backend("FilesystemStore", "files")
    backend.put("a/b/c.txt", b"content")
    backend.put_stream("top", io.BytesIO(b"streamed"))

    assert (storage_root / "files" / "a" / "b" / "c.txt").read_bytes() == b"content"
    assert (storage_root / "files" / "top").read_bytes() == b"streamed"
    assert sorted(p.name for p in (storage_root / "files").iterdir()) == ["a", "top"]  # no temp files left


def test_filesystem_store_leaves_no_temp_file_after_a_failed_stream(storage_root: Path) -> None:
    backend = build_backend("FilesystemStore", "files")
    backend.put("dir/other", b"x")

    with pytest.raises(ConnectionResetError):
        backend.put_stream("dir/new", TrickleStream(payload(10_000), step=1000, fail_after=5000))

    assert [p.name for p in (storage_root / "files" / "dir").iterdir()] == ["other"]


def test_a_write_passes_over_a_temporary_name_already_taken(storage_root: Path, monkeypatch) -> None:
    """Temporary files are named by process id, a counter and random bits (no longer by
    ``tempfile.mkstemp``): a file left under the next name is passed over and kept, and the object
    is readable by its owner alone, as with mkstemp."""
    backend = build_backend("FilesystemStore", "files")
    backend.put("a/first", b"1")
    directory = storage_root / "files" / "a"
    monkeypatch.setattr(filesystem, "_temp_numbers", itertools.count())
    monkeypatch.setattr(filesystem, "_temp_random", lambda: "same")
    stale = [directory / f"{TEMP_PREFIX}{os.getpid()}-{n}-same" for n in range(2)]
    for path in stale:
        path.write_bytes(b"left behind")

    backend.put("a/second", b"2")

    assert backend.get("a/second") == b"2"
    assert all(path.read_bytes() == b"left behind" for path in stale)
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["first", "second", *(p.name for p in stale)]
    )
    assert {(directory / name).stat().st_mode & 0o777 for name in ("first", "second")} == {0o600}


def test_temporary_names_cannot_be_guessed(tmp_path: Path, monkeypatch) -> None:
    """A client may name a media's key itself: a temporary name it could guess (process id and
    counter alone) would let it overwrite, delete or read another client's upload in flight."""
    names = []
    for _ in range(2):
        monkeypatch.setattr(filesystem, "_temp_numbers", itertools.count())  # same process, same counter
        fd, name = filesystem._create_temp(tmp_path)
        os.close(fd)
        names.append(Path(name).name)
    prefix = f"{TEMP_PREFIX}{os.getpid()}-0-"
    assert all(name.startswith(prefix) and len(name) == len(prefix) + 12 for name in names), names
    assert names[0] != names[1]


def test_filesystem_directory_made_by_a_longer_key_is_no_object(storage_root: Path) -> None:
    backend = build_backend("FilesystemStore", "files")
    backend.put("a/b", b"x")

    assert_absent(backend, "a")
    assert backend.get("a/b") == b"x"


@pytest.mark.parametrize("kind", ["FilesystemStore", "HashdirStore"])
def test_symlinks_inside_a_store_are_not_followed_out(kind: str, storage_root: Path) -> None:
    backend = build_backend(kind, "store")
    directory = storage_root / "store"
    directory.mkdir(parents=True)
    (directory / "etc").symlink_to("/etc")
    (directory / "pw").symlink_to("/etc/passwd")

    if kind == "FilesystemStore":
        with pytest.raises(RuleViolation):
            backend.get("etc/passwd")
        with pytest.raises(RuleViolation):
            backend.get("pw")
        with pytest.raises(RuleViolation):
            backend.put("etc/mediastore-evil", b"x")
    else:
        # Hashdir keys never name paths: "etc/passwd" is one encoded file name, not a lookup in /etc.
        with pytest.raises(ObjectNotFound):
            backend.get("etc/passwd")
        # A hash directory replaced by a symlink out of the store is refused.
        digest = hashlib.sha256(b"victim").hexdigest()
        (directory / digest[:2]).symlink_to("/etc")
        with pytest.raises(RuleViolation):
            backend.get("victim")
        with pytest.raises(RuleViolation):
            backend.put("victim", b"x")
    assert not Path("/etc/mediastore-evil").exists()


def test_a_key_resolves_as_realpath_resolves_it(tmp_path: Path) -> None:
    """``resolve_key_path`` looks only at the key's own parts (issue 34 item 6): its answer must be
    ``os.path.realpath``'s, or the same refusal, whatever the key meets: missing parts, a file where
    a directory would be, symlinks staying inside (also through a symlinked store directory) or
    leading out, a symlink back to the store itself, a loop."""
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    real = tmp_path / "real"
    (real / "a" / "b").mkdir(parents=True)
    (real / "file").write_bytes(b"x")
    (real / "a" / "in").symlink_to(real / "a" / "b")
    (real / "a" / "rel").symlink_to("b")
    (real / "out").symlink_to(outside)
    (real / "self").symlink_to(real)
    (real / "up").symlink_to("..")
    (real / "loop").symlink_to("loop")
    (tmp_path / "alias").symlink_to(real)
    keys = ["new", "a/b/c", "a/new/c", "file", "file/c", "a/in/c", "a/rel/c", "a/in", "out/sub/x"]
    keys += ["self", "self/a", "up", "up/real/a", "loop", "loop/x"]

    for directory in (real, tmp_path / "alias"):
        base = os.path.realpath(directory)
        for key in keys:
            expected = os.path.realpath(os.path.join(base, key))
            if expected.startswith(base + os.sep):
                assert resolve_key_path(directory, key) == Path(expected), key
            else:
                with pytest.raises(RuleViolation, match="resolves outside its store"):
                    resolve_key_path(directory, key)


def test_hashdir_store_spreads_keys_over_hash_directories(storage_root: Path) -> None:
    backend = build_backend("HashdirStore", "hashed")
    keys = [f"product/{index:03d}.fits" for index in range(200)]
    for key in keys:
        backend.put(key, key.encode())

    directory = storage_root / "hashed"
    files = [path for path in directory.rglob("*") if path.is_file()]
    assert len(files) == 200
    assert len({path.relative_to(directory).parts[0] for path in files}) > 100
    for key in keys[:5]:
        digest = hashlib.sha256(key.encode()).hexdigest()
        path = directory / digest[:2] / digest[2:4] / key.replace("/", "%2F")
        assert path.read_bytes() == key.encode()
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        {f.relative_to(directory).parts[0] for f in files}
    )


def test_hashdir_file_names_are_unique_and_safe() -> None:
    digest = "f" * 64
    assert encode_filename("a/b", digest) == "a%2Fb"
    assert encode_filename(".", digest) == "%2E"
    assert encode_filename("..x", digest) == "%2E.x"
    assert encode_filename(".tmp-1", digest) != ".tmp-1"
    long_name = encode_filename("k" * 1000, digest)
    assert len(long_name) <= 200 and long_name.endswith("%%" + digest)
    assert encode_filename("k" * 1000, digest) != encode_filename("k" * 999, "e" * 64)


def test_hashdir_store_keeps_keys_too_long_for_one_file_name(storage_root: Path) -> None:
    backend = build_backend("HashdirStore", "hashed")
    backend.put("k" * 1000, b"long")
    backend.put("k" * 999, b"shorter")

    assert backend.get("k" * 1000) == b"long"
    assert backend.get("k" * 999) == b"shorter"
    with pytest.raises(RuleViolation):
        backend.put(".", b"dot")  # '.' parts are refused for every store type alike


def test_iterator_close_releases_the_file_even_before_iteration(storage_root: Path) -> None:
    backend = build_backend("FilesystemStore", "files")
    backend.put("k", PATTERN)
    before = len(os.listdir("/proc/self/fd"))

    chunks = backend.iter_bytes("k", chunk_size=100)
    assert len(os.listdir("/proc/self/fd")) == before + 1
    chunks.close()

    assert len(os.listdir("/proc/self/fd")) == before
    assert list(chunks) == []


def test_filesystem_store_streams_a_large_object_across_writeback_steps(
    storage_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stores.backends import filesystem

    monkeypatch.setattr(filesystem, "WRITEBACK_STEP", 64 * 1024)  # many steps in a small object
    data = payload(1_000_003)
    backend = build_backend("FilesystemStore", "files")

    written = backend.put_stream("big", TrickleStream(data, step=50_000))

    assert written == len(data)
    assert (storage_root / "files" / "big").read_bytes() == data
    assert [p.name for p in (storage_root / "files").iterdir()] == ["big"]  # no temp file left
