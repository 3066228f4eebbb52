from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "quotas"
    verbose_name = "Quotas and usage"

    def ready(self) -> None:
        from quotas import signals  # noqa: F401  (follows renamed and deleted accounts)
