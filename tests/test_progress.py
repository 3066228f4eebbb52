"""bin/test's progress lines (tests/support/progress.py), with and without pytest-xdist workers.

Regression: under xdist the controlling process collects nothing itself, so the plugin printed
no line at all, and every worker wrote the timings file on its own.
A small suite of two files runs in a pytest of its own, with the timings file in a temporary
directory (never the developer's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SUITE = {
    "test_one.py": "def test_a():\n    pass\n\n\ndef test_b():\n    pass\n",
    "test_two.py": (
        "import pytest\n\n\ndef test_c():\n    pass\n\n\n@pytest.mark.skip\ndef test_d():\n    pass\n"
    ),
}
RUN = (
    "import sys, pytest; from pathlib import Path; import tests.support.progress as progress; "
    "progress.TIMES = Path(sys.argv[1]); sys.exit(pytest.main(sys.argv[2:]))"
)


def run_suite(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    suite = tmp_path / "suite"
    if not suite.exists():
        suite.mkdir()
        (suite / "pytest.ini").write_text("[pytest]\n")
        for name, text in SUITE.items():
            (suite / name).write_text(text)
    # The timings are kept per database kind, which POSTGRES_DB names: "sqlite" here on both runs.
    env = {name: value for name, value in os.environ.items() if name != "POSTGRES_DB"}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-c", RUN, str(tmp_path / "times.json"), "-p", "no:cacheprovider"]
    command += ["-p", "no:django", "-p", "tests.support.progress", *args]
    return subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True, timeout=120)


def progress_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith("--- ")]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "two xdist workers"])
def test_each_file_gets_a_line_and_the_next_run_an_estimate(tmp_path, workers):
    first = progress_lines(run_suite(tmp_path, *workers))
    on = " on 2 workers" if workers else ""
    assert first[0] == f"--- 4 tests in 2 files on sqlite{on}"
    assert sorted(line.split("]")[0] for line in first[1:]) == ["--- [1/2", "--- [2/2"]
    assert any(" test_one.py: 2 passed in " in line for line in first[1:]), first
    assert any(" test_two.py: 1 passed, 1 skipped in " in line for line in first[1:]), first
    assert len(first) == 3

    times = json.loads((tmp_path / "times.json").read_text())
    assert sorted(times["sqlite"]) == ["test_one.py", "test_two.py"]

    second = progress_lines(run_suite(tmp_path, *workers))
    assert second[0].startswith(f"--- 4 tests in 2 files on sqlite{on}; the last run of these took ")
    if workers:
        assert second[0].endswith(" on 2 workers")
