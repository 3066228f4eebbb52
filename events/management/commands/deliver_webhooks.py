"""manage.py deliver_webhooks: POST the change events to webhooks (``events.webhook_delivery``)."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand, CommandError

from events.webhook_delivery import Deliverer


class Command(BaseCommand):
    help = (
        "Deliver the change events to every active webhook subscription, each in cursor order, signed, "
        "retrying failures with backoff and pausing a subscription after MEDIASTORE_WEBHOOK_MAX_ATTEMPTS. "
        "Runs until SIGTERM/SIGINT; --once delivers what is due and exits. Several may run on PostgreSQL "
        "(each leases a subscription at a time); on SQLite one delivers and the others wait."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Deliver what is due now, then exit.")
        parser.add_argument(
            "--poll-seconds", type=float, default=1.0, help="Pause when nothing is due (default 1)."
        )
        parser.add_argument("--max-seconds", type=float, default=None, help="Stop after this long (tests).")

    def handle(self, *args, once: bool, poll_seconds: float, max_seconds: float | None, **options) -> None:
        if poll_seconds <= 0:
            raise CommandError("--poll-seconds must be positive")
        deliverer = Deliverer(poll_seconds=poll_seconds, log=self.say)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: deliverer.stop())
        handled = deliverer.run(once=once, max_seconds=max_seconds)
        self.say(f"{handled} events handled")

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
