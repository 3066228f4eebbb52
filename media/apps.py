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

        from media.selectors import MEDIA_BY_PID
        from mediastore.auth import register_read_with_token

        # GET /api/media/{pid}: the media is read in the bearer token's statement.
        register_read_with_token("GET", "api:media_get", MEDIA_BY_PID, "pid")
