"""``manage.py start_steps``: what bin/start does before it execs gunicorn, in one process:
``migrate``, ``ensure_superuser``, ``ensure_serviceuser``, then ``collectstatic`` while holding the
start-up lock (mediastore/startlock.py; the other three take it themselves).

One Python process instead of four: each start of Django here costs a second or more of CPU
(imports and system checks), paid at every start of a host. Each step is the command of that name,
so they behave exactly as when run one by one (the first that fails stops the rest, and the command
exits non-zero). The system checks run once, with the database's own checks, as ``migrate`` runs
them from the command line.
"""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand

from mediastore.startlock import one_host_at_a_time


class Command(BaseCommand):
    help = (
        "bin/start's steps before gunicorn in one process: migrate (committed migrations only), "
        "ensure_superuser, ensure_serviceuser, collectstatic."
    )
    # migrate runs them below, with the database's checks; not twice.
    requires_system_checks = []

    def handle(self, *args, verbosity: int = 1, **options) -> None:
        out = {"stdout": self.stdout, "stderr": self.stderr}
        call_command("migrate", interactive=False, verbosity=verbosity, skip_checks=False, **out)
        call_command("ensure_superuser", verbosity=verbosity, **out)
        call_command("ensure_serviceuser", verbosity=verbosity, **out)
        with one_host_at_a_time():
            call_command("collectstatic", interactive=False, verbosity=0, **out)
