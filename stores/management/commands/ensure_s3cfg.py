"""manage.py ensure_s3cfg: register an S3 endpoint and its keys from a script (bin/dev --s3)."""

from django.core.management.base import BaseCommand, CommandError

from mediastore.errors import MediastoreError
from stores.models import S3Config
from stores.services import s3cfg_create, s3cfg_update


class Command(BaseCommand):
    help = (
        "Create the S3 configuration for --url with these keys, or update the keys of the existing one "
        "(idempotent; what POST /api/s3cfg does, for scripts such as bin/dev --s3)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", required=True, help="S3 endpoint URL, e.g. http://127.0.0.1:9000")
        parser.add_argument("--access-key", required=True)
        parser.add_argument("--secret-key", required=True)

    def handle(self, *args, url: str, access_key: str, secret_key: str, **options) -> None:
        existing = S3Config.objects.filter(url=url).first()
        try:
            if existing is None:
                s3cfg_create(url=url, access_key=access_key, secret_key=secret_key, user=None)
                outcome = "created"
            elif (existing.access_key, existing.secret_key) == (access_key, secret_key):
                outcome = "unchanged"
            else:
                s3cfg_update(
                    pk=existing.pk,
                    url=url,
                    access_key=access_key,
                    secret_key=secret_key,
                    region=existing.region,
                    addressing_style=existing.addressing_style,
                    user=None,
                )
                outcome = "keys updated"
        except MediastoreError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"S3 configuration for {url}: {outcome}")
