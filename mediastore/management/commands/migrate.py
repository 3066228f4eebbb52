"""``manage.py migrate`` holding the start-up lock (mediastore/startlock.py), so that API hosts
starting together apply each migration once."""

from __future__ import annotations

from django.core.management.commands.migrate import Command as DjangoMigrate

from mediastore.startlock import one_host_at_a_time


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        with one_host_at_a_time(options["database"]):
            return super().handle(*args, **options)
