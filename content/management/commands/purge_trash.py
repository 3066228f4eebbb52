from django.core.management.base import BaseCommand

from content.trash import purge_due


class Command(BaseCommand):
    help = (
        "Remove for good the media whose MEDIASTORE_TRASH_DAYS in the recycle bin are over: record, bytes "
        "and replicas' bytes (objects a media uses now stay). Run by a timer "
        "(deploy/systemd/mediastore-purge-trash.timer)."
    )

    def handle(self, *args, **options):
        self.stdout.write(f"purged {purge_due()} media from the recycle bin")
