"""Shared body of ensure_superuser and ensure_serviceuser."""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class EnsureUserCommand(BaseCommand):
    env_prefix = ""  # e.g. DJANGO_SUPERUSER_
    role = ""
    flags: dict[str, bool] = {"is_active": True}  # set on the user; others are left as they are

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", help=f"default: ${self.env_prefix}USERNAME")
        parser.add_argument("--password", help=f"default: ${self.env_prefix}PASSWORD")
        parser.add_argument("--email", help=f"default: ${self.env_prefix}EMAIL", default=None)

    user = None  # the account after handle(), for subclasses

    def env_list(self, name: str) -> list[str]:
        """A comma-separated variable ``<env_prefix><name>`` as a list (empty when unset)."""
        raw = os.environ.get(f"{self.env_prefix}{name}", "")
        return [item.strip() for item in raw.split(",") if item.strip()]

    def handle(self, *args, username=None, password=None, email=None, **options) -> None:
        username = username or os.environ.get(f"{self.env_prefix}USERNAME", "").strip()
        password = password or os.environ.get(f"{self.env_prefix}PASSWORD", "")
        email = email if email is not None else os.environ.get(f"{self.env_prefix}EMAIL", "").strip()
        if not username:
            self.stdout.write(
                f"No {self.role} configured ({self.env_prefix}USERNAME is empty); nothing to do."
            )
            return
        if not password:
            raise CommandError(
                f"{self.env_prefix}PASSWORD (or --password) is needed for {self.role} {username!r}"
            )
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        action = "created"
        if user is None:
            user = users(username=username, email=email)
        else:
            action = "unchanged"
            if email and user.email != email:
                user.email, action = email, "updated"
        if not user.check_password(password):
            user.set_password(password)
            action = "created" if user.pk is None else "updated"
        for attr, value in self.flags.items():
            if getattr(user, attr) != value:
                setattr(user, attr, value)
                action = "created" if user.pk is None else "updated"
        if action != "unchanged":
            user.save()
        self.user = user
        self.stdout.write(f"{self.role} {username!r}: {action}")
