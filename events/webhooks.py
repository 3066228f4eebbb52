"""Webhook subscriptions: the services behind ``/api/webhooks`` (delivery: ``events.webhook_delivery``).

A subscription starts after the newest event at its creation (``redeliver`` goes back). Its secret
is made here (``new_secret``), answered once by ``webhook_create`` or ``webhook_new_secret`` and
stored encrypted (``mediastore.crypto``, as the S3 secret keys); the worker decrypts it to sign
each delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from typing import Any

from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from events.models import KEPT_DELIVERIES, WebhookDelivery, WebhookSubscription
from events.selectors import WEBHOOK_PAUSED, parse_types
from events.webhook_targets import check_url
from identifiers.models import IdentifierType
from media.models import MediaEvent
from media.outbox import first_kept, record
from mediastore import crypto
from mediastore.errors import Gone, NotFound, RuleViolation

PAUSED = WEBHOOK_PAUSED  # through the outbox like every event (``paused_event``)
TEST = "webhook.test"  # sent only to the subscription that asked for it, never recorded as an event
MAX_FILTER_ITEMS = 100


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Mediastore-Signature``: ``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def delivery_id(subscription: WebhookSubscription, seq: int) -> uuid.UUID:
    """The same id for every attempt at one event (until a redelivery bumps the generation)."""
    return uuid.uuid5(subscription.uid, f"{subscription.generation}:{seq}")


def newest_seq() -> int:
    return MediaEvent.objects.aggregate(top=Max("seq"))["top"] or first_kept() - 1


def clean_filters(types: list[str] | None, pid_types: list[str] | None, tags: list[str] | None) -> dict:
    """The filters as stored; RuleViolation for unknown event or pid types."""
    cleaned: dict[str, Any] = {}
    if types is not None:
        cleaned["types"] = sorted(parse_types(types))
    if pid_types is not None:
        names = sorted({name.strip() for name in pid_types if name.strip()})
        known = set(IdentifierType.objects.filter(name__in=names).values_list("name", flat=True))
        for name in names:
            if name not in known:
                raise RuleViolation(f"bad pid_type: {name}")
        cleaned["pid_types"] = names
    if tags is not None:
        cleaned["tags"] = sorted({tag for tag in tags if tag})
    for name, values in cleaned.items():
        if len(values) > MAX_FILTER_ITEMS:
            raise RuleViolation(f"{name}: at most {MAX_FILTER_ITEMS} items")
    return cleaned


def webhook_list() -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.order_by("pk")


def webhook_get(pk: int) -> WebhookSubscription:
    found = WebhookSubscription.objects.filter(pk=pk).first()
    if found is None:
        raise NotFound("webhook", pk)
    return found


def new_secret() -> tuple[str, str]:
    """A new secret, in clear and as stored (encrypted)."""
    secret = secrets.token_urlsafe(32)
    return secret, crypto.encrypt(secret)


@transaction.atomic
def webhook_create(
    *, url: str, types: list[str], pid_types: list[str], tags: list[str], active: bool, user
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its secret in clear (the only time it is given out).
    RuleViolation (TargetRefused) for a refused URL or unknown filters."""
    check_url(url)
    secret, stored = new_secret()
    subscription = WebhookSubscription.objects.create(
        url=url,
        secret=stored,
        active=active,
        last_seq=newest_seq(),
        created_by=user.get_username() if getattr(user, "is_authenticated", False) else "",
        **clean_filters(types, pid_types, tags),
    )
    return subscription, secret


@transaction.atomic
def webhook_update(pk: int, changes: dict[str, Any]) -> WebhookSubscription:
    """Change the url, filters or ``active``. Activating a paused subscription resumes it at the
    event it failed on, with a fresh count of attempts."""
    subscription = WebhookSubscription.objects.select_for_update().filter(pk=pk).first()
    if subscription is None:
        raise NotFound("webhook", pk)
    if changes.get("url") is not None:
        check_url(changes["url"])
        subscription.url = changes["url"]
    filters = clean_filters(changes.get("types"), changes.get("pid_types"), changes.get("tags"))
    for name, value in filters.items():
        setattr(subscription, name, value)
    if changes.get("active") is not None:
        if changes["active"] and not subscription.active:
            subscription.paused_reason, subscription.paused_at = "", None
            subscription.attempts, subscription.next_attempt_at = 0, None
        subscription.active = changes["active"]
    subscription.save()
    return subscription


@transaction.atomic
def webhook_new_secret(pk: int) -> tuple[WebhookSubscription, str]:
    """Give the subscription a new secret and answer it in clear (the only time it is given out).
    Deliveries the worker begins after the commit are signed with it; one already under way still
    carries the old signature."""
    subscription = WebhookSubscription.objects.select_for_update().filter(pk=pk).first()
    if subscription is None:
        raise NotFound("webhook", pk)
    secret, subscription.secret = new_secret()
    subscription.save(update_fields=["secret"])
    return subscription, secret


def webhook_delete(pk: int) -> None:
    deleted, _ = WebhookSubscription.objects.filter(pk=pk).delete()
    if not deleted:
        raise NotFound("webhook", pk)


def webhook_deliveries(pk: int, limit: int = KEPT_DELIVERIES) -> list[WebhookDelivery]:
    """The newest deliveries of a subscription, newest first (at most ``KEPT_DELIVERIES`` are kept)."""
    webhook_get(pk)
    return list(WebhookDelivery.objects.filter(subscription_id=pk).order_by("-pk")[:limit])


@transaction.atomic
def webhook_redeliver(pk: int, cursor: int) -> WebhookSubscription:
    """Deliver again every event from ``cursor`` on (with new delivery ids). Gone when events
    from there were pruned, RuleViolation for a cursor beyond the newest event."""
    subscription = WebhookSubscription.objects.select_for_update().filter(pk=pk).first()
    if subscription is None:
        raise NotFound("webhook", pk)
    newest = newest_seq()
    if cursor < 1 or cursor > newest + 1:
        raise RuleViolation(f"cursor must be between 1 and {newest + 1} (the next event's)")
    if cursor < first_kept():
        raise Gone(f"events before cursor {first_kept()} were pruned; redeliver from {first_kept()} or later")
    subscription.last_seq = cursor - 1
    subscription.generation += 1
    subscription.attempts, subscription.next_attempt_at = 0, None
    subscription.save()
    return subscription


def paused_event(subscription: WebhookSubscription, now) -> MediaEvent:
    """The outbox event saying a subscription was paused. Not about a media: ``pid`` is "",
    ``mark`` and ``version`` 0, and ``media`` holds ``{"webhook": {...}}``."""
    body = {"webhook": webhook_summary(subscription)}
    return MediaEvent(
        type=PAUSED, pid="", media_pk=0, mark=0, version=0, user="", time=now, changed=[], media=body
    )


def webhook_summary(subscription: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": subscription.pk,
        "url": subscription.url,
        "active": subscription.active,
        "paused_reason": subscription.paused_reason,
        "cursor": str(subscription.last_seq),
    }


def record_paused(subscription: WebhookSubscription, now) -> None:
    """Write the ``webhook.paused`` event (in the caller's transaction, with the pause)."""
    record([paused_event(subscription, now)])


def test_event_body(user) -> dict[str, Any]:
    return {
        "cursor": "0",
        "type": TEST,
        "pid": "",
        "mark": 0,
        "version": 0,
        "user": user.get_username() if getattr(user, "is_authenticated", False) else None,
        "time": timezone.now(),
        "changed": [],
        "media": {},
    }


def unix_now() -> int:
    return int(time.time())
