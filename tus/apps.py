from django.apps import AppConfig


class TusConfig(AppConfig):
    name = "tus"
    verbose_name = "Resumable uploads (tus)"
    default_auto_field = "django.db.models.BigAutoField"
