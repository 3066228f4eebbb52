from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "media"
    verbose_name = "Media"

    def ready(self) -> None:
        from identifiers import usage
        from media import owners
        from media.identifier_usage import USAGE

        owners.connect()  # media follow their owner's renames
        usage.register(USAGE)  # identifier rules see the values media store, without importing media
