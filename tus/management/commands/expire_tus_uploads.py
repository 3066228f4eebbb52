from django.core.management.base import BaseCommand

from tus.services import expire_uploads


class Command(BaseCommand):
    help = (
        "Remove resumable (tus) uploads past their Upload-Expires (MEDIASTORE_TUS_EXPIRY_HOURS after "
        "their last PATCH): their staged bytes, their S3 multipart uploads (aborted) and their rows; "
        "and staging files in MEDIASTORE_TUS_DIR that no upload owns. Expired uploads already answer "
        "404; this frees their space. Run hourly (deploy/systemd/mediastore-expire-tus-uploads.timer)."
    )

    def handle(self, *args, **options):
        uploads, strays = expire_uploads()
        self.stdout.write(f"removed {uploads} expired uploads and {strays} stray staging files")
