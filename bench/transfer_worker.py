"""The server side of bench/transfer.py: gunicorn with one sync worker, and that worker's
resident memory (VmRSS polled, VmHWM reset where the kernel allows)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import REPO, HarnessError, Process, http_ok, tail

MIB = 1 << 20
POLL_SECONDS = 0.02


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


# ---------------------------------------------------------------------------------------------
# Resident memory of a process


def read_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in bytes."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, rest = line.split(":", 1)
                values[name] = int(rest.split()[0]) * 1024
    return values


def reset_hwm(pid: int) -> bool:
    """Reset the peak RSS (VmHWM) of ``pid`` to its current RSS; False where the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    status = read_status(pid)
    return status["VmHWM"] <= status["VmRSS"] + 4 * MIB


class RssSampler(threading.Thread):
    """Polls VmRSS of one process until stopped; ``peak`` is the largest value seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, read_status(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return  # the worker is gone; the operation will report the failure
            if self._stop_event.wait(POLL_SECONDS):
                return

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        with contextlib.suppress(OSError, KeyError):
            self.peak = max(self.peak, read_status(self.pid)["VmRSS"])
        return self.peak


# ---------------------------------------------------------------------------------------------
# Child processes: moto and gunicorn


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    return int(text.rpartition(")")[2].split()[1])


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and parent_of(int(entry)) == pid:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
                    found.append(int(entry))
    return found


class Gunicorn:
    """One gunicorn master with one sync worker; the worker's RSS is the server's."""

    def __init__(self, workdir: Path, env: dict[str, str], timeout: int) -> None:
        self.workdir = workdir
        self.env = env
        self.timeout = timeout
        self.out = workdir / "gunicorn.out"
        self.errorlog = workdir / "gunicorn.log"
        self.config = workdir / "gunicorn_bench.conf.py"
        self.process: Process | None = None
        self.url = ""

    @property
    def proc(self) -> subprocess.Popen:
        assert self.process is not None
        return self.process.proc

    def start(self) -> None:
        # An explicit config file, so the repository's gunicorn.conf.py (2 workers, 0.0.0.0) is not read.
        self.config.write_text("control_socket_disable = True\n")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "gunicorn", "-c", str(self.config), "--chdir", str(REPO)]
        command += ["-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}", "--timeout", str(self.timeout)]
        command += ["--error-logfile", str(self.errorlog), "mediastore.wsgi"]
        self.process = Process("gunicorn", command, self.env, self.out, cwd=self.workdir)
        self.wait_ready(120)

    def wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        try:
            self.process.wait_until(lambda: http_ok(f"{self.url}/api/health"), timeout, 0.2)
        except HarnessError as exc:
            raise BenchError(f"{exc}\n  gunicorn.log:\n{tail(self.errorlog)}") from None

    def worker_pid(self, timeout: float = 60) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise BenchError(
                    f"gunicorn exited with status {code}:\n{tail(self.errorlog)}\n{tail(self.out)}"
                )
            workers = children_of(self.proc.pid)
            if len(workers) == 1:
                return workers[0]
            time.sleep(0.05)
        raise BenchError(f"gunicorn has no single worker process:\n{tail(self.errorlog)}")

    def restart_worker(self) -> int:
        """Stop the worker; the master starts a fresh one. Returns its pid once it answers."""
        old = self.worker_pid()
        os.kill(old, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = children_of(self.proc.pid)
            if len(workers) == 1 and workers[0] != old:
                break
            time.sleep(0.05)
        else:
            raise BenchError(f"gunicorn did not replace its worker within 60 s:\n{tail(self.errorlog)}")
        self.wait_ready(120)
        return self.worker_pid()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
