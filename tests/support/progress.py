"""Progress of a long test run, per file: what will run, about how long it takes, and where it is.

A pytest plugin that ``bin/test`` loads (``-p tests.support.progress``). Before the first test it
prints how many tests in how many files will run and, from the timings of the last run on this
machine, an estimate of the time; after each file, one line with that file's outcome and time, the
time so far and the time left. The timings live in ``.venv/mediastore-test-times.json`` (beside
the virtual environment, so per machine and never committed), one file's seconds per database
kind, updated at the end of each run.

Under pytest-xdist (``bin/test`` with workers) the plugin runs in the controlling process only: it
learns the tests from the workers' collection and each test's time from the reports they send, so
the lines are the same; the estimate and the time left are the files' times divided among the
workers.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest

TIMES = Path(__file__).resolve().parents[2] / ".venv" / "mediastore-test-times.json"


def _kind() -> str:
    return "postgresql" if os.environ.get("POSTGRES_DB") else "sqlite"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


class Progress:
    """Per file: tests left to finish, seconds spent (the setup, call and teardown times of its
    tests, as the reports say, so that tests running at once on several workers are not counted
    twice). pytest-django runs a file's tests in up to three groups (by how they use the database)
    and xdist spreads them over workers, so a file is done when its last test is."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.known: dict[str, float] = self._load().get(_kind(), {})
        self.left: dict[str, int] = {}  # file -> tests not finished yet
        self.spent: dict[str, float] = {}
        self.done: list[str] = []
        self.outcomes: dict[str, Counter] = {}
        self.started = time.monotonic()
        self.marks_on_line = False
        self.workers = 1

    def _load(self) -> dict:
        try:
            return json.loads(TIMES.read_text())
        except (OSError, ValueError):
            return {}

    def _say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            if self.marks_on_line:  # pytest's dots (or letters) of the tests so far end no line
                reporter.write("\n")
            reporter.write_line(f"--- {line}")
        self.marks_on_line = False

    def _time_left(self) -> float | None:
        """What the unfinished files took last time, less what they took so far; None when some
        file has no timing yet."""
        pending = [name for name, left in self.left.items() if left]
        if any(name not in self.known for name in pending):
            return None
        return sum(max(self.known[name] - self.spent.get(name, 0.0), 0.0) for name in pending) / self.workers

    def _collected(self, files: list[str]) -> None:
        """Say what will run: ``files`` holds each test's file, once per test."""
        for name in files:
            self.left[name] = self.left.get(name, 0) + 1
        workers = f" on {self.workers} workers" if self.workers > 1 else ""
        estimate = ""
        if self.left and all(name in self.known for name in self.left):
            took = sum(self.known[n] for n in self.left)
            estimate = f"; the last run of these took {_minutes(took)}"
            if self.workers > 1:
                estimate += f" of test time, about {_minutes(took / self.workers)} on {self.workers} workers"
        elif self.known:
            estimate = "; no estimate yet for some files (new since the last run)"
        self._say(f"{len(files)} tests in {len(self.left)} files on {_kind()}{workers}{estimate}")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.config.pluginmanager.has_plugin("dsession"):
            return  # the controller of xdist's workers collects nothing itself: see below
        self._collected([item.location[0] for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids: list[str]) -> None:
        """Each xdist worker collected ``ids`` (the same on every worker, or xdist stops)."""
        if self.left:
            return
        self.workers = max(int(self.config.getoption("numprocesses", 1) or 1), 1)
        self._collected([nodeid.split("::", 1)[0] for nodeid in ids])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.marks_on_line = self.marks_on_line or self.config.get_verbosity() <= 0
        name = report.location[0]
        self.spent[name] = self.spent.get(name, 0.0) + report.duration
        if report.when == "call" or report.outcome != "passed":
            self.outcomes.setdefault(name, Counter())[report.outcome] += 1

    def pytest_runtest_logfinish(self, nodeid: str, location) -> None:
        name = location[0]
        if name not in self.left:
            return
        self.left[name] -= 1
        if self.left[name] == 0:
            self.done.append(name)
            counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.outcomes.get(name, {}).items()))
            left = self._time_left()
            after = f", about {_minutes(left)} left" if left is not None else ""
            self._say(
                f"[{len(self.done)}/{len(self.left)}] {name}: {counts or 'nothing run'} in "
                f"{self.spent[name]:.1f} s ({_minutes(time.monotonic() - self.started)} so far{after})"
            )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        finished = {name: round(self.spent[name], 2) for name in self.done}
        if not finished:
            return
        everything = self._load()
        everything.setdefault(_kind(), {}).update(finished)
        try:
            TIMES.parent.mkdir(parents=True, exist_ok=True)
            TIMES.write_text(json.dumps(everything, indent=1, sort_keys=True))
        except OSError:
            pass  # no estimate next time, nothing worse


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controlling process reports for all of them
    config.pluginmanager.register(Progress(config), "mediastore-progress")
