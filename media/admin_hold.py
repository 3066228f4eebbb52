"""Holds in the admin: the media page's "Place a hold" and "Release the hold", for those with the
permission ``media.hold_media`` (the group ``admins``). Both go through ``media.services.media_hold``,
the service behind ``POST``/``DELETE /api/media/{pid}/hold``: the same rules, history rows and
events (docs/lifecycle.md, "Holds")."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from pydantic import ValidationError

from media.lifecycle import hold_active
from media.models import Media
from media.schemas import HoldIn
from media.services import media_hold
from mediastore.errors import MediastoreError

PERMISSION = "media.hold_media"


class HoldForm(forms.Form):
    reason = forms.CharField(
        max_length=500, help_text="Why the media is held: shown in every refusal (423) and in the history."
    )
    until = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="When the hold ends by itself (the server's time zone); empty: until released here "
        "or with DELETE /api/media/{pid}/hold.",
    )
    freeze = forms.BooleanField(
        required=False, help_text="Freeze the record too: metadata, tags, identifiers and pid cannot change."
    )


def can_hold(request: HttpRequest) -> bool:
    return request.user.has_perm(PERMISSION)


def hold_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """GET: the media's hold as it is, with a form to place (or replace) one and a button to release
    it; POST: place (``_place``) or release (``_release``) through the service."""
    media = model_admin.get_object(request, object_id) if object_id.isdigit() else None
    if media is None:
        raise Http404
    if not can_hold(request):
        raise PermissionDenied
    form = HoldForm()
    if request.method == "POST":
        if "_release" in request.POST:
            return _done(model_admin, request, media, None, "Released the hold of")
        form = HoldForm(request.POST)
        if form.is_valid():
            try:
                hold = HoldIn(**form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, "; ".join(error["msg"] for error in exc.errors()))
            else:
                return _done(model_admin, request, media, hold, "Placed a hold on")
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Hold of {media.pid}",
        "opts": Media._meta,
        "media": media,
        "held": hold_active(media),
        "form": form,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "media/admin/hold.html", context)


def _done(model_admin, request: HttpRequest, media: Media, hold: HoldIn | None, what: str) -> HttpResponse:
    try:
        media = media_hold(media.pid, hold, user=request.user)
    except MediastoreError as exc:
        model_admin.message_user(request, f"Not changed: {exc.message}", level=messages.ERROR)
        return redirect(request.path)
    model_admin.log_change(request, media, f"{what} the media." if hold is None else f"Hold: {hold.reason}")
    model_admin.message_user(request, f"{what} “{media}”.")
    return redirect(reverse("admin:media_media_change", args=[media.pk]))
