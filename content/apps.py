from django.apps import AppConfig


class ContentConfig(AppConfig):
    name = "content"
    verbose_name = "Content"

    def ready(self) -> None:
        from content import reads
        from media.moves import register_byte_mover

        register_byte_mover(reads)  # media's store moves copy bytes through content (reads.copy_to_store)
