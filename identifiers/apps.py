from django.apps import AppConfig


class IdentifiersConfig(AppConfig):
    name = "identifiers"
    verbose_name = "Identifier types"
