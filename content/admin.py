"""Replicas in the admin: read only, each linked from its media's page ("Copies and health",
``content.media_page``; changes go through the API and the worker, which check and copy the
bytes), a list of all copies by state, and editable rules."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from content import admin_jobs
from content.models import AdminJob, AdminJobState, Replica, ReplicationRule
from identifiers.models import IdentifierType
from mediastore.admin import ViewOnlyAdmin

SHOWN = [
    "store_config",
    "state",
    "store_key",
    "size",
    "checksum",
    "verified_at",
    "error",
    "attempts",
    "due_at",
]


@admin.register(Replica)
class ReplicaAdmin(ViewOnlyAdmin):
    list_display = ["media", "store_config", "state", "size", "verified_at", "attempts", "error"]
    list_filter = ["state", "store_config"]
    search_fields = ["media__pid", "store_key"]
    list_select_related = ["media", "store_config"]
    fields = readonly_fields = ["media", *SHOWN]


class ReplicationRuleForm(forms.ModelForm):
    """The rules of ``POST /api/rules`` for the admin's form: known pid types, lists of names, no
    copy in the matched primary store."""

    class Meta:
        model = ReplicationRule
        fields = ["name", "pid_types", "tags", "store", "copies"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name or "/" in name:
            raise forms.ValidationError("a rule needs a name without '/'")
        return name

    def clean_pid_types(self) -> list[str]:
        pid_types = names(self.cleaned_data["pid_types"], "pid types")
        known = set(IdentifierType.objects.filter(name__in=pid_types).values_list("name", flat=True))
        unknown = [name for name in pid_types if name not in known]
        if unknown:
            raise forms.ValidationError(f"bad pid_type: {', '.join(unknown)}")
        return pid_types

    def clean_tags(self) -> list[str]:
        return names(self.cleaned_data["tags"], "tags")

    def clean(self):
        cleaned = super().clean()
        store, copies = cleaned.get("store"), cleaned.get("copies")
        if store is not None and copies is not None and store in copies:
            raise forms.ValidationError(
                f"store {store} is the matched primary store; it cannot also hold a copy"
            )
        return cleaned


def names(value, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise forms.ValidationError(f'{what}: a JSON list of names, e.g. ["a", "b"]')
    return sorted({item.strip() for item in value})


@admin.register(ReplicationRule)
class ReplicationRuleAdmin(admin.ModelAdmin):
    form = ReplicationRuleForm
    list_display = ["name", "pid_types", "tags", "store", "copy_stores"]
    filter_horizontal = ["copies"]

    @admin.display(description="copies")
    def copy_stores(self, rule: ReplicationRule) -> str:
        return ", ".join(str(store) for store in rule.copies.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("copies")


@admin.register(AdminJob)
class AdminJobAdmin(ViewOnlyAdmin):
    """The media list's background actions (``content.admin_jobs``): each job's page shows its
    progress, refreshing itself while it runs, and offers Resume for a failed or stalled job. A
    user sees their own jobs (a superuser every job), if they may change or delete media."""

    list_display = ["__str__", "user", "state", "done", "failed", "total", "created", "finished"]
    list_filter = ["state", "action"]
    change_form_template = "content/admin/job_progress.html"

    def _may_act(self, request) -> bool:
        user = request.user
        return user.is_active and (user.has_perm("media.change_media") or user.has_perm("media.delete_media"))

    def has_module_permission(self, request) -> bool:
        return self._may_act(request)

    def has_view_permission(self, request, obj=None) -> bool:
        if not self._may_act(request):
            return False
        return obj is None or request.user.is_superuser or obj.user_id == request.user.pk

    def get_queryset(self, request):
        jobs = super().get_queryset(request).select_related("user")
        return jobs if request.user.is_superuser else jobs.filter(user=request.user)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The progress page; a POST of ``resume`` takes a failed or stalled job up again."""
        job = self.get_object(request, unquote(object_id))
        if job is None or not self.has_view_permission(request, job):
            raise Http404
        if request.method == "POST" and "resume" in request.POST:
            if admin_jobs.resume(job):
                self.message_user(request, f"{job.description}: resumed from where it stopped.")
            else:
                self.message_user(request, f"{job.description} is not stalled or failed.", messages.WARNING)
            return redirect(request.path)
        stale = job.state == AdminJobState.RUNNING and (
            job.heartbeat is None or job.heartbeat < timezone.now() - admin_jobs.STALE
        )
        handled = job.done + job.failed
        context = {
            **self.admin_site.each_context(request),
            "title": f"{job.description.capitalize()}",
            "opts": self.model._meta,
            "job": job,
            "running": job.state in (AdminJobState.QUEUED, AdminJobState.RUNNING) and not stale,
            "stale": stale,
            "resumable": stale or job.state == AdminJobState.FAILED,
            "handled": handled,
            "past": admin_jobs.ACTIONS[job.action][2],
            "percent": min(100, round(100 * handled / job.total)) if job.total else 100,
            "list_url": reverse("admin:media_media_changelist") + (f"?{job.query}" if job.query else ""),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.change_form_template, context)
