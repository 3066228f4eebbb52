from django.contrib import admin

from mediastore.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are listed by owner and prefix (the token itself is never stored); delete to revoke."""

    list_display = ["prefix", "user", "created", "last_used", "expires"]
    list_filter = ["user"]
    search_fields = ["user__username", "prefix"]
    readonly_fields = ["user", "prefix", "created", "last_used"]
    fields = ["user", "prefix", "created", "last_used", "expires"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # tokens are issued by POST /api/login

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset) -> None:
        count = queryset.count()
        queryset.delete()
        self.message_user(request, f"Revoked {count} token(s).")
