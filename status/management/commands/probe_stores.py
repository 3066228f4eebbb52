"""``manage.py probe_stores``: probe every store now and record the result that ``/status/`` and
``GET /api/stats`` show (so reading them never writes). Run every 5 minutes by
deploy/systemd/mediastore-probe-stores.timer."""

from django.core.management.base import BaseCommand, CommandError

from status.health import PROBE_TIMEOUT, probe_and_record
from status.selectors import store_label
from stores.models import StoreConfig


class Command(BaseCommand):
    help = (
        "Probe every store (write, read back and delete a tiny object) and record the result for the "
        "status page and GET /api/stats. Exits with status 1 when a store is not writable."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--timeout",
            type=float,
            default=PROBE_TIMEOUT,
            help=f"seconds to wait for the slowest store (default {PROBE_TIMEOUT:g})",
        )

    def handle(self, *args, timeout: float, **options) -> None:
        if timeout <= 0:
            raise CommandError("--timeout must be more than 0 seconds")
        stores = list(StoreConfig.objects.select_related("s3cfg").order_by("pk"))
        results = probe_and_record(stores, timeout)
        failed = []
        for store in stores:
            result = results[store.pk]
            if result["writable"]:
                self.stdout.write(f"{store_label(store)}: ok, {result['latency_ms']} ms")
            else:
                failed.append(store_label(store))
                state = "not writable" if result["reachable"] else "unreachable"
                self.stdout.write(f"{store_label(store)}: {state}: {result['error']}")
        self.stdout.write(f"Probed {len(stores)} store(s), {len(failed)} failed.")
        if failed:
            raise CommandError(f"not writable: {', '.join(failed)}", returncode=1)
