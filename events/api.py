"""/api/events: the changes feed; /api/webhooks: its signed pushes to HTTP services."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status

from events import selectors, webhook_delivery, webhooks
from events.schemas import (
    DeliveryOut,
    EventPage,
    RedeliverIn,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)

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


def webhook_out(subscription) -> dict:
    fields = WebhookOut.model_fields
    out = {name: getattr(subscription, name) for name in fields if name not in ("id", "cursor")}
    return {**out, "id": subscription.pk, "cursor": str(subscription.last_seq)}


def delivery_out(delivery) -> dict:
    out = {name: getattr(delivery, name) for name in DeliveryOut.model_fields}
    out["delivery_id"] = str(delivery.delivery_id)
    out["cursor"] = None if delivery.cursor is None else str(delivery.cursor)
    return out


@router.get("/webhooks", response=list[WebhookOut], summary="Webhook subscriptions")
def webhook_list(request: HttpRequest):
    """Every webhook subscription, oldest first, without secrets."""
    return [webhook_out(subscription) for subscription in webhooks.webhook_list()]


@router.post("/webhooks", response=WebhookCreated, summary="Subscribe a URL to the changes")
def webhook_create(request: HttpRequest, payload: WebhookIn):
    """Every change event after this moment that the filters let through is POSTed to `url` as the
    feed's JSON (`GET /api/events` item), one at a time in cursor order, signed with the `secret`
    this answer gives once. 422 for a refused URL (see `url`), an unknown event type or pid type."""
    subscription, secret = webhooks.webhook_create(**payload.dict(), user=request.auth)
    return {**webhook_out(subscription), "secret": secret}


@router.get("/webhooks/{id}", response=WebhookOut, summary="One webhook subscription")
def webhook_get(request: HttpRequest, id: int):
    """The subscription (its secret is never shown again); 404 when there is none."""
    return webhook_out(webhooks.webhook_get(id))


@router.patch("/webhooks/{id}", response=WebhookOut, summary="Change, pause or resume a webhook")
def webhook_update(request: HttpRequest, id: int, payload: WebhookPatch):
    """Change the url (checked as at creation: 422) or filters, pause (`active` false) or resume
    (`active` true: a paused subscription goes on at the event it failed on). Answers the result."""
    return webhook_out(webhooks.webhook_update(id, payload.dict(exclude_unset=True)))


@router.delete("/webhooks/{id}", response={204: None}, summary="Delete a webhook subscription")
def webhook_delete(request: HttpRequest, id: int):
    """Delete the subscription and its deliveries; 404 when there is none."""
    webhooks.webhook_delete(id)
    return Status(204, None)


@router.get("/webhooks/{id}/deliveries", response=list[DeliveryOut], summary="A webhook's last deliveries")
def webhook_deliveries(request: HttpRequest, id: int):
    """The last attempts to deliver (at most 100 are kept), newest first: status, duration, error."""
    return [delivery_out(delivery) for delivery in webhooks.webhook_deliveries(id)]


@router.post("/webhooks/{id}/test", response=DeliveryOut, summary="Send a test event now")
def webhook_test(request: HttpRequest, id: int):
    """POST a `webhook.test` event (cursor "0", `media` empty) to the subscription's URL now, signed
    as every delivery, and answer the attempt (`ok`, `status`, `error`); it is listed among the
    deliveries and does not change the cursor. Works on a paused subscription too."""
    return delivery_out(webhook_delivery.send_test(webhooks.webhook_get(id), request.auth))


@router.post("/webhooks/{id}/secret", response=WebhookCreated, summary="Give a webhook a new secret")
def webhook_new_secret(request: HttpRequest, id: int):
    """Replace the subscription's secret with a new one, answered with the subscription: the only
    time it is shown. Deliveries from now on are signed with it alone (one already under way may
    still carry the old signature), so let the receiver accept both secrets while it switches over."""
    subscription, secret = webhooks.webhook_new_secret(id)
    return {**webhook_out(subscription), "secret": secret}


@router.post("/webhooks/{id}/redeliver", response=WebhookOut, summary="Deliver again from a cursor")
def webhook_redeliver(request: HttpRequest, id: int, payload: RedeliverIn):
    """Send again every event from `cursor` on (the worker does, in order, with new delivery ids).
    410 when events from there were pruned; 422 for a cursor beyond the next event's."""
    return webhook_out(webhooks.webhook_redeliver(id, payload.cursor))
