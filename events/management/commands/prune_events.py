"""manage.py prune_events: delete change events older than the retention period."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Min
from django.utils import timezone

from events.models import WebhookSubscription
from media.outbox import prune


class Command(BaseCommand):
    help = (
        "Delete change events older than MEDIASTORE_EVENTS_RETENTION_DAYS (or --days). Feed "
        "consumers whose cursor is older than the oldest event kept then get 410 Gone. With "
        "MEDIASTORE_AMQP_URL set, events the relay has not published yet are kept, and so are the events "
        "an active webhook subscription has not had yet (a paused one's are not)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=float, default=None, help="Override the retention in days.")

    def handle(self, *args, days: float | None = None, **options) -> None:
        days = settings.MEDIASTORE_EVENTS_RETENTION_DAYS if days is None else days
        if days < 0:
            raise CommandError("--days must not be negative")
        # With a relay configured, an event it has not published yet is kept whatever its age.
        relay = bool(settings.MEDIASTORE_AMQP_URL)
        # Nor what an active webhook subscription has not had yet (a paused one waits for a person).
        behind = WebhookSubscription.objects.filter(active=True).aggregate(low=Min("last_seq"))["low"]
        keep_from = None if behind is None else behind + 1
        deleted = prune(timezone.now() - timedelta(days=days), keep_unpublished=relay, keep_from=keep_from)
        self.stdout.write(f"{deleted} events older than {days:g} days deleted")
