from django.apps import AppConfig


class ContentConfig(AppConfig):
    name = "content"
    verbose_name = "Content"

    def ready(self) -> None:
        from content import base64io
        from mediastore.parser import register_large_member

        # POST /api/upload's base64 is decoded from the raw body, without parsing it as text.
        register_large_member("api:upload", "base64", base64io.decode_base64)

        from media.selectors import MEDIA_BY_PID
        from mediastore.auth import register_read_with_token

        # GET /api/download/url/{pid}: the media is read in the bearer token's statement.
        register_read_with_token("GET", "api:download_url", MEDIA_BY_PID, "pid")

        from content.deletes import retire_expired
        from media.services import register_expired_retirer

        # A new media that takes the pid of an expired one retires it as manage.py expire would.
        register_expired_retirer(retire_expired)
