"""``manage.py one_host_at_a_time <command> [args]``: another command, run while holding the
start-up lock (mediastore/startlock.py). bin/start runs ``collectstatic`` this way: API replicas
sharing one static volume (compose-prod.yml) would otherwise write the same compressed files at once."""

from __future__ import annotations

import argparse

from django.core.management import call_command
from django.core.management.base import BaseCommand

from mediastore.startlock import one_host_at_a_time


class Command(BaseCommand):
    help = "Run a manage.py command while no other host runs its start-up steps (PostgreSQL)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("command_name", help="the command to run, e.g. collectstatic")
        parser.add_argument("command_args", nargs=argparse.REMAINDER, help="its arguments")

    def handle(self, *args, command_name: str, command_args: list[str], **options) -> None:
        with one_host_at_a_time():
            call_command(command_name, *command_args)
