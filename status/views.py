"""``/status/``: the operators' status page (HTML with server-drawn SVG charts)."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe

from mediastore.permissions import PROBE_STORES, VIEW_MEDIA
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
    figures = stats(health=True, probe=probe)
    drawn = {name: mark_safe(svg) for name, svg in charts.all_charts(figures).items()}  # noqa: S308 (pygal escapes)
    context = {"figures": figures, "charts": drawn, "may_probe": may_probe, "probed": probe}
    return render(request, "status/page.html", context)
