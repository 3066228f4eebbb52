from django.contrib import admin

from identifiers.models import IdentifierType


@admin.register(IdentifierType)
class IdentifierTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "pattern"]
    search_fields = ["name"]
