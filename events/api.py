"""/api/events: the changes feed."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from events import selectors
from events.schemas import EventPage

router = Router(tags=["events"])


@router.get("/events", response=EventPage, summary="Changes feed: every change of every media, in order")
def events_list(
    request: HttpRequest,
    response: HttpResponse,
    after: str | None = None,
    limit: int = selectors.DEFAULT_LIMIT,
    types: list[str] | None = Query(None),
    wait: int = 0,
):
    """Events after the cursor `after` (omitted: from the oldest event kept), oldest first, at most
    `limit` (1 to 1000, default 100), as `{"items": [...], "next": "<cursor>"}`. Pass `next` back
    as `after` to resume: nothing is skipped or repeated, even while writers commit concurrently
    and out of order (events are numbered in commit order). `types` keeps only those event types
    (repeat it or separate by commas). `wait` (0 to 30 seconds) holds the answer open until an
    event arrives or the time is up (then `items` is empty). Each server process lets only
    `MEDIASTORE_EVENTS_WAITERS` requests wait at once, so that waiting consumers never hold the
    threads other requests need: past that, a request that finds nothing answers at once with empty
    `items`, the same `next` and a `Retry-After` header (seconds): ask again after that long. 410
    when events after `after` were pruned (`MEDIASTORE_EVENTS_RETENTION_DAYS`); start again without
    `after`. A cursor beyond the
    newest event (one the feed never gave) is 422."""
    page = selectors.events_feed(after, limit=limit, types=types, wait=wait)
    if page.busy:
        response["Retry-After"] = str(selectors.BUSY_RETRY_SECONDS)
    return {"items": [selectors.event_out(event) for event in page.items], "next": str(page.next)}
