from django.apps import AppConfig


class MediastoreConfig(AppConfig):
    name = "mediastore"
    verbose_name = "API access"
