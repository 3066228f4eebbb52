import json
from functools import partial
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Subquery
from django.forms.fields import InvalidJSONInput
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin
from taggit.models import Tag
from taggit.utils import edit_string_for_tags, parse_tags

from content import admin_actions, archives, media_page
from content.deletes import media_delete_many
from media import admin_hold, admin_search, outbox
from media import metadata as meta_ops
from media.history import history_entries
from media.history_story import ADMIN_REASON, shown
from media.lifecycle import hold_active
from media.models import BinnedMedia, Media, SearchIndex, TaggedMedia
from media.rules import IdentifierRules, clean_tags
from media.services import media_revert
from media.tags import sync_tags
from mediastore.admin import ViewOnlyAdmin
from mediastore.errors import MediastoreError, PayloadTooLarge, RuleViolation

# (label, attribute of a media or history row, restored by a revert)
REVERT_FIELDS = [
    ("pid", "pid", True),
    ("pid type", "pid_type_id", True),
    ("identifiers", "identifiers", True),
    ("metadata", "metadata", True),
    ("tags", "tag_list", True),
    ("store config", "store_config_id", False),
    ("store key", "store_key", False),
    ("store status", "store_status", False),
    ("size", "size", False),
    ("checksum", "checksum", False),
    ("ETag", "etag", False),
    ("content type", "content_type", False),
]


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


class TagNamesField(forms.CharField):
    """The media's tags as one line, comma separated (taggit's syntax: quote a tag holding a comma),
    checked by the API's tag rules; cleans to the sorted list of names."""

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return edit_string_for_tags([Tag(name=name) for name in value])
        return value

    def clean(self, value) -> list[str]:
        text = super().clean(value)
        try:
            return clean_tags(parse_tags(text))
        except ValueError:
            raise forms.ValidationError("Please give a comma-separated list of tags.") from None
        except RuleViolation as exc:
            raise forms.ValidationError(exc.message) from None

    def has_changed(self, initial, data) -> bool:
        try:
            return self.clean(data) != sorted(initial or [])
        except forms.ValidationError:
            return True


class MediaForm(forms.ModelForm):
    """Applies the same pid, identifier, metadata and tag rules as the API."""

    tags = TagNamesField(required=False, help_text="Comma separated; quote a tag that contains a comma.")

    class Meta:
        model = Media
        fields = ["pid", "pid_type", "identifiers", "metadata", "content_type"]
        field_classes = {"metadata": MetadataField}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.initial["tags"] = list(self.instance.tag_list)  # not taggit's rows: the tag list is the truth

    def clean(self):
        data = super().clean()
        pid, pid_type = data.get("pid"), data.get("pid_type")
        if pid and pid_type:
            rules = IdentifierRules()
            try:
                checked = rules.check_pid(pid, pid_type.pk)
                if "pid" in self.changed_data:  # an unchanged pid stored before normalisation stays
                    data["pid"] = pid = checked
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
    assigns store keys and moves bytes); here they can be inspected, corrected, reverted to an earlier
    version and deleted. Tags are edited as the media's tag list, which the history and the API see."""

    form = MediaForm
    list_display = [
        "pid",
        "thumbnail",
        "pid_type",
        "store_status",
        "store_config",
        "size",
        "owner_name",
        "updated",
    ]
    list_filter = [admin_search.ApiSearchFilter, media_page.VerifyFailedFilter]
    search_fields = ["pid"]
    search_help_text = "A part of the pid or of an identifier value, or a wildcard (* and ?) for a whole one."
    change_list_template = "media/admin/change_list.html"
    show_facets = admin.ShowFacets.NEVER  # Django's facets count every choice over the whole table
    show_full_result_count = False
    list_select_related = ["store_config", "pid_type"]
    readonly_fields = [
        "owner_name",
        "store_config",
        "store_key",
        "store_status",
        "size",
        "stored_checksum",
        "stored_etag",
        "mark",
        "version",
        "created",
        "updated",
        "expires_at",
        "hold_since",
        "hold_until",
        "hold_reason",
        "hold_freeze",
        "hold_by",
    ]
    history_list_display = ["version", "store_status", "hold_reason"]
    object_history_form_template = "media/admin/revert.html"
    change_form_template = "media/admin/change_form.html"
    actions = [*admin_actions.ACTIONS, "download_zip"]

    @admin.action(description="Download selected media as zip", permissions=["view"])
    def download_zip(self, request, queryset):
        """The archive of ``POST /api/download/archive`` (``content.archives``) of the selection."""
        try:
            selection = archives.queryset_selection(queryset)
        except PayloadTooLarge as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return None
        return archives.archive_response(selection, format="zip", layout="pid")

    @admin.display(description="preview")
    def thumbnail(self, media: Media) -> str:
        return media_page.thumbnail_html(media)

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        hold = self.admin_site.admin_view(partial(admin_hold.hold_view, self))
        return [
            path("<path:object_id>/preview/", preview, name="media_media_preview"),
            path("<path:object_id>/hold/", hold, name="media_media_hold"),
            *super().get_urls(),
        ]

    def preview_view(self, request, object_id):
        """The media's thumbnail for the list and the page (``content.media_page``): view permission."""
        media = self.get_object(request, unquote(object_id)) if object_id.isdigit() else None
        if media is None:
            raise Http404
        if not self.has_view_permission(request, media):
            raise PermissionDenied
        return media_page.preview_response(request, media)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The media page: preview, metadata, copies and health, and the history as a story with a
        revert link per revision for those who may revert (``content.media_page``)."""
        media = self.get_object(request, unquote(object_id)) if object_id.isdigit() else None
        if media is not None and self.has_view_permission(request, media):
            can_revert = self.has_change_history_permission(request, media) and not self.revert_disabled(
                request, media
            )
            extra_context = {
                **media_page.page_context(media, can_revert=can_revert),
                "ms_held": hold_active(media),
                "ms_can_hold": admin_hold.can_hold(request),
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="owner", ordering="owner")
    def owner_name(self, media: Media) -> str:
        """The username as stored (no join to the accounts): "-" for none."""
        return media.owner_id or "-"

    # Metadata stored deeper than MEDIASTORE_MAX_METADATA_DEPTH (before that limit existed) cannot go
    # through a JSON form field, nor be written back with a save (encoding it recurses past Python's
    # limit): such a media is view-only here, its metadata shown cut at the limit, until the API
    # replaces that metadata.
    # A media under a frozen hold (media.lifecycle) is view-only here, as its record is in the API.
    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.hold_freeze and hold_active(obj):
            return False
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

    @admin.display(description="checksum")
    def stored_checksum(self, media: Media) -> str:
        if not media.checksum:
            return "none: no bytes stored yet"
        return format_html("<code>{}</code>", media.checksum)

    @admin.display(description="ETag")
    def stored_etag(self, media: Media) -> str:
        """The ETag the store reported for the bytes, as recorded (only S3 stores report one)."""
        if media.etag:
            return format_html("<code>{}</code>", media.etag)
        if not media.checksum:
            return "none: no bytes stored yet"
        return (
            f"none: a {media.store_config.type} reports no ETag (downloads send the checksum's hex as ETag)"
        )

    def get_search_results(self, request, queryset, search_term):
        """The search box is the API's ``identifier`` filter (``media.admin_search.term_filters``)."""
        if not search_term.strip():
            return queryset, False
        return admin_search.matching(queryset, admin_search.term_filters(search_term)), False

    paginator = admin_search.CappedPaginator

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        """The API's filter names are read by ``ApiSearchFilter``, not as Django lookups; the lookups of
        the sidebar filters this list had before it (``OLD_LOOKUPS``) keep working in bookmarks."""
        allowed = lookup in admin_search.PARAMETERS or lookup in admin_search.OLD_LOOKUPS
        return allowed or super().lookup_allowed(lookup, value, request)

    def changelist_view(self, request, extra_context=None):
        """The list, with facets (``media.admin_search.facets``) for the media it shows."""
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            response.context_data["facets"] = admin_search.facets(
                changelist.queryset, changelist.filter_params
            )
            response.context_data["kept_params"] = [
                (key, value)
                for key, values in changelist.filter_params.items()
                if key != "q"
                for value in values
            ]
        return response

    def save_model(self, request, obj, form, change) -> None:
        """One save, one history row, tags included; a form that changes nothing writes nothing."""
        if change and not form.has_changed():
            return
        obj.tag_list = form.cleaned_data["tags"]
        obj._history_user = request.user
        obj._change_reason = ADMIN_REASON  # the history story tells admin edits from API ones
        super().save_model(request, obj, form, change)
        # The admin's change view runs in one transaction: the event commits with the edit.
        kind = "media.tags_changed" if form.changed_data == ["tags"] else "media.updated"
        outbox.record([outbox.event_for(obj, kind, user=request.user, changed=form.changed_data)])

    def save_related(self, request, form, formsets, change) -> None:
        """taggit's rows follow the tag list, as in the API (instead of taggit's own form saving:
        tags are the only many-to-many field of a media)."""
        if "tags" in form.changed_data:
            sync_tags([form.instance])
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True) -> None:
        """The history page's "Changes" column: the changes GET /api/media/{pid}/history lists."""
        records = list(historical_records)
        if not records:
            return
        changes = {entry["history_id"]: entry["changes"] for entry in history_entries({records[0].id})}
        for record in records:
            record.history_delta_changes = [
                {"field": change["field"], "old": shown(change["old"]), "new": shown(change["new"])}
                for change in changes.get(record.history_id, [])
            ]

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """One version of a media, beside the media as it is now, with a button that reverts to it
        through ``media_revert``, the service behind POST /api/media/{pid}/revert (so the same rules
        apply and the bytes are never touched) instead of simple-history's saving of the old row."""
        object_id = unquote(object_id)
        if not (object_id.isdigit() and version_id.isdigit()):
            raise Http404
        row = Media.history.model.objects.filter(id=object_id, history_id=version_id).first()
        if row is None:
            raise Http404
        media = self.get_object(request, object_id)
        if not self.has_view_history_or_change_history_permission(request, media or row.instance):
            raise PermissionDenied
        can_revert = (
            media is not None
            and row.history_type != "-"
            and self.has_change_history_permission(request, media)
            and not self.revert_disabled(request, media)
        )
        if request.method == "POST":
            if not can_revert:
                raise PermissionDenied
            return self._revert(request, media, row.version)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{row.pid}: version {row.version}",
            "opts": self.model._meta,
            "media": media,
            "row": row,
            "fields": [
                {
                    "label": label,
                    "now": shown(getattr(media, attr)) if media is not None else "",
                    "then": shown(getattr(row, attr)),
                    "restored": restored,
                    "differs": media is not None and getattr(media, attr) != getattr(row, attr),
                }
                for label, attr, restored in REVERT_FIELDS
            ],
            "can_revert": can_revert,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.object_history_form_template, context)

    def _revert(self, request, media: Media, version: int):
        try:
            media = media_revert(media.pid, version=version, user=request.user)
        except MediastoreError as exc:
            self.message_user(request, f"Not reverted: {exc.message}", level=messages.ERROR)
            return redirect(request.path)
        self.log_change(request, media, f"Reverted to version {version}.")
        self.message_user(
            request,
            f"Reverted “{media}” to version {version}: pid, pid type, identifiers, metadata and tags. "
            "Its bytes are as they were.",
        )
        return redirect(reverse("admin:media_media_change", args=[media.pk]))

    def delete_model(self, request, obj) -> None:
        """Delete through the service, so that stored bytes go too."""
        self.delete_queryset(request, [obj])

    def delete_queryset(self, request, queryset) -> None:
        """Delete through ``content.deletes``, the service behind the API's deletes (bytes included)."""
        outcome = media_delete_many([media.pid for media in queryset], user=request.user)
        for pid, exc in outcome.failures:
            self.message_user(request, f"{pid}: not deleted: {exc.message}", level=messages.ERROR)


@admin.register(SearchIndex)
class SearchIndexAdmin(ViewOnlyAdmin):
    """Metadata paths with their own search index, read-only: ``manage.py search_index`` adds and
    drops them, since building an index on a large table is no job for a web request."""

    list_display = ("path", "kind", "name", "created")
    ordering = ("path", "kind")


@admin.register(BinnedMedia)
class BinnedMediaAdmin(ViewOnlyAdmin):
    """The recycle bin, read-only: deleted media wait here (record and bytes) for
    ``MEDIASTORE_TRASH_DAYS``; ``POST /api/trash/{pid}/restore`` brings one back, ``DELETE
    /api/trash/{pid}`` or ``manage.py purge_trash`` removes it for good."""

    list_display = ("pid", "deleted_at", "deleted_by", "purge_after", "store_config")
    search_fields = ("pid",)
    list_select_related = ("store_config",)


# taggit registers an admin of its own that renames, merges and deletes tags without touching any
# media's tag list (the truth the API returns and the search reads on PostgreSQL), so the two would
# disagree: tags change only through a media's tag list (API, the media page, ingest, revert).
admin.site.unregister(Tag)


@admin.register(Tag)
class TagAdmin(ViewOnlyAdmin):
    """Tags, read-only, with how many media carry each; the count links to those media. Renaming,
    merging or deleting a tag here would change what media carry without their history seeing it;
    change the media's tags instead (``PATCH``/``PUT /api/media/update/tags``, or the media page)."""

    list_display = ("name", "slug", "tagged_media")
    search_fields = ("name",)
    ordering = ("name",)
    fields = ("name", "slug")

    def get_queryset(self, request):
        """Each tag with its media counted in its own subquery: only the tags of the page shown
        are counted (a GROUP BY would count every tag's rows before the page is cut)."""
        counted = (
            TaggedMedia.objects.filter(tag=OuterRef("pk")).order_by().values("tag").annotate(n=Count("*"))
        )
        return super().get_queryset(request).annotate(media_count=Subquery(counted.values("n")))

    @admin.display(description="media", ordering="media_count")
    def tagged_media(self, tag: Tag) -> str:
        count = tag.media_count or 0
        url = f"{reverse('admin:media_media_changelist')}?{urlencode({'tags': tag.name})}"
        return format_html('<a href="{}">{}</a>', url, count)
