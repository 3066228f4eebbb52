from django import forms
from django.contrib import admin, messages
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from simple_history.admin import SimpleHistoryAdmin

from media.models import Media
from media.services import IdentifierRules, media_delete
from mediastore.errors import MediastoreError


class MediaForm(forms.ModelForm):
    """Applies the same pid and identifier rules as the API."""

    class Meta:
        model = Media
        fields = ["pid", "pid_type", "identifiers", "metadata", "content_type", "tags"]

    def clean(self):
        data = super().clean()
        pid, pid_type = data.get("pid"), data.get("pid_type")
        if pid and pid_type:
            rules = IdentifierRules()
            try:
                rules.check_pid(pid, pid_type.pk)
                data["identifiers"] = rules.identifiers(pid, pid_type.pk, data.get("identifiers") or {})
            except MediastoreError as exc:
                raise forms.ValidationError(exc.message) from None
        if not isinstance(data.get("metadata", {}), dict):
            self.add_error("metadata", "Metadata must be a JSON object.")
        return data


@admin.register(Media)
class MediaAdmin(SimpleHistoryAdmin):
    """Media with their audit history ("History" button). Media are created through the API (which
    assigns store keys and moves bytes); here they can be inspected, corrected and deleted. Tags
    edited here are mirrored into the media's tag list so that the history and the API see them."""

    form = MediaForm
    list_display = ["pid", "pid_type", "store_status", "store_config", "size", "updated"]
    list_filter = ["pid_type", "store_status", "store_config", "tags"]
    search_fields = ["pid"]
    list_select_related = ["store_config", "pid_type"]
    readonly_fields = [
        "store_config",
        "store_key",
        "store_status",
        "tag_list",
        "size",
        "checksum",
        "etag",
        "mark",
        "version",
        "created",
        "updated",
    ]
    history_list_display = ["store_status", "tag_list"]

    def has_add_permission(self, request) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        """Search pids and identifier values (identifiers are JSON: match their text form)."""
        if not search_term:
            return queryset, False
        queryset = queryset.annotate(_identifiers_text=Cast("identifiers", TextField()))
        return queryset.filter(
            Q(pid__icontains=search_term) | Q(_identifiers_text__icontains=search_term)
        ), False

    def save_model(self, request, obj, form, change) -> None:
        obj._history_user = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        media = form.instance
        names = sorted(media.tags.names())
        if names != media.tag_list:
            media.tag_list = names
            media._history_user = request.user
            media.save()

    def delete_model(self, request, obj) -> None:
        """Delete through the service, so that stored bytes go too."""
        self.delete_queryset(request, [obj])

    def delete_queryset(self, request, queryset) -> None:
        for media in queryset:
            try:
                media_delete(media.pid, user=request.user)
            except MediastoreError as exc:
                self.message_user(request, f"{media.pid}: not deleted: {exc.message}", level=messages.ERROR)
