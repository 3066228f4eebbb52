from django.apps import AppConfig


class MediastoreConfig(AppConfig):
    name = "mediastore"
    verbose_name = "API access"

    def ready(self) -> None:
        from mediastore import checks  # noqa: F401  (registers the system checks)
