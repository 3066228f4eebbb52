"""List local store configurations that share a place on disk, from before overlaps were refused."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from stores.services import local_store_overlaps


class Command(BaseCommand):
    help = (
        "List pairs of local store configurations (FilesystemStore, HashdirStore, ZipStore, "
        "SqliteStore) whose directories or files are the same or lie one inside the other. New "
        "ones are refused; rows from older versions may still overlap. Exits non-zero if any do."
    )

    def handle(self, *args, **options) -> None:
        pairs = local_store_overlaps()
        for first, second in pairs:
            self.stdout.write(f"store {first.pk} ({first}) overlaps store {second.pk} ({second})")
        if pairs:
            raise CommandError(
                f"{len(pairs)} overlapping pair(s): writing a media of one can overwrite or delete "
                "bytes of the other; move the media of one store to a store of its own"
            )
        self.stdout.write("No overlapping local stores.")
