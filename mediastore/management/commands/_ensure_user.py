"""Shared body of ensure_superuser and ensure_serviceuser."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from mediastore.startlock import one_host_at_a_time


class EnsureUserCommand(BaseCommand):
    """Create or update the account described by the setting ``account_setting`` (a dict of
    username, password, email and, for the service user, groups, read from the ``env_prefix``
    variables in ``mediastore/settings.py``); the command's options win over it."""

    account_setting = ""  # e.g. MEDIASTORE_SUPERUSER
    env_prefix = ""  # e.g. DJANGO_SUPERUSER_ (the variables behind the setting, for messages)
    role = ""
    flags: dict[str, bool] = {"is_active": True}  # set on the user; others are left as they are

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", help=f"default: ${self.env_prefix}USERNAME")
        parser.add_argument("--password", help=f"default: ${self.env_prefix}PASSWORD")
        parser.add_argument("--email", help=f"default: ${self.env_prefix}EMAIL", default=None)

    user = None  # the account after handle(), for subclasses

    def account(self) -> dict:
        """The configured account, read from settings now (not when the module was imported)."""
        return getattr(settings, self.account_setting)

    def handle(self, *args, **options) -> None:
        with one_host_at_a_time():
            self.ensure(**options)

    def ensure(self, *, username=None, password=None, email=None, **options) -> None:
        configured = self.account()
        username = username or configured["username"]
        password = password or configured["password"]
        email = email if email is not None else configured["email"]
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
