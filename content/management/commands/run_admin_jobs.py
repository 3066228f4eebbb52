"""Run the media list's background jobs that wait for a runner: queued ones, and running ones whose
runner stopped reporting (its process died), from where they stopped (``content.admin_jobs``)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from content import admin_jobs


class Command(BaseCommand):
    help = (
        "Run the admin's background jobs that have no live runner (queued, or stalled for "
        f"{int(admin_jobs.STALE.total_seconds())} s), each from its cursor to its end."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--job", type=int, help="Only this job.")

    def handle(self, *args, job: int | None = None, **options) -> None:
        pks = [job] if job else list(admin_jobs.claimable().values_list("pk", flat=True))
        ran = 0
        for pk in pks:
            ended = admin_jobs.run(pk)
            if ended is None:
                self.stdout.write(f"job {pk}: held by a live runner or ended; left alone")
                continue
            ran += 1
            self.stdout.write(f"job {pk}: {ended.state}, {ended.done} done, {ended.failed} failed")
        self.stdout.write(f"{ran} job(s) run")
