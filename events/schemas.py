"""Shapes of the changes feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Field, Schema

from mediastore.schema_utils import RequestSchema


class EventOut(Schema):
    """One change of one media."""

    cursor: str = Field(..., description="Position of this event in the feed (opaque; pass it as `after`).")
    type: str = Field(
        ...,
        description="media.created, media.updated, media.tags_changed, media.bytes_stored, media.moved, "
        "media.reverted, media.deleted, or media.verify_failed (a fixity check by `manage.py verify` found "
        "the bytes changed or missing; `media.verify` says why; mark and version are unchanged); for the "
        "copies of a media's bytes replica.created, replica.good, replica.failed, replica.repaired and "
        "replica.deleted (`media.replica` is the copy, as `GET /api/media/{pid}/replicas` lists it; mark and "
        "version are unchanged); quota.warning when a write took a quota's use to 90% of a limit or more "
        "(`media` is the media written, `media.quota` the quota, its `unit`, `limit` and `used`); "
        "webhook.paused when the webhook worker paused a subscription (not about "
        'a media: pid "", mark and version 0, `media.webhook` is the subscription).',
    )
    pid: str = Field(..., description="The media's pid after the change (before it, for a delete).")
    mark: int = Field(..., description="The media's `mark` after the change.")
    version: int = Field(..., description="The media's `version` after the change (as it was, for a delete).")
    user: str | None = Field(None, description="Username of who made the change.")
    time: datetime
    changed: list[str] = Field(..., description="Fields the change set, as the API names them.")
    media: dict[str, Any] = Field(
        ...,
        description="The media as `GET /api/media/{pid}` answered after the change (for a delete: before).",
    )


class EventPage(Schema):
    items: list[EventOut]
    next: str = Field(..., description="Pass as `after` to get the events that follow.")


class WebhookIn(RequestSchema):
    """A new webhook subscription."""

    url: str = Field(
        ...,
        description="Where to POST the events: an `https://` URL (plain `http://` only to hosts listed in "
        "MEDIASTORE_WEBHOOK_ALLOW_HOSTS). Its host must resolve to public addresses only (no loopback, "
        "private, link-local, metadata, multicast or reserved ones) unless it is listed there: else 422.",
    )
    types: list[str] = Field([], description="Event types to send (as the feed names them); empty: all.")
    pid_types: list[str] = Field([], description="Only media of these pid types; empty: all.")
    tags: list[str] = Field([], description="Only media carrying any of these tags; empty: all.")
    active: bool = Field(True, description="Whether events are sent; false: paused.")


class WebhookPatch(RequestSchema):
    """Changes to a webhook subscription; a field left out stays as it is."""

    url: str | None = Field(None, description="A new target URL (checked as at creation).")
    types: list[str] | None = None
    pid_types: list[str] | None = None
    tags: list[str] | None = None
    active: bool | None = Field(
        None,
        description="false pauses the subscription; true resumes it (a paused one at the event it failed on, "
        "with a fresh count of attempts).",
    )


class WebhookOut(Schema):
    """A webhook subscription (never its secret)."""

    id: int
    url: str
    types: list[str]
    pid_types: list[str]
    tags: list[str]
    active: bool
    paused_reason: str = Field(..., description="Why the worker paused it (empty unless it did).")
    paused_at: datetime | None
    cursor: str = Field(..., description="The last event handled (delivered or left out by the filters).")
    attempts: int = Field(..., description="Failed attempts in a row at the next event.")
    next_attempt_at: datetime | None = Field(
        ..., description="When the next event is retried (after a failure)."
    )
    delivered_total: int
    failed_total: int
    last_success_at: datetime | None
    created: datetime
    created_by: str


class WebhookCreated(WebhookOut):
    secret: str = Field(
        ...,
        description="The key of the `X-Mediastore-Signature` HMAC. Shown only in this answer: keep it now.",
    )


class DeliveryOut(Schema):
    """One attempt to deliver one event."""

    delivery_id: str = Field(
        ..., description="`X-Mediastore-Delivery`: the same for each attempt at one event."
    )
    cursor: str | None = Field(..., description="The event's cursor; null for a test event.")
    type: str
    attempt: int = Field(..., description="1 for the first attempt at this event, 2 for the first retry...")
    time: datetime
    status: int | None = Field(..., description="The HTTP status answered; null when none came.")
    ok: bool = Field(..., description="Whether the receiver acknowledged it (a 2xx).")
    duration_ms: int
    error: str = Field(..., description="Why it failed (empty when acknowledged).")
    retry_at: datetime | None = Field(..., description="When the event is tried again after this failure.")


class RedeliverIn(RequestSchema):
    cursor: int = Field(..., description="The first event to send again (and every one after it).")
