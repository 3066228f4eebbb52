from django.apps import AppConfig


class TusConfig(AppConfig):
    name = "tus"
    verbose_name = "Resumable uploads (tus)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from content.orphans import register_multipart_owner

        register_multipart_owner(multipart_keys)  # collect_orphans keeps the S3 uploads of tus uploads


def multipart_keys(store) -> set[str]:
    """Keys of the S3 multipart uploads that tus uploads into ``store`` are writing."""
    from tus.models import TusUpload

    uploads = TusUpload.objects.filter(store_config=store).exclude(multipart_id="")
    return set(uploads.values_list("store_key", flat=True))
