import time

from django.core.management.base import BaseCommand, CommandError

from content.orphans import abort_multipart, find_orphans, remove_orphans
from stores.models import StoreConfig


def human(size: int) -> str:
    """``9 bytes``, or ``9.8 KiB (10000 bytes)`` and so on."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({size} bytes)"
        value /= 1024
    return f"{size} bytes"


class Command(BaseCommand):
    help = (
        "List (and with --delete remove) stored objects that no media points at: bytes left by a "
        "crash or a failing store between writing new bytes and removing old ones; and (abort) S3 "
        "multipart uploads nothing claims. Dry run by default."
    )

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true", help="remove the orphans (default: only list)")
        parser.add_argument(
            "--older-than",
            type=float,
            default=3600,
            metavar="SECONDS",
            help="keep objects written more recently than this, which may belong to a write in progress "
            "(default 3600); 0 also takes objects of stores that record no write time (SQLite files)",
        )
        parser.add_argument(
            "--store", type=int, action="append", metavar="ID", help="only this store (repeatable)"
        )
        parser.add_argument("-l", "--list", action="store_true", help="print every orphan's key and size")

    def handle(self, *args, delete: bool, older_than: float, store, list: bool, **options):
        if older_than < 0:
            raise CommandError("--older-than must be 0 or more")
        stores = StoreConfig.objects.select_related("s3cfg").order_by("pk")
        if store:
            stores = stores.filter(pk__in=store)
        now = time.time()
        total = total_size = aborted = 0
        for config in stores:
            found = find_orphans(config, older_than=older_than, now=now)
            name = f"store {config.pk} {config.type} '{config.bucket}'"
            if found.error:
                self.stdout.write(f"{name}: not checked: {found.error}")
                continue
            notes = []
            if found.too_young:
                notes.append(f"{found.too_young} younger than {older_than:g} s kept")
            if found.unknown_age:
                notes.append(f"{found.unknown_age} of unknown age kept (use --older-than 0)")
            if found.multipart_young:
                notes.append(f"{found.multipart_young} multipart uploads younger than {older_than:g} s kept")
            suffix = f" ({'; '.join(notes)})" if notes else ""
            self.stdout.write(f"{name}: {len(found.orphans)} orphans, {human(found.size)}{suffix}")
            if found.multipart:
                self.stdout.write(f"{name}: {len(found.multipart)} abandoned multipart uploads")
                if list:
                    for upload in found.multipart:
                        self.stdout.write(f"  {upload.key}  multipart upload {upload.upload_id}")
            if list:
                for obj in found.orphans:
                    self.stdout.write(f"  {obj.key}  {obj.size}")
            if delete:
                aborted += abort_multipart(found)
                removed, freed = remove_orphans(found)
                total += removed
                total_size += freed
            else:
                total += len(found.orphans)
                total_size += found.size
        if delete:
            self.stdout.write(
                f"removed {total} orphaned objects, freed {human(total_size)} ({total_size} bytes); "
                f"aborted {aborted} abandoned multipart uploads"
            )
        else:
            self.stdout.write(
                f"{total} orphaned objects, {human(total_size)} would be freed; "
                "dry run: --delete removes them"
            )
