from django.contrib.auth.models import Group
from django.core.management.base import CommandError

from mediastore.management.commands._ensure_user import EnsureUserCommand

DEFAULT_GROUPS = ["admins"]


class Command(EnsureUserCommand):
    help = (
        "Create or update the API service account from DJANGO_SERVICEUSER_USERNAME/PASSWORD "
        "(idempotent). It is not staff (no /admin/) and is put in the groups of --group or "
        "DJANGO_SERVICEUSER_GROUPS (default: admins, what every account could do on the earlier server)."
    )
    account_setting = "MEDIASTORE_SERVICEUSER"
    env_prefix = "DJANGO_SERVICEUSER_"
    role = "service user"
    flags = {"is_active": True}

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--group",
            action="append",
            dest="groups",
            metavar="NAME",
            help="a group to put the user in (repeatable); default: $DJANGO_SERVICEUSER_GROUPS or admins",
        )

    def handle(self, *args, groups=None, **options) -> None:
        super().handle(*args, **options)
        user = self.user
        if user is None:
            return
        names = groups or self.account()["groups"] or DEFAULT_GROUPS
        found = {group.name: group for group in Group.objects.filter(name__in=names)}
        missing = sorted(set(names) - set(found))
        if missing:
            raise CommandError(f"no such group: {', '.join(missing)} (groups: readers, writers, admins)")
        user.groups.add(*found.values())
        self.stdout.write(f"service user {user.username!r}: groups {', '.join(sorted(found))}")
