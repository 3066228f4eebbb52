"""The media list's actions on many media: add or remove tags, set a metadata key, move to another
store, delete (with a typed confirmation). Each shows a form first (what it will do and to how many
media), then applies through ``content.admin_jobs``, the API's services: at once for up to
``INLINE_MAX`` media, else as a background job whose page shows its progress.

An action applies to the media ticked on the page, or, with "select all" across pages, to every
media matching the list's filters (Django's ``select_across``): the job then keeps the list's query
string, not a list of pks, and re-reads the filter as it goes.

Permissions: each action names the model permission it needs (``change`` or ``delete``); Django
shows a user only the actions they may run and refuses the others when posted.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, Sum
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from content import admin_jobs
from content.models import AdminJob
from media.rules import clean_tags
from mediastore.errors import MediastoreError
from stores.models import StoreConfig

#: Up to this many media an action runs within the request; more go to a background job.
INLINE_MAX = 100
TEMPLATE = "content/admin/media_action.html"


class TagsForm(forms.Form):
    tags = forms.CharField(help_text="Comma separated.", max_length=10_000)

    def clean_tags(self) -> list[str]:
        names = [name.strip() for name in self.cleaned_data["tags"].split(",") if name.strip()]
        try:
            return clean_tags(names)
        except MediastoreError as exc:
            raise forms.ValidationError(exc.message) from None


class MetadataForm(forms.Form):
    path = forms.CharField(help_text="Keys joined by dots, e.g. sample.quality", max_length=1000)
    value = forms.CharField(
        help_text='JSON (5, true, "text", {"a": 1}); what is not JSON is taken as text.',
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
    )

    def clean_path(self) -> list[str]:
        keys = self.cleaned_data["path"].split(".")
        if not all(keys):
            raise forms.ValidationError("Give keys joined by dots, none of them empty.")
        return keys

    def clean_value(self) -> Any:
        text = self.cleaned_data["value"]
        try:
            return json.loads(text)
        except ValueError:
            return text


class MoveForm(forms.Form):
    store = forms.ModelChoiceField(
        StoreConfig.objects.order_by("type", "bucket"), help_text="The store to move to."
    )


class DeleteForm(forms.Form):
    confirm = forms.CharField(label="Type the number of media to delete", max_length=20)

    def __init__(self, *args, count: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.count = count

    def clean_confirm(self) -> str:
        if self.cleaned_data["confirm"].strip() != str(self.count):
            raise forms.ValidationError(f"Type {self.count} to delete these {self.count} media.")
        return self.cleaned_data["confirm"]


def _selection(request) -> dict[str, Any]:
    return {
        "select_across": request.POST.get("select_across") == "1",
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
    }


def _query(request) -> str:
    """The list's query string without its paging."""
    return urlencode([(k, v) for k, vs in request.GET.lists() if k not in ("p", "e") for v in vs])


def _run(modeladmin, request, queryset, action: str, params: dict, count: int):
    """Apply ``action`` at once (up to INLINE_MAX media), else start a job and show its page."""
    past = admin_jobs.ACTIONS[action][2]
    select_across = request.POST.get("select_across") == "1"
    if count <= INLINE_MAX:
        pids = list(queryset.order_by("pk").values_list("pid", flat=True)[: INLINE_MAX + 1])
        outcome = admin_jobs.apply_chunk(action, pids, params, request.user)
        modeladmin.message_user(request, f"{len(outcome.successes)} media {past}.", messages.SUCCESS)
        for pid, exc in outcome.failures[:20]:
            modeladmin.message_user(request, f"{pid}: not {past}: {exc.message}", messages.ERROR)
        return None
    job = AdminJob.objects.create(
        action=action,
        params=params,
        query=_query(request) if select_across else "",
        pks=None if select_across else sorted(int(pk) for pk in queryset.values_list("pk", flat=True)),
        user=request.user,
        total=count,
    )
    admin_jobs.start(job)
    return redirect(reverse("admin:content_adminjob_change", args=[job.pk]))


def _form_page(modeladmin, request, queryset, *, title: str, action: str, form, count: int, **extra):
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.model._meta,
        "action": action,
        "form": form,
        "count": count,
        "background": count > INLINE_MAX,
        "inline_max": INLINE_MAX,
        **_selection(request),
        **extra,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, TEMPLATE, context)


def _tags_action(modeladmin, request, queryset, action: str, verb: str):
    count = queryset.count()
    form = TagsForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        return _run(modeladmin, request, queryset, action, {"tags": form.cleaned_data["tags"]}, count)
    return _form_page(
        modeladmin, request, queryset, title=f"{verb} tags", action=action, form=form, count=count
    )


@admin.action(description="Add tags to the selected media", permissions=["change"])
def add_tags(modeladmin, request, queryset):
    return _tags_action(modeladmin, request, queryset, "add_tags", "Add")


@admin.action(description="Remove tags from the selected media", permissions=["change"])
def remove_tags(modeladmin, request, queryset):
    return _tags_action(modeladmin, request, queryset, "remove_tags", "Remove")


@admin.action(description="Set a metadata key of the selected media", permissions=["change"])
def set_metadata(modeladmin, request, queryset):
    count = queryset.count()
    form = MetadataForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        params = {"keys": form.cleaned_data["path"], "value": form.cleaned_data["value"]}
        return _run(modeladmin, request, queryset, "set_metadata", params, count)
    return _form_page(
        modeladmin,
        request,
        queryset,
        title="Set a metadata key",
        action="set_metadata",
        form=form,
        count=count,
    )


@admin.action(description="Move the selected media to another store", permissions=["change"])
def move_to_store(modeladmin, request, queryset):
    """The form shows what will move: per store now, how many media and how many bytes."""
    count = queryset.count()
    form = MoveForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        return _run(modeladmin, request, queryset, "move", {"store": form.cleaned_data["store"].pk}, count)
    by_store = (
        queryset.order_by()
        .values("store_config__type", "store_config__bucket", "store_status")
        .annotate(n=Count("pk"), size=Sum("size"))
        .order_by("store_config__type", "store_config__bucket", "store_status")
    )
    return _form_page(
        modeladmin,
        request,
        queryset,
        title="Move to another store",
        action="move_to_store",
        form=form,
        count=count,
        by_store=list(by_store),
        total_bytes=sum(row["size"] or 0 for row in by_store if row["store_status"] == "READY"),
    )


@admin.action(description="Delete the selected media", permissions=["delete"])
def delete_selected(modeladmin, request, queryset):
    """Delete through ``content.deletes`` after the user typed the number of media."""
    count = queryset.count()
    form = DeleteForm(request.POST if "apply" in request.POST else None, count=count)
    if form.is_bound and form.is_valid():
        return _run(modeladmin, request, queryset, "delete", {}, count)
    return _form_page(
        modeladmin, request, queryset, title="Delete media", action="delete_selected", form=form, count=count
    )


ACTIONS = [add_tags, remove_tags, set_metadata, move_to_store, delete_selected]
