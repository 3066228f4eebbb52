"""Resumable uploads in the admin, read-only: what each unfinished (or recently finished) upload
will create or replace, how far its bytes have come, when it was last sent to and when it expires.

Nothing is added or changed here: uploads are made and fed by tus clients (``/api/tus/``, the
``/upload/`` page). Administrators with ``tus.delete_tusupload`` (the group ``admins``) may
terminate live uploads, as their owner's ``DELETE`` does (``tus.services.upload_terminate``: the
staging file, the S3 multipart upload and the row go; 409 while a PATCH is sending). Expired uploads
are left to ``manage.py expire_tus_uploads``, which removes them the same way.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from mediastore.admin import ViewOnlyAdmin
from mediastore.errors import MediastoreError
from tus.models import TusUpload
from tus.services import upload_terminate


@admin.register(TusUpload)
class TusUploadAdmin(ViewOnlyAdmin):
    list_display = [
        "id",
        "user",
        "target",
        "progress",
        "created",
        "last_activity",
        "expires",
        "store_config",
        "state",
    ]
    list_filter = ["replace", "store_config"]
    search_fields = ["id", "user__username", "media_pid"]
    list_select_related = ["user", "store_config"]
    ordering = ["-created"]
    fields = readonly_fields = [
        "id",
        "user",
        "target",
        "progress",
        "state",
        "created",
        "last_activity",
        "expires",
        "store_config",
        "store_key",
        "multipart_id",
        "parts_sent",
        "content_type",
        "if_match",
        "mediadata",
        "metadata_header",
        "media_pid",
    ]
    actions = ["terminate"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # The model permission, for the action "terminate" and the delete page (both through the service).
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # QuerySet.delete() would leave staging files and S3 uploads
        return actions

    @admin.display(description="creates or replaces")
    def target(self, upload: TusUpload) -> str:
        pid = upload.mediadata.get("pid")
        if upload.replace:
            return f"the bytes of {pid}"
        return f"new media {pid}" if pid else "new media (pid minted at the end)"

    @admin.display(description="received")
    def progress(self, upload: TusUpload) -> str:
        if upload.length is None:
            return f"{upload.offset:,} bytes of a length not declared yet"
        percent = 100 * upload.offset / upload.length if upload.length else 100
        return f"{upload.offset:,} of {upload.length:,} bytes ({percent:.1f}%)"

    @admin.display(description="last activity")
    def last_activity(self, upload: TusUpload):
        """Creation or the last PATCH that kept bytes: each pushes ``expires`` to then plus
        ``MEDIASTORE_TUS_EXPIRY_HOURS``."""
        return upload.expires - timedelta(hours=settings.MEDIASTORE_TUS_EXPIRY_HOURS)

    @admin.display(description="parts sent to S3")
    def parts_sent(self, upload: TusUpload) -> str:
        return f"{len(upload.parts)} ({upload.flushed:,} bytes)" if upload.multipart_id else "-"

    @admin.display(description="state")
    def state(self, upload: TusUpload) -> str:
        now = timezone.now()
        if upload.done:
            return f"complete: media {upload.media_pid}"
        if upload.expires <= now:
            return "expired (manage.py expire_tus_uploads removes it)"
        if upload.lease_until is not None and upload.lease_until > now:
            return "receiving"
        return "waiting for the client"

    @admin.action(description="Terminate selected uploads (their bytes are removed)", permissions=["delete"])
    def terminate(self, request, queryset) -> None:
        self._terminate(request, list(queryset))

    def delete_view(self, request, object_id, extra_context=None):
        """The confirmation page as usual; confirming terminates the upload through the service."""
        if request.method != "POST":
            return super().delete_view(request, object_id, extra_context)
        upload = self.get_object(request, unquote(object_id))
        if upload is None:
            raise Http404
        if not self.has_delete_permission(request, upload):
            raise PermissionDenied
        self._terminate(request, [upload])
        return redirect(reverse("admin:tus_tusupload_changelist"))

    def _terminate(self, request, uploads: list[TusUpload]) -> None:
        done = 0
        for upload in uploads:
            try:
                upload_terminate(upload.id, user=upload.user)
            except MediastoreError as exc:
                self.message_user(
                    request, f"{upload.id}: not terminated: {exc.message}", level=messages.ERROR
                )
                continue
            done += 1
        if done:
            self.message_user(request, f"Terminated {done} upload(s).")
