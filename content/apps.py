from django.apps import AppConfig


class ContentConfig(AppConfig):
    name = "content"
    verbose_name = "Content"

    def ready(self) -> None:
        from content import base64io, reads, replicas
        from media.moves import register_byte_mover
        from media.signals import media_deleting
        from mediastore.parser import register_large_member

        media_deleting.connect(replicas.on_media_deleting)  # a media's replicas go with it
        register_byte_mover(reads)  # media's store moves copy bytes through content (reads.copy_to_store)
        # POST /api/upload's base64 is decoded from the raw body, without parsing it as text.
        register_large_member("api:upload", "base64", base64io.decode_base64)
