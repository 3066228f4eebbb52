"""manage.py relay_events: publish the change events to RabbitMQ, in order (``events.relay``)."""

from __future__ import annotations

import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from events.relay import Relay, RelayBusy, RelayRefused


class Command(BaseCommand):
    help = (
        "Publish every change event, in order, to the RabbitMQ at MEDIASTORE_AMQP_URL (topic exchange "
        "MEDIASTORE_AMQP_EXCHANGE, routing key = event type), marking each published once the broker "
        "confirmed it. Runs until SIGTERM/SIGINT; reconnects by itself while the broker is unreachable, and "
        "exits 1 when it refuses the credentials or permissions."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=100, help="Events per batch (default 100).")
        parser.add_argument(
            "--poll-seconds", type=float, default=0.5, help="Pause when nothing is left to publish (0.5)."
        )
        parser.add_argument("--max-seconds", type=float, default=None, help="Stop after this long (tests).")
        parser.add_argument(
            "--exit-when-idle", action="store_true", help="Stop once every event is published (tests, cron)."
        )

    def handle(
        self, *args, batch_size: int, poll_seconds: float, max_seconds, exit_when_idle: bool, **options
    ):
        if not settings.MEDIASTORE_AMQP_URL:
            raise CommandError("MEDIASTORE_AMQP_URL is not set: no broker to publish to")
        if batch_size < 1 or poll_seconds <= 0:
            raise CommandError("--batch-size must be at least 1 and --poll-seconds positive")
        relay = Relay(
            settings.MEDIASTORE_AMQP_URL,
            settings.MEDIASTORE_AMQP_EXCHANGE,
            durable=settings.MEDIASTORE_AMQP_EXCHANGE_DURABLE,
            batch_size=batch_size,
            poll_seconds=poll_seconds,
            log=self.say,
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: relay.stop())
        try:
            relay.run(max_seconds=max_seconds, exit_when_idle=exit_when_idle)
        except (RelayBusy, RelayRefused) as exc:
            raise CommandError(str(exc)) from None

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
