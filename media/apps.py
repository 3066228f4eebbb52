from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "media"
    verbose_name = "Media"

    def ready(self) -> None:
        from identifiers import usage
        from media.identifier_usage import USAGE

        usage.register(USAGE)  # identifier rules see the values media store, without importing media
