from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
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


class ViewOnlyAdmin(admin.ModelAdmin):
    """A model the admin shows but never adds, changes or deletes (its rows are written elsewhere:
    a management command, a worker, the API)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are listed by owner, name and prefix (the token itself is never stored) with their
    scopes, age, last use and expiry; delete to revoke. ``manage.py purge_tokens`` deletes the
    expired ones. Scopes cannot be changed here: widening them would skip the check that the
    account has them (``mediastore.tokens``); revoke and make a new token instead."""

    list_display = ["prefix", "name", "user", "scopes", "age", "last_use", "expires", "expired"]
    list_filter = [ExpiredFilter, "scopes", "user"]
    search_fields = ["user__username", "prefix", "name"]
    readonly_fields = ["user", "prefix", "scopes", "created", "last_used"]
    fields = ["user", "name", "prefix", "scopes", "created", "last_used", "expires"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # tokens are issued by POST /api/login, POST /api/tokens and manage.py create_token

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


class ApiTokenInline(admin.TabularInline):
    """A user's tokens on the user's page; tick **Delete** and save to revoke one."""

    model = ApiToken
    extra = 0
    fields = ["name", "prefix", "scopes", "created", "expires", "last_used"]
    readonly_fields = fields
    ordering = ["-created"]
    verbose_name_plural = "API tokens (revoke by deleting)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserWithTokensAdmin(UserAdmin):
    """Django's user admin with the user's API tokens listed (and revocable) on the user's page."""

    inlines = [*UserAdmin.inlines, ApiTokenInline]
