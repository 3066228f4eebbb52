import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.forms.fields import InvalidJSONInput
from simple_history.admin import SimpleHistoryAdmin

from media import metadata as meta_ops
from media.models import Media
from media.services import IdentifierRules, media_delete
from mediastore.errors import MediastoreError


class MetadataField(forms.JSONField):
    """Django's JSON form field, with input nested too deeply to parse refused instead of crashing."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:
            raise forms.ValidationError("Metadata is nested too deeply.", code="invalid") from None

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)  # shown back as typed


def too_deep(metadata) -> bool:
    try:
        meta_ops.check_depth(metadata)
    except MediastoreError:
        return True
    return False


def cut_at_depth(value, depth: int, levels_left: int):
    """``value`` with whatever nests deeper than ``levels_left`` replaced by a note (recursion is bounded
    by ``levels_left``)."""
    if not isinstance(value, dict | list):
        return value
    if levels_left <= 0:
        return f"... (deeper than level {depth - 1}, not shown)"
    if isinstance(value, dict):
        return {k: cut_at_depth(v, depth + 1, levels_left - 1) for k, v in value.items()}
    return [cut_at_depth(v, depth + 1, levels_left - 1) for v in value]


class MediaForm(forms.ModelForm):
    """Applies the same pid, identifier and metadata rules as the API."""

    class Meta:
        model = Media
        fields = ["pid", "pid_type", "identifiers", "metadata", "content_type", "tags"]
        field_classes = {"metadata": MetadataField}

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
        elif "metadata" in data:
            try:
                meta_ops.check_limits(data["metadata"])
            except MediastoreError as exc:
                self.add_error("metadata", exc.message)
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

    # Metadata stored deeper than MEDIASTORE_MAX_METADATA_DEPTH (before that limit existed) cannot go
    # through a JSON form field, nor be written back with a save (encoding it recurses past Python's
    # limit): such a media is view-only here, its metadata shown cut at the limit, until the API
    # replaces that metadata.
    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and too_deep(obj.metadata):
            return False
        return super().has_change_permission(request, obj)

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is not None and too_deep(obj.metadata):
            fields = [name if name != "metadata" else "metadata_too_deep" for name in fields]
        return list(dict.fromkeys(fields))

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and too_deep(obj.metadata):
            readonly.append("metadata_too_deep")
        return readonly

    @admin.display(description="Metadata")
    def metadata_too_deep(self, obj) -> str:
        limit = settings.MEDIASTORE_MAX_METADATA_DEPTH
        shown = json.dumps(cut_at_depth(obj.metadata, 1, limit), indent=1, ensure_ascii=False)
        return (
            f"Nested deeper than MEDIASTORE_MAX_METADATA_DEPTH ({limit} levels), so it is shown cut at "
            "that depth and this media cannot be changed here; replace the metadata with "
            f"PUT /api/media/update/metadata first.\n{shown}"
        )

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
