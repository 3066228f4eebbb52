from django.core.management.base import BaseCommand

from content.lifecycle import expire_media


class Command(BaseCommand):
    help = (
        "Delete the media whose expires_at has passed (as DELETE does, with events media.expired); "
        "media on hold stay. Run by a timer (deploy/systemd/mediastore-expire.timer)."
    )

    def handle(self, *args, **options):
        result = expire_media()
        held = f"; {result.held} expired but on hold, kept" if result.held else ""
        self.stdout.write(f"expired {result.expired} media{held}")
