import json
import signal
import sys
import threading
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from content.ingest import IngestPlan, Outcome, find_sources
from content.ingest_runner import Ingest, Summary, acting_user, find_store
from mediastore.errors import MediastoreError

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # what a shell reports for a command stopped by SIGINT


class Command(BaseCommand):
    help = (
        "Register and store existing files (directory trees) as media of one store, through the same "
        "services as the API (checksum, atomic switch, history, events). A rerun skips what is already "
        "stored with the same size and checksum; Ctrl-C stops cleanly and a rerun resumes."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or directories")
        parser.add_argument(
            "--store", required=True, metavar="TYPE:BUCKET", help="e.g. FilesystemStore:products"
        )
        parser.add_argument("--s3-url", default="", help="the S3 configuration's url (BucketStore only)")
        parser.add_argument(
            "--create-store",
            action="store_true",
            help="create the store configuration when it does not exist",
        )
        parser.add_argument("--pid-type", required=True, metavar="T", help="identifier type of the pids")
        parser.add_argument(
            "--pid",
            default="relpath",
            help="relpath (default), name, sha256, or a template of {relpath} {name} {stem} {suffix} "
            "{parent} {root} {sha256}, e.g. '{parent}/{stem}'",
        )
        parser.add_argument(
            "--identifier",
            action="append",
            default=[],
            metavar="NAME=TEMPLATE",
            help="an identifier from a template, e.g. filename={name} (repeatable)",
        )
        parser.add_argument("--tags", default="", help="comma-separated tags for every media")
        parser.add_argument(
            "--metadata", type=Path, metavar="FILE.json", help="a JSON object for every media"
        )
        parser.add_argument(
            "--workers", type=int, default=4, help="files stored at once (threads; default 4)"
        )
        parser.add_argument("--dry-run", action="store_true", help="write nothing; say what would happen")
        parser.add_argument(
            "--in-place",
            action="store_true",
            help="the files already lie inside the store's directory (FilesystemStore): register them "
            "without copying (read once for the checksum); the store owns them from then on",
        )
        parser.add_argument(
            "--replace", action="store_true", help="replace the bytes of media whose file has changed"
        )
        parser.add_argument(
            "--user",
            help="account the history and events name (default: the service account of "
            "DJANGO_SERVICEUSER_USERNAME when it exists, else the first superuser)",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="no progress bar (none when not a TTY)"
        )

    def handle(self, *args, **opts):
        if opts["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        try:
            plan = self.plan(opts)
        except MediastoreError as exc:
            raise CommandError(exc.message) from None
        missing = [str(p) for p in opts["paths"] if not p.exists() and not p.is_symlink()]
        if missing:
            raise CommandError(f"no such file or directory: {', '.join(missing)}")
        sources, others = find_sources(opts["paths"])
        total = sum(source.size for source in sources)
        console = Console(file=sys.stderr)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[files]}/{task.fields[all_files]} files"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=opts["no_progress"] or not console.is_terminal,
        )
        task = progress.add_task("ingest", total=total or None, files=0, all_files=len(sources))
        done = [0]

        def on_result(result):
            done[0] += 1
            progress.update(task, files=done[0])
            if opts["verbosity"] >= 2:
                progress.console.print(
                    f"{result.outcome}: {result.source.relpath} -> {result.pid} {result.detail}"
                )

        ingest = Ingest(
            plan,
            sources,
            workers=opts["workers"],
            on_bytes=lambda n: progress.advance(task, n),
            on_result=on_result,
        )
        with progress, self.sigint_stops(ingest):
            summary = ingest.run()
        summary.results.extend(others)
        self.report(summary, total, plan.dry_run)

    def plan(self, opts) -> IngestPlan:
        user = acting_user(opts["user"], replace=opts["replace"])
        store = find_store(
            opts["store"],
            s3_url=opts["s3_url"],
            create=opts["create_store"],
            dry_run=opts["dry_run"],
            user=user,
        )
        identifiers = {}
        for spec in opts["identifier"]:
            name, sep, template = spec.partition("=")
            if not sep or not name:
                raise CommandError(f"--identifier wants NAME=TEMPLATE, got {spec!r}")
            identifiers[name] = template
        metadata = {}
        if opts["metadata"] is not None:
            try:
                metadata = json.loads(opts["metadata"].read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"--metadata {opts['metadata']}: {exc}") from None
            if not isinstance(metadata, dict):
                raise CommandError(f"--metadata {opts['metadata']}: must hold a JSON object")
        return IngestPlan(
            store=store,
            pid_type=opts["pid_type"],
            pid=opts["pid"],
            identifiers=identifiers,
            tags=[tag for tag in opts["tags"].split(",") if tag.strip()],
            metadata=metadata,
            in_place=opts["in_place"],
            replace=opts["replace"],
            dry_run=opts["dry_run"],
            user=user,
        )

    def sigint_stops(self, ingest: Ingest):
        """While the ingest runs, the first Ctrl-C stops it cleanly; a second one is a plain Ctrl-C."""
        command = self

        class Handler:
            def __enter__(self):
                self.previous = None
                if threading.current_thread() is threading.main_thread():
                    self.previous = signal.signal(signal.SIGINT, self.handle)

            def handle(self, signum, frame):
                command.stderr.write("stopping: abandoning files in flight (Ctrl-C again to quit at once)")
                ingest.stop()
                signal.signal(signal.SIGINT, self.previous or signal.default_int_handler)

            def __exit__(self, *exc):
                if self.previous is not None:
                    signal.signal(signal.SIGINT, self.previous)

        return Handler()

    def report(self, summary: Summary, total: int, dry_run: bool) -> None:
        counts = [(outcome, summary.count(outcome)) for outcome in Outcome]
        if dry_run:
            head = "dry run, nothing written: " + ", ".join(
                f"would {DRY_VERBS[outcome]} {n}" for outcome, n in counts if outcome != Outcome.INTERRUPTED
            )
        else:
            head = (
                ", ".join(f"{outcome} {n}" for outcome, n in counts if n or outcome != Outcome.INTERRUPTED)
                + f"; {mib(summary.written)} written"
            )
        if summary.not_started:
            head += f"; not started {summary.not_started}"
        seconds = max(summary.seconds, 1e-6)
        self.stdout.write(
            f"{head}; {len(summary.results)} files, {mib(total)} in {summary.seconds:.1f} s "
            f"({mib(total / seconds)}/s, {len(summary.results) / seconds:.0f} files/s)"
        )
        for result in summary.failures:
            pid = f" ({result.pid})" if result.pid else ""
            self.stdout.write(f"FAILED {result.source.relpath}{pid}: {result.detail}")
        if summary.stopped:
            raise CommandError(
                "interrupted: nothing half-written was kept; run the same command again to resume",
                returncode=EXIT_INTERRUPTED,
            )
        if summary.failures:
            raise CommandError(f"{len(summary.failures)} files failed (listed above)", returncode=EXIT_FAILED)
        if summary.not_started:  # not stopped, yet files were left: a worker ended on an error (logged)
            raise CommandError(
                f"{summary.not_started} files were not ingested (a worker failed; see the log): run the same "
                "command again to resume",
                returncode=EXIT_FAILED,
            )


DRY_VERBS = {
    Outcome.STORED: "store",
    Outcome.REPLACED: "replace",
    Outcome.SKIPPED: "skip",
    Outcome.FAILED: "fail",
}


def mib(size: float) -> str:
    return f"{size / (1 << 20):.1f} MiB"
