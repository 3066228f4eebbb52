"""manage.py test: points to bin/test. The suite is pytest (pytest-django); Django's own runner
finds none of its tests and said "Ran 0 tests ... OK", which reads as a pass."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Not the way to run the tests here: use bin/test (pytest, on SQLite and on PostgreSQL)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("args", nargs="*", help="ignored")

    def handle(self, *args, **options):
        raise CommandError(
            "the tests run with pytest, not Django's runner: use bin/test (the whole suite on SQLite and "
            "PostgreSQL; extra arguments go to pytest, e.g. bin/test tests/media -x)"
        )
