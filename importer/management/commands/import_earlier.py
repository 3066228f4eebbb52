"""manage.py import_earlier: move a site over from the earlier mediastore server (see docs/moving-over.md)."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from importer.apply import Importer
from importer.paths import PathMap
from importer.plan import Plan, make_plan
from importer.source import Source, SourceError


class Command(BaseCommand):
    help = (
        "Import the earlier mediastore server's database (identifier types, S3 and store configs, media "
        "with tags and history, users, passwords and tokens). Reads the source read-only. Without --apply "
        "it only reports what it would do."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--source", required=True, help="sqlite:///abs/path/db.sqlite3 or postgres://u:p@h:port/db"
        )
        parser.add_argument("--apply", action="store_true", help="Write; without it nothing is written.")
        parser.add_argument(
            "--map-path",
            action="append",
            default=[],
            metavar="OLD=NEW",
            help="A local store's old absolute path (or its prefix) and our bucket (below the storage root).",
        )
        parser.add_argument(
            "--copy-bytes", action="store_true", help="Copy local objects missing here from the OLD paths."
        )
        parser.add_argument(
            "--skip-unmapped", action="store_true", help="Leave out the media of stores no --map-path covers."
        )
        parser.add_argument(
            "--accept-bad-patterns",
            action="store_true",
            help="Import identifier types whose pattern RE2 refuses with no pattern.",
        )
        parser.add_argument(
            "--group", default="admins", help="Group of the imported users who are not superusers (admins)."
        )
        parser.add_argument("--batch-size", type=int, default=500, help="Media per transaction (500).")

    def handle(self, *args, **options) -> None:
        console = Console(file=self.stdout, highlight=False, soft_wrap=True)
        try:
            paths = PathMap.parse(options["map_path"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        if not Group.objects.filter(name=options["group"]).exists():
            raise CommandError(f"no group {options['group']!r} here (readers, writers and admins exist)")
        try:
            source = Source(options["source"])
        except SourceError as exc:
            raise CommandError(str(exc)) from None
        try:
            snap = source.read()
        finally:
            source.close()
        plan = make_plan(
            snap,
            paths,
            accept_bad_patterns=options["accept_bad_patterns"],
            skip_unmapped=options["skip_unmapped"],
            group=options["group"],
        )
        console.print(f"Source: {source.safe_url}")
        show_plan(console, plan)
        if not options["apply"]:
            console.print("Dry run: nothing was written. Run again with --apply to import.")
            return
        if plan.blocking:
            raise CommandError(f"{len(plan.blocking)} blocking problem(s) above: nothing was written")
        importer = Importer(
            snap,
            plan,
            group=options["group"],
            copy_bytes=options["copy_bytes"],
            batch_size=options["batch_size"],
        )
        columns = [TextColumn("importing media"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("media", total=importer.total)
            importer.advance = lambda n: progress.advance(task, n)
            summary = importer.run()
        table = Table(title="Imported")
        table.add_column("kind")
        table.add_column("count", justify="right")
        for kind, count in summary.done.items():
            table.add_row(kind, str(count))
        console.print(table)
        for line in summary.problems:
            console.print(f"  problem: {line}")
        console.print(f"Done: {len(snap.media)} media read, {summary.done['media']} imported.")


def show_plan(console: Console, plan: Plan) -> None:
    table = Table(title="Plan (new: to import; identical: here already; differs: here, ours kept; skipped)")
    table.add_column("kind")
    for outcome in ("new", "identical", "differs", "skipped"):
        table.add_column(outcome, justify="right")
    for kind, counts in plan.counts.items():
        table.add_row(kind, *(str(counts.get(o, 0)) for o in ("new", "identical", "differs", "skipped")))
    console.print(table)
    for title, lines in [
        ("Blocking (--apply refuses while any is left)", plan.blocking),
        ("Conflicts (ours kept, not overwritten)", plan.conflicts),
        ("Problems (left out)", plan.problems),
        ("Warnings", plan.warnings),
    ]:
        if lines:
            console.print(f"{title}: {len(lines)}")
            for line in lines:
                console.print(f"  - {line}")
