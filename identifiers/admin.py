from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from identifiers.models import IdentifierType


@admin.register(IdentifierType)
class IdentifierTypeAdmin(SimpleHistoryAdmin):
    """Identifier types with their audit history (who changed which pattern when)."""

    list_display = ["name", "pattern"]
    search_fields = ["name"]
