"""``GET /api/stats``: the figures of the status page as JSON."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from status.schemas import StatsOut
from status.selectors import stats as stats_figures

router = Router(tags=["status"])


@router.get("/stats", response=StatsOut, summary="Counts and bytes per status, pid type and store")
def stats(request: HttpRequest, health: bool = True):
    """What `/status/` shows: media counts by `store_status` and by `pid_type`, objects and bytes per
    store, media created per day over the last 30 days, the latest fixity-check failures, and (unless
    `health=false`) each store's health, probed now by writing, reading and deleting a tiny object
    (at most 3 s per store, all stores at once). Aggregate queries only: the answer takes the same
    number of database statements however many media there are."""
    return stats_figures(health=health)
