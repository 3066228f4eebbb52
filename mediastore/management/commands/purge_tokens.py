from django.core.management.base import BaseCommand
from django.utils import timezone

from mediastore.models import ApiToken


class Command(BaseCommand):
    help = "Delete expired API tokens (they no longer authenticate anyone) and say how many."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only count the expired tokens")

    def handle(self, *args, dry_run: bool, **options) -> None:
        expired = ApiToken.objects.expired(timezone.now())
        if dry_run:
            self.stdout.write(f"{expired.count()} expired token(s) would be deleted (dry run).")
            return
        deleted, _ = expired.delete()
        self.stdout.write(f"Deleted {deleted} expired token(s).")
