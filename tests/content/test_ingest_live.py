"""manage.py ingest as a real process: Ctrl-C (SIGINT) in the middle stops it cleanly, with no
record claiming bytes that are not there and no partial object left, and a rerun completes it.

Runs on the suite's database kind: a throw-away PostgreSQL database when POSTGRES_DB is set, else
an SQLite file in the work directory (so several worker threads write at once, as in production).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.content.ingest_tree import make_tree
from tests.support.processes import REPO, Process
from tests.support.servers import ADMIN_USER, ThrowAwayDatabase, make_workdir, migrated_site, remove_workdir

pytestmark = pytest.mark.e2e

STATE = """
import json
from content.reads import verify
from media.models import Media, MediaEvent
from stores.models import StoreConfig
store = StoreConfig.objects.get(type="FilesystemStore", bucket="products")
media = list(Media.objects.select_related("store_config__s3cfg"))
objects = sorted(o.key for o in store.backend().list_objects())
print(json.dumps({
    "checksums": {m.pid: m.checksum for m in media},
    "pending": [m.pid for m in media if m.store_status != "READY"],
    "keys": sorted(m.store_key for m in media),
    "objects": objects,
    "bad": [m.pid for m in media if not verify(m)["ok"]],
    "users": sorted(set(MediaEvent.objects.values_list("user", flat=True))),
}))
"""

SETUP = """
from identifiers.models import IdentifierType
from stores.services import store_get_or_create
IdentifierType.objects.get_or_create(name="local", defaults={"pattern": ""})
store_get_or_create(type="FilesystemStore", bucket="products", user=None)
"""


@pytest.fixture
def site(tmp_path):
    """A migrated deployment of our own (database, data directory, superuser, identifier type,
    store); yields its environment."""
    workdir = make_workdir("ingest-live-")
    database = ThrowAwayDatabase() if os.environ.get("POSTGRES_DB") else None
    try:
        yield migrated_site(workdir, database, SETUP)
    finally:
        remove_workdir(workdir)
        if database:
            database.drop()


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{args[0]}: {done.stdout}\n{done.stderr}"
    return done.stdout


def state(env: dict[str, str]) -> dict:
    return json.loads(manage(env, "shell", "-c", STATE).strip().splitlines()[-1])


def test_sigint_stops_cleanly_and_a_rerun_completes(site, tmp_path):
    sums = make_tree(tmp_path / "src", small=1000, big=3, big_mb=20)  # interrupted after 300 of them
    total = len(sums)
    store_dir = os.path.join(site["MEDIASTORE_DATA_DIR"], "stores", "products")
    command = [
        sys.executable,
        "manage.py",
        "ingest",
        str(tmp_path / "src"),
        "--store",
        "FilesystemStore:products",
        "--pid-type",
        "local",
        "--workers",
        "4",
    ]

    run = Process("ingest", command, site, tmp_path / "first.log")
    deadline = time.monotonic() + 300
    while sum(len(files) for _, _, files in os.walk(store_dir)) < 300:  # well into the run
        assert run.proc.poll() is None, f"ingest ended before it was interrupted:\n{run.log()}"
        assert time.monotonic() < deadline, f"ingest made no progress:\n{run.log()}"
        time.sleep(0.05)
    run.stop(signal.SIGINT)
    first = run.log()
    assert run.proc.returncode == 130, first
    assert "interrupted: nothing half-written was kept; run the same command again to resume" in first
    assert "\x1b[" not in first  # no progress bar drawn when the output is not a terminal

    after = state(site)
    stored = len(after["checksums"])
    assert 300 <= stored < total, first
    assert after["pending"] == [] and after["bad"] == []
    assert after["objects"] == after["keys"]  # no partial object, no temporary file, no orphan
    assert all(sums[pid] == checksum for pid, checksum in after["checksums"].items())

    done = subprocess.run(command, cwd=REPO, env=site, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"stored {total - stored}, replaced 0, skipped {stored}, failed 0;"), (
        done.stdout
    )

    final = state(site)
    assert final["checksums"] == sums
    assert final["pending"] == [] and final["bad"] == []
    assert final["objects"] == final["keys"]
    # The acting user by default: $DJANGO_SERVICEUSER_USERNAME names no account here, so the superuser.
    assert final["users"] == [ADMIN_USER]


def test_a_crash_inside_a_batch_leaves_no_row_without_bytes_and_a_rerun_completes(site, tmp_path):
    """Ingest inserts new media in batches: a process killed inside a batch's transaction (the
    failpoint ends it after the rows are inserted, before the commit) leaves none of the batch's
    rows, and its objects are orphans that collect_orphans finds; a rerun stores everything."""
    sums = make_tree(tmp_path / "src", small=300, big=0, small_size=4096)
    command = [str(tmp_path / "src"), "--store", "FilesystemStore:products", "--pid-type", "local"]
    crashing = {**site, "MEDIASTORE_FAILPOINTS": "ingest.before_commit=crash"}
    done = subprocess.run(
        [sys.executable, "manage.py", "ingest", *command, "--workers", "2"],
        cwd=REPO,
        env=crashing,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 70, done.stdout + done.stderr  # failpoints' crash: os._exit(70)

    after = state(site)
    assert after["checksums"] == {} and after["keys"] == []  # no row of the batch was committed
    assert after["objects"], "the batch's bytes were written before its rows"
    listed = manage(site, "collect_orphans", "--older-than", "0", "--list")
    assert all(f"  {key}  4096" in listed for key in after["objects"]), listed

    again = manage(site, "ingest", *command, "--workers", "2")
    assert again.startswith("stored 300, replaced 0, skipped 0, failed 0;"), again
    final = state(site)
    assert final["checksums"] == sums and final["pending"] == [] and final["bad"] == []
    manage(site, "collect_orphans", "--older-than", "0", "--delete")
    assert state(site)["objects"] == final["keys"]  # the crash's orphans removed, nothing else
