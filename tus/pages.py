"""``/upload/``: the upload page for people (tus-js-client, vendored in tus/static/tus/tus-js-client-4.3.1/).

Logged-in users (the admin's session) with the permission to add media; others are sent to the
admin login, and a user without the permission gets 403. The page's tus requests use the same
session, with its CSRF token (``tus.views``)."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from identifiers.models import IdentifierType
from mediastore.permissions import ADD_MEDIA
from stores.models import StoreConfig

CHUNK_SIZE = 5 << 20  # bytes per PATCH: what a dropped connection can cost at most


@ensure_csrf_cookie
def upload_page(request: HttpRequest) -> HttpResponse:
    if not (request.user.is_authenticated and request.user.is_active):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if not request.user.has_perm(ADD_MEDIA):
        raise PermissionDenied(f"uploading needs the permission {ADD_MEDIA}")
    context = {
        "stores": StoreConfig.objects.order_by("pk"),
        "pid_types": IdentifierType.objects.order_by("name"),
        "chunk_size": CHUNK_SIZE,
    }
    return render(request, "tus/upload.html", context)
