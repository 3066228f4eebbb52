"""manage.py replicate: the replication worker (``content.replication``)."""

from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from content import replication


class Command(BaseCommand):
    help = (
        "Copy the bytes of media replicas that are COPYING or STALE (and, with MEDIASTORE_AUTO_REPAIR, "
        "rewrite BAD and MISSING copies from a GOOD one), checking every copy against the media's SHA-256 "
        "before it is marked GOOD. Several workers may run at once. Runs until SIGTERM/SIGINT; --once does "
        "what is due and exits (exit status 1 when a copy failed)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Process what is due now, then exit.")
        parser.add_argument(
            "--poll-seconds", type=float, default=2.0, help="Pause when nothing is due (default 2)."
        )

    def handle(self, *args, once: bool, poll_seconds: float, verbosity: int, **options):
        if poll_seconds <= 0:
            raise CommandError("--poll-seconds must be positive")
        owner = replication.worker_name()
        say = self.say if verbosity > 0 else (lambda line: None)
        if once:
            done = replication.run_pass(owner, say=say)
            failed = done.count("failed")
            if verbosity > 0:
                self.say(
                    f"{done.count('good')} copied, {done.count('repaired')} repaired, {failed} failed, "
                    f"{done.count('stale')} left for new bytes"
                )
            if failed:
                raise CommandError(f"{failed} copies failed (retried later with backoff)", returncode=1)
            return
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        while not stopping:
            done = replication.run_pass(owner, say=say)
            if not done.results:
                connection.close()  # idle: hold no connection while waiting
                slept = 0.0
                while slept < poll_seconds and not stopping:
                    time.sleep(0.1)
                    slept += 0.1

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
