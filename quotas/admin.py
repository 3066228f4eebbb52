from django.contrib import admin

from mediastore.admin import ViewOnlyAdmin
from quotas.models import Quota, Usage
from quotas.selectors import quota_use


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    """Quotas: the same rows ``PUT /api/quotas`` writes (one per store and user pair)."""

    list_display = ["__str__", "store", "user", "max_bytes", "max_media", "use"]
    list_select_related = ["store", "user"]
    raw_id_fields = ["user"]

    @admin.display(description="use (bytes, media)")
    def use(self, quota: Quota) -> str:
        used_bytes, used_media = quota_use(quota)
        return f"{used_bytes} bytes, {used_media} media"


@admin.register(Usage)
class UsageAdmin(ViewOnlyAdmin):
    """Counted by every write, in its transaction: never edited by hand."""

    list_display = ["store", "owner", "bytes", "media"]
    list_filter = ["store"]
    search_fields = ["owner"]
