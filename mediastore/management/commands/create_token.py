from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from mediastore.errors import RuleViolation
from mediastore.permissions import SCOPES
from mediastore.tokens import parse_duration, token_create


class Command(BaseCommand):
    help = (
        "Make a scoped API token for a user, e.g. to provision an instrument, and print it (only this "
        "once: only a hash is stored). The same rules as POST /api/tokens: the user must have some "
        "permission of each scope. The token alone goes to stdout, its details to stderr."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True, metavar="NAME", help="the account the token acts as")
        parser.add_argument(
            "--scopes",
            required=True,
            metavar="LIST",
            help=f"comma-separated scopes: {', '.join(SCOPES)} (e.g. read,write)",
        )
        parser.add_argument(
            "--expires-in",
            default="never",
            metavar="DURATION",
            help="lifetime: a number with s, m, h or d (e.g. 90d; no suffix: seconds), or never (default)",
        )
        parser.add_argument(
            "--name", default="made with manage.py create_token", help="what the token is for (as listed)"
        )

    def handle(self, *args, user: str, scopes: str, expires_in: str, name: str, **options) -> None:
        account = get_user_model().objects.filter(username=user).first()
        if account is None:
            raise CommandError(f"no user named {user!r}")
        wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        try:
            row, clear = token_create(
                user=account, name=name, scopes=wanted, expires_in=parse_duration(expires_in)
            )
        except RuleViolation as exc:
            raise CommandError(exc.message) from None
        expires = row.expires.isoformat() if row.expires else "never"
        self.stderr.write(
            f"Token {row.pk} ({row.name!r}) of {account.get_username()}: scopes {row.scopes}, "
            f"expires {expires}. "
            f"It is printed only now; revoke it with DELETE /api/tokens/{row.pk} or in the admin."
        )
        self.stdout.write(clear)
