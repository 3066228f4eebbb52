"""Under pytest-xdist (``bin/test`` with workers, ``-n``) the live tests run in one worker, one after
another (tests/support/xdist_live.py): every e2e test is where that rule finds it, and a small
suite run on two workers shows the rule at work (it depends on xdist's scheduling by scope)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.xdist_live import is_live

ROOT = Path(__file__).resolve().parent.parent


def test_every_e2e_test_is_a_live_one():
    env = {**os.environ, "MEDIASTORE_ENV_FILE": ""}
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "e2e"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    nodeids = [line for line in done.stdout.splitlines() if "::" in line]
    assert len(nodeids) > 50
    assert [nodeid for nodeid in nodeids if not is_live(nodeid)] == []


SUITE = {
    "conftest.py": "from tests.support.xdist_live import pytest_xdist_make_scheduler  # noqa: F401\n",
    "pytest.ini": "[pytest]\naddopts = --dist loadgroup\n",
    "tests/deploy/test_server.py": "".join(f"def test_s{i}():\n    pass\n\n\n" for i in range(4)),
    "tests/content/test_ingest_live.py": "".join(f"def test_i{i}():\n    pass\n\n\n" for i in range(4)),
    "tests/media/test_plain.py": "".join(f"def test_p{i}():\n    pass\n\n\n" for i in range(8)),
}


def test_the_live_tests_of_a_run_on_two_workers_share_one(tmp_path):
    for name, text in SUITE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-v", "-n", "2", "-p", "no:cacheprovider", "-p", "no:django"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = re.findall(r"^\[(gw\d)\] .*PASSED (\S+)", done.stdout, re.M)
    assert len(ran) == 16, done.stdout
    live_workers = {worker for worker, nodeid in ran if is_live(nodeid)}
    assert len(live_workers) == 1, ran
    live = [nodeid for _worker, nodeid in ran if is_live(nodeid)]
    assert live == sorted(live, key=lambda nodeid: (nodeid.split("::")[0], nodeid)), "in collection order"
