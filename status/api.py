"""``GET /api/stats``: the figures of the status page as JSON."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from mediastore.auth import require_admin
from mediastore.permissions import PROBE_STORES
from status.schemas import StatsOut
from status.selectors import stats as stats_figures

router = Router(tags=["status"])


@router.get("/stats", response=StatsOut, summary="Counts and bytes per status, pid type and store")
def stats(request: HttpRequest, health: bool = True, probe: bool = False):
    """What `/status/` shows: media counts by `store_status` and by `pid_type`, objects and bytes per
    store, media created per day over the last 30 days, the latest fixity-check failures, and (unless
    `health=false`) each store's health as its last probe found it, with the probe's time and age.
    Reading this never writes anything: the probes (a tiny object written, read back and deleted in
    each store) are made by `manage.py probe_stores`, which a timer runs every 5 minutes.
    `probe=true` probes every store now instead (at most 3 s per store, all at once) and records the
    result: administrators only (the permission `stores.change_storeconfig` and a token of the scope
    `admin`), anyone else gets 403. Aggregate queries only: the answer takes the same number of
    database statements however many media there are."""
    if probe:
        require_admin(request, PROBE_STORES)
    return stats_figures(health=health, probe=probe)
