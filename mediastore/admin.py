from django.contrib import admin
from django.utils import timezone
from django.utils.timesince import timesince

from mediastore.models import ApiToken


class ExpiredFilter(admin.SimpleListFilter):
    title = "expired"
    parameter_name = "expired"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        expired = queryset.expired(timezone.now())
        if self.value() == "yes":
            return expired
        if self.value() == "no":
            return queryset.exclude(pk__in=expired)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are listed by owner and prefix (the token itself is never stored) with their age, last
    use and expiry; delete to revoke. ``manage.py purge_tokens`` deletes the expired ones."""

    list_display = ["prefix", "user", "age", "last_use", "expires", "expired"]
    list_filter = [ExpiredFilter, "user"]
    search_fields = ["user__username", "prefix"]
    readonly_fields = ["user", "prefix", "created", "last_used"]
    fields = ["user", "prefix", "created", "last_used", "expires"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # tokens are issued by POST /api/login

    @admin.display(description="age", ordering="created")
    def age(self, row: ApiToken) -> str:
        return timesince(row.created)

    @admin.display(description="last use", ordering="last_used")
    def last_use(self, row: ApiToken) -> str:
        return f"{timesince(row.last_used)} ago" if row.last_used else "never"

    @admin.display(description="expired", boolean=True)
    def expired(self, row: ApiToken) -> bool:
        return row.is_expired(timezone.now())

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset) -> None:
        count = queryset.count()
        queryset.delete()
        self.message_user(request, f"Revoked {count} token(s).")
