"""manage.py verify: the fixity audit (content.fixity) with a progress bar and a summary."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Sum
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from content import fixity
from media.models import StoreStatus
from media.selectors import media_find
from mediastore.errors import RuleViolation


class Command(BaseCommand):
    help = (
        "Re-read the stored bytes of READY media and compare them with their recorded size and SHA-256 "
        "checksum; record on each media when it was verified and the result. Failures are listed, sent "
        "as media.verify_failed events and shown on /status/; the exit status is 1 when any failed "
        "(130 after Ctrl-C). Replicas are checked too; with --repair failed copies are rewritten from a "
        "GOOD one, and the exit status is 1 only when one could not be."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--store",
            action="append",
            metavar="TYPE:BUCKET",
            help="only media of this store, e.g. FilesystemStore:archive (repeatable)",
        )
        parser.add_argument(
            "--older-than",
            metavar="AGE",
            help="only media never verified or last verified longer ago than AGE (30d, 12h, 90m, 2w)",
        )
        parser.add_argument("--pid", action="append", help="only this media (repeatable)")
        parser.add_argument("--workers", type=int, default=1, help="checks run in parallel (default 1)")
        parser.add_argument(
            "--no-progress", action="store_true", help="no progress bar (as when not on a terminal)"
        )
        parser.add_argument(
            "--repair",
            action="store_true",
            help="rewrite a failed copy (primary or replica) from a GOOD replica or primary, to a fresh key, "
            "and check it again; a media with no GOOD copy left is reported and left as it is",
        )

    def handle(self, *args, store, older_than, pid, workers, no_progress, repair, verbosity, **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        try:
            stores = [config for spec in store for config in fixity.stores_named(spec)] if store else None
            age = fixity.parse_age(older_than) if older_than else None
        except RuleViolation as exc:
            raise CommandError(exc.message) from None
        if pid:
            pid = self.named_media(pid)
        media = fixity.candidates(stores=stores, older_than=age, pids=pid)
        totals = media.aggregate(count=Count("pk"), size=Sum("size"))
        count, size = totals["count"], totals["size"] or 0
        console = Console(stderr=True)
        show = verbosity > 0 and not no_progress and console.is_terminal
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not show,
        ) as bar:
            task = bar.add_task(f"0/{count} media", total=size)
            done = 0

            def advance(outcome: fixity.Outcome, expected: int) -> None:
                nonlocal done
                done += 1
                bar.update(task, advance=expected, description=f"{done}/{count} media")
                if show and outcome.ok is False:
                    bar.console.print(f"[red]FAILED[/red] {outcome.pid}: {outcome.error}", markup=True)

            audit = fixity.run(media, workers=workers, progress=advance, repairs=repair)

        if verbosity > 0:
            self.stdout.write(
                f"verified {audit.media} media, {audit.bytes} bytes in {audit.seconds:.1f} s: "
                f"{audit.ok} ok, {len(audit.failures)} failed, {audit.skipped} skipped "
                "(deleted or no longer READY meanwhile)"
            )
            if audit.replicas:
                self.stdout.write(f"checked {audit.replicas} replicas of them")
            for failure in audit.failures:
                self.stdout.write(f"FAILED {failure.pid}: {failure.error}")
            for fixed in audit.repaired:
                self.stdout.write(f"REPAIRED {fixed.pid}")
            for broken in audit.unrepaired:
                self.stdout.write(f"NOT REPAIRED {broken.pid}: {broken.error}")
        if audit.interrupted:
            raise CommandError(
                f"interrupted after {audit.media} of {count} media; their results are recorded, and "
                "a rerun with --older-than skips them",
                returncode=130,
            )
        if audit.unrepaired or (audit.failures and not repair):
            raise CommandError(f"{len(audit.failures)} copies failed verification", returncode=1)

    def named_media(self, pids: list[str]) -> list[str]:
        """The stored pids of the media named with --pid; CommandError (exit 1) naming those that do
        not exist or have no bytes to verify, so that a typo is not a run that verified nothing."""
        found = {pid: media for pid in pids if (media := media_find(pid)) is not None}
        missing = [pid for pid in pids if pid not in found]
        if missing:
            raise CommandError(f"no media with pid {', '.join(map(repr, missing))}; nothing was verified")
        pending = [pid for pid, media in found.items() if media.store_status != StoreStatus.READY]
        if pending:
            raise CommandError(
                f"media {', '.join(map(repr, pending))} have no stored bytes yet (PENDING); "
                "nothing was verified"
            )
        return [media.pid for media in found.values()]
