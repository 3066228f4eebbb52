#!/usr/bin/env python
"""Benchmark: ``manage.py ingest`` beside a plain ``cp -r`` of the same tree, in the same run.

Two trees are generated in a throw-away directory (``tests/content/ingest_tree.py``): many small
files (10,000 by default, nested folders, tens of bytes to 3 KB, or all exactly ``--small-size``
bytes) and a few large ones (2 GiB in 4 files by default). For each tree it times:

- ``cp -r`` of the tree to another directory of the same disk (then removes the copy), and for
  reference the same followed by an fsync of every copied file (what ingest does per object);
- ``manage.py ingest`` of the tree into a FilesystemStore (a real process, ``--workers``);
- the same ingest again (a rerun: every file is read and checksummed, nothing is stored).

and prints files/s and MiB/s of each, the ratio ingest/cp, and PASS/FAIL against the target of
issue 12: large files ingested at least at 50% of cp's rate. Times are wall-clock for the whole
process, Django's start-up included. Unlike cp, ingest reads every byte for its SHA-256, fsyncs
every object before it switches a media to it, and writes a database row, its history and an
event per file: the small-file figure measures that bookkeeping. Its rate is judged against the
target of issue 34 (PASS/FAIL): small files ingested at 1,000 files/s or more on PostgreSQL, by the
command's own figure (first file to last, Django's start-up excluded).

``--baseline DIR`` (another checkout, e.g. the main branch's) times that checkout's ingest of the
small tree beside this one's, interleaved over ``--rounds`` rounds (the order flips each round) in
one throw-away deployment, each round into fresh stores, and prints both rates and their ratio,
and the CPU time of each ingest process per file (start-up taken off) and its ratio: the A/B figures
for a change to ingest on a noisy machine. The schema must be the same in both.

The deployment is set up the way the tests do it (``tests/support/``): its own data
directory, SQLite there (``--postgres``: a throw-away PostgreSQL database), ``migrate``,
``ensure_superuser``. Run from the repository root with the project's virtualenv::

    python bench/ingest.py                     # 10,000 small files and 2 GiB of large ones
    python bench/ingest.py --smoke             # a few seconds: 200 small files, 2 x 16 MiB
    python bench/ingest.py --small 2000 --large-mb 512 --large-files 2 --workers 2 --postgres
    python bench/ingest.py --postgres --only small --small 5000 --small-size 4096 --baseline ../main

Exit status: 0 when it ran (1 with ``--strict`` when the target failed), 2 when it could not run.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.content.ingest_tree import make_tree  # noqa: E402
from tests.support.postgres import PostgresDatabase  # noqa: E402
from tests.support.processes import HarnessError  # noqa: E402
from tests.support.servers import make_workdir, migrated_site, remove_workdir  # noqa: E402

MIB = 1 << 20
TARGET = 0.5  # large files: ingest at least this fraction of cp's MiB/s
SMALL_TARGET = 1000  # small files on PostgreSQL: files/s (issue 34)
SETUP = """
from identifiers.models import IdentifierType
from stores.services import store_get_or_create
IdentifierType.objects.get_or_create(name="bench", defaults={"pattern": ""})
for bucket in ("small", "large"):
    store_get_or_create(type="FilesystemStore", bucket=bucket, user=None)
"""


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


@dataclass
class Timing:
    what: str
    files: int
    size: int
    seconds: float

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds

    @property
    def mib_per_s(self) -> float:
        return self.size / MIB / self.seconds


def run(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 3600, cwd: Path = REPO
) -> tuple[float, str]:
    """Run a process to completion; (wall seconds, standard output). BenchError when it fails."""
    started = time.monotonic()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(args[:4])} ... exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return seconds, done.stdout


def manage(env: dict[str, str], *args: str, checkout: Path = REPO) -> tuple[float, str]:
    return run([sys.executable, "manage.py", *args], env, cwd=checkout)


def own_seconds(out: str) -> float | None:
    """The command's own figure: from the first file to the last, start-up excluded."""
    inside = re.search(r" in ([0-9.]+) s \(", out)
    return max(float(inside.group(1)), 0.01) if inside else None


def tree_stats(root: Path) -> tuple[int, int]:
    files = size = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(folder, name))
    return files, size


def fsync_tree(root: Path) -> None:
    """Flush every file of ``root`` to disk, as ingest does for each object it stores."""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def measure(env: dict[str, str], tree: Path, bucket: str, workdir: Path, workers: int) -> list[Timing]:
    files, size = tree_stats(tree)
    copy = workdir / f"cp-{bucket}"
    seconds, _ = run(["cp", "-r", str(tree), str(copy)])
    shutil.rmtree(copy)
    timings = [Timing("cp -r", files, size, seconds)]
    started = time.monotonic()
    run(["cp", "-r", str(tree), str(copy)])
    fsync_tree(copy)
    timings.append(Timing("cp -r, then fsync each", files, size, time.monotonic() - started))
    shutil.rmtree(copy)
    command = ["ingest", str(tree), "--store", f"FilesystemStore:{bucket}", "--pid-type", "bench"]
    command += ["--pid", f"{bucket}/{{relpath}}", "--workers", str(workers), "--no-progress"]
    seconds, out = manage(env, *command)
    if not out.startswith(f"stored {files}, "):
        raise BenchError(f"ingest did not store every file:\n{out}")
    timings.append(Timing("ingest", files, size, seconds))
    inside = own_seconds(out)
    if inside:
        timings.append(Timing("  (its run, no start-up)", files, size, inside))
    seconds, out = manage(env, *command)
    if not out.startswith(f"stored 0, replaced 0, skipped {files}, "):
        raise BenchError(f"the rerun did not skip every file:\n{out}")
    timings.append(Timing("ingest rerun (skips)", files, size, seconds))
    return timings


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def ingest_cpu(
    env: dict[str, str], checkout: Path, tree: Path, bucket: str, workers: int
) -> tuple[str, float]:
    """``checkout``'s ``manage.py ingest`` of ``tree`` into a new store ``bucket``: (its output, the
    CPU seconds of its process, start-up included)."""
    command = ["ingest", str(tree), "--store", f"FilesystemStore:{bucket}", "--create-store"]
    command += ["--pid-type", "bench", "--pid", f"{bucket}/{{relpath}}"]
    command += ["--workers", str(workers), "--no-progress"]
    before = children_cpu()
    _, out = manage(env, *command, checkout=checkout)
    return out, children_cpu() - before


def compare(env: dict[str, str], tree: Path, baseline: Path, workers: int, rounds: int) -> list[float]:
    """Interleaved A/B: ``baseline``'s ingest (A) and this checkout's (B) of the same tree, each
    round into fresh stores and pids; prints each round's files/s (the command's own figure) and
    the CPU time of the ingest process per file (its start-up, an ingest of an empty directory
    measured once per side, taken off), and returns the ratios B/A of the rates.

    On a machine shared with other work the wall-clock rate moves with the load; the CPU per file
    moves much less, so a change that saves Python work shows there first."""
    files, size = tree_stats(tree)
    empty = tree.parent / "ab-empty"
    empty.mkdir(exist_ok=True)
    startup = {
        side: ingest_cpu(env, checkout, empty, f"ab-empty-{side.lower()}", workers)[1]
        for side, checkout in (("A", baseline), ("B", REPO))
    }
    print(f"\nA/B, small files: A = {baseline}, B = {REPO}")
    print(f"  {files} files, {size / MIB:.1f} MiB, {rounds} rounds, the order flipped each round")
    print(f"  start-up CPU (an empty ingest, taken off): A {startup['A']:.2f} s, B {startup['B']:.2f} s")
    print(
        f"  {'round':>5} {'A files/s':>10} {'B files/s':>10} {'B/A':>6}"
        f" {'A CPU us/file':>14} {'B CPU us/file':>14} {'B/A':>6}"
    )
    ratios, cpu_ratios = [], []
    for n in range(rounds):
        rates, cpu = {}, {}
        for side in "AB" if n % 2 == 0 else "BA":
            checkout = baseline if side == "A" else REPO
            out, seconds = ingest_cpu(env, checkout, tree, f"ab-{side.lower()}{n}", workers)
            if not out.startswith(f"stored {files}, "):
                raise BenchError(f"ingest ({side}) did not store every file:\n{out}")
            rates[side] = files / (own_seconds(out) or 0.01)
            cpu[side] = max(seconds - startup[side], 0.0) / files * 1e6
        ratios.append(rates["B"] / rates["A"])
        cpu_ratios.append(cpu["B"] / max(cpu["A"], 1e-9))
        print(
            f"  {n + 1:5} {rates['A']:10.0f} {rates['B']:10.0f} {ratios[-1]:6.2f}"
            f" {cpu['A']:14.0f} {cpu['B']:14.0f} {cpu_ratios[-1]:6.2f}"
        )
    for what, values in (("files/s", ratios), ("CPU per file", cpu_ratios)):
        ordered = sorted(values)
        print(
            f"  {what}: median B/A {ordered[len(ordered) // 2]:.2f}"
            f" (min {ordered[0]:.2f}, max {ordered[-1]:.2f})"
        )
    return ratios


def report(name: str, timings: list[Timing]) -> float:
    """Print one tree's table; return ingest/cp in MiB/s."""
    cp = timings[0]
    files, size = cp.files, cp.size
    print(f"\n{name}: {files} files, {size / MIB:.1f} MiB")
    print(f"  {'':22} {'seconds':>9} {'files/s':>10} {'MiB/s':>9} {'vs cp':>7}")
    for t in timings:
        print(
            f"  {t.what:22} {t.seconds:9.2f} {t.files_per_s:10.1f} {t.mib_per_s:9.1f} "
            f"{t.mib_per_s / cp.mib_per_s:6.0%}"
        )
    ingest = next(t for t in timings if t.what == "ingest")
    return ingest.mib_per_s / cp.mib_per_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000, help="number of small files (default 10000)")
    parser.add_argument("--large-files", type=int, default=4, help="number of large files (default 4)")
    parser.add_argument("--large-mb", type=int, default=512, help="MiB per large file (default 512)")
    parser.add_argument(
        "--small-size", type=int, metavar="BYTES", help="every small file exactly this size (e.g. 4096)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: 200 small files, 2 x 16 MiB")
    parser.add_argument("--only", choices=["small", "large"], help="measure only this tree")
    parser.add_argument("--workers", type=int, default=4, help="ingest --workers (default 4)")
    parser.add_argument("--postgres", action="store_true", help="a throw-away PostgreSQL database")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="another checkout: its ingest timed beside",
    )
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds with --baseline (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    if args.smoke:
        args.small, args.large_files, args.large_mb = 200, 2, 16

    workdir = make_workdir("bench-ingest-")
    database = PostgresDatabase("mediastore_bench_ingest_") if args.postgres else None
    try:
        env = migrated_site(workdir, database, SETUP)
        small, large = workdir / "small", workdir / "large"
        make_tree(small, small=0 if args.only == "large" else args.small, big=0, small_size=args.small_size)
        make_tree(large, small=0, big=0 if args.only == "small" else args.large_files, big_mb=args.large_mb)
        for tree in (small, large):  # so no copy pays for writing back the generated trees
            fsync_tree(tree)
        print(
            f"mediastore ingest benchmark: {'PostgreSQL' if database else 'SQLite'}, "
            f"--workers {args.workers}, {os.cpu_count()} CPUs, load average "
            f"{' '.join(f'{n:.2f}' for n in os.getloadavg())}, work directory {workdir}"
        )
        failed = False
        if args.only != "large":
            timings = measure(env, small, "small", workdir, args.workers)
            report("small files", timings)
            rate = next(t for t in timings if t.what.strip() == "(its run, no start-up)").files_per_s
            if database:
                verdict = "PASS" if rate >= SMALL_TARGET else "FAIL"
                failed = verdict == "FAIL"
                print(f"\n{verdict}: small files ingested at {rate:.0f} files/s on PostgreSQL", end="")
                print(f" (target: {SMALL_TARGET} files/s)")
            else:
                print(f"\nsmall files ingested at {rate:.0f} files/s on SQLite (no verdict:", end="")
                print(f" the target, {SMALL_TARGET} files/s, is PostgreSQL's)")
            if args.baseline:
                compare(env, small, args.baseline.resolve(), args.workers, args.rounds)
        if args.only == "small":
            return 1 if args.strict and failed else 0
        ratio = report("large files", measure(env, large, "large", workdir, args.workers))
        verdict = "PASS" if ratio >= TARGET else "FAIL"
        print(f"\n{verdict}: large files ingested at {ratio:.0%} of cp -r's MiB/s (target: {TARGET:.0%})")
        return 1 if args.strict and (failed or verdict == "FAIL") else 0
    except (BenchError, HarnessError) as exc:
        print(f"benchmark could not run: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            remove_workdir(workdir)
        if database:
            database.drop()


if __name__ == "__main__":
    sys.exit(main())
