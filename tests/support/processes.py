"""Processes of ours (gunicorn, moto, the relay): started in their own session with their output in
a log file, waited for, and stopped by their own pid (and process group), never by name."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


class HarnessError(Exception):
    """A process of the harness could not be started or did not get ready; the message says why
    (with the end of its log)."""


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log, indented, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"    (no {path.name})"
    kept = text.splitlines()[-lines:]
    return "\n".join(f"    | {line}" for line in kept) or f"    ({path.name} is empty)"


class Process:
    """A process of ours, its output appended to ``log``; ``cwd`` defaults to the repository."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log: Path, *, cwd: Path | None = None
    ) -> None:
        self.name = name
        self.log_path = log
        self._log = open(log, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            args,
            cwd=cwd or REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[str]:
        """The log's complete lines: one the process is still writing (no newline yet) is left out,
        so a caller polling for a line never reads half of it."""
        text = self.log()
        return text[: text.rfind("\n") + 1].splitlines()

    def lines_naming(self, marker: str, count: int, *, prefix: str = "", tries: int = 50) -> list[str]:
        """The complete log lines starting with ``prefix`` and holding ``marker``, once ``count`` of
        them are there (polled every 0.1 s: a worker logs a request's access line after its
        response went out), or as many as there are after ``tries`` polls."""
        found: list[str] = []
        for _ in range(tries):
            found = [line for line in self.log_lines() if line.startswith(prefix) and marker in line]
            if len(found) >= count:
                break
            time.sleep(0.1)
        return found

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float = 120, interval: float = 0.3) -> None:
        """Poll ``ready()`` until it is true (connection errors count as not yet); HarnessError
        with the log when the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log_path)}")
            try:
                if ready():
                    return
            except (requests.RequestException, OSError):
                pass
            time.sleep(interval)
        raise HarnessError(f"{self.name} not ready after {timeout:.0f} s:\n{tail(self.log_path)}")

    def stop(self, sig: int = signal.SIGTERM, grace: float = 30) -> None:
        """Signal the process, wait ``grace`` seconds, then kill its whole group."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def new_session(verify: bool | str = True) -> requests.Session:
    """A session that ignores the environment's CA bundle and proxy variables (they would
    override ``verify`` and route loopback requests elsewhere)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    return session


def fetch(url: str, verify: bool | str = True, **kw) -> requests.Response:
    """One GET outside any session, ignoring the environment's proxy and CA variables."""
    with new_session(verify) as session:
        return session.get(url, **{"timeout": 30, **kw})


def http_ok(url: str, verify: bool | str = True) -> bool:
    """Whether ``url`` answers 200."""
    return fetch(url, verify, timeout=5).status_code == 200
