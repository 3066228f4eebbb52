from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from mediastore import crypto
from stores.models import S3Config


class Command(BaseCommand):
    help = (
        "Encrypt every stored S3 secret key with the newest key of MEDIASTORE_FIELD_KEYS (or the key "
        "derived from DJANGO_SECRET_KEY when it is empty). Run it after putting a new key first, "
        "before removing an old one. Secrets already under the newest key are left alone, so running "
        "it again changes nothing. If any secret cannot be decrypted, nothing is changed."
    )

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            rows = list(S3Config.objects.select_for_update().values_list("pk", "secret_key_encrypted"))
            stale = [(pk, stored) for pk, stored in rows if not crypto.is_current(stored)]
            updates, unreadable = [], []
            for pk, stored in stale:
                try:
                    updates.append((pk, crypto.reencrypt(stored)))
                except crypto.UnreadableSecret:
                    unreadable.append(pk)
            if unreadable:
                raise CommandError(
                    f"{len(unreadable)} S3 secret key(s) cannot be decrypted with the configured keys "
                    f"(S3Config pk {', '.join(map(str, unreadable))}); nothing was changed. Put the old "
                    "key back into MEDIASTORE_FIELD_KEYS (after the new one) and run this again."
                )
            # A bare update: the secret is not part of the audit history, and nothing visible changes.
            for pk, stored in updates:
                S3Config.objects.filter(pk=pk).update(secret_key_encrypted=stored)
        self.stdout.write(
            f"re-encrypted {len(updates)} S3 secret key(s) with the newest key; "
            f"{len(rows) - len(updates)} already used it"
        )
