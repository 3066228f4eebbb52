from django.apps import AppConfig


class StoresConfig(AppConfig):
    name = "stores"
    verbose_name = "Storage"

    def ready(self) -> None:
        from stores import checks  # noqa: F401  (registers the system checks)
