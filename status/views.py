"""``/status/``: the operators' status page (HTML with server-drawn SVG charts)."""

from __future__ import annotations

from typing import get_origin

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from content import archives
from content.schemas import ArchiveQuery
from media.search.params import filters_from_query
from mediastore.errors import MediastoreError
from mediastore.panels import status_panels
from mediastore.permissions import PROBE_STORES, VIEW_MEDIA
from quotas.selectors import usage_figures
from status import charts
from status.selectors import stats


def may_see(user) -> bool:
    """Staff, or a logged-in user with the permission to view media (the groups readers and up)."""
    return user.is_authenticated and user.is_active and (user.is_staff or user.has_perm(VIEW_MEDIA))


def status_page(request: HttpRequest) -> HttpResponse:
    """The figures of ``GET /api/stats`` as charts. Others are sent to the admin login (a session,
    not a bearer token: this is a page for a browser). Store health is the last recorded probe;
    ``?probe=true`` probes every store now, for administrators (``PROBE_STORES``) only: 403 for
    anyone else, as the API answers."""
    if not may_see(request.user):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    probe = request.GET.get("probe", "").lower() in ("true", "1", "yes", "on")
    may_probe = request.user.has_perm(PROBE_STORES)
    if probe and not may_probe:
        raise PermissionDenied(f"probing the stores needs the permission {PROBE_STORES} (group admins)")
    figures = {**stats(health=True, probe=probe), "usage": usage_figures()}
    drawn = {name: mark_safe(svg) for name, svg in charts.all_charts(figures).items()}  # noqa: S308 (pygal escapes)
    context = {
        "figures": figures,
        "charts": drawn,
        "may_probe": may_probe,
        "probed": probe,
        "panels": status_panels(request.user),  # added by other apps (webhooks)
    }
    return render(request, "status/page.html", context)


LIST_PARAMETERS = {
    name for name, info in ArchiveQuery.model_fields.items() if get_origin(info.annotation) is list
}


@require_GET
def status_archive(request: HttpRequest) -> HttpResponse:
    """``/status/archive``: the status page's search form, answered with the archive
    ``GET /api/download/archive`` gives for the same parameters (empty fields left out), for a
    browser with a session of a user who may view media; a refused search is a plain-text 413/422."""
    if not (request.user.is_authenticated and request.user.is_active and request.user.has_perm(VIEW_MEDIA)):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    given = {key: [value for value in request.GET.getlist(key) if value.strip()] for key in request.GET}
    given = {key: values for key, values in given.items() if values}
    try:
        query = ArchiveQuery.model_validate(
            {key: values if key in LIST_PARAMETERS else values[-1] for key, values in given.items()}
        )
        filters = filters_from_query(query, given, extra={"format", "layout"})
        selection = archives.query_selection(filters, given)
    except MediastoreError as exc:
        return HttpResponse(exc.message, status=exc.status_code, content_type="text/plain; charset=utf-8")
    return archives.archive_response(selection, format=query.format, layout=query.layout)
