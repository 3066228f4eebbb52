"""Webhook figures for ``/metrics`` and the status page: per subscription, how far it is behind
the newest event (lag), its failed attempts, and whether it is paused."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from events.models import WebhookSubscription
from events.webhooks import newest_seq
from mediastore.metrics import PREFIX
from mediastore.panels import Row


def subscriptions() -> list[WebhookSubscription]:
    return list(WebhookSubscription.objects.order_by("pk"))


def scrape_webhooks() -> Iterator:
    found = subscriptions()
    newest = newest_seq() if found else 0
    lag = GaugeMetricFamily(
        f"{PREFIX}_webhook_lag_events",
        "Events after a webhook subscription's cursor (not yet handled).",
        labels=["id"],
    )
    paused = GaugeMetricFamily(
        f"{PREFIX}_webhook_paused", "1 while a webhook subscription is paused.", labels=["id"]
    )
    failing = GaugeMetricFamily(
        f"{PREFIX}_webhook_attempts_failing",
        "Failed attempts in a row at a subscription's next event.",
        labels=["id"],
    )
    delivered = CounterMetricFamily(
        f"{PREFIX}_webhook_deliveries",
        "Webhook delivery attempts, by subscription and result.",
        labels=["id", "result"],
    )
    for subscription in found:
        ident = str(subscription.pk)
        lag.add_metric([ident], max(0, newest - subscription.last_seq))
        paused.add_metric([ident], 0 if subscription.active else 1)
        failing.add_metric([ident], subscription.attempts)
        delivered.add_metric([ident, "ok"], subscription.delivered_total)
        delivered.add_metric([ident, "failed"], subscription.failed_total)
    yield from (lag, paused, failing, delivered)


def status_rows() -> list[Row]:
    found = subscriptions()
    newest = newest_seq() if found else 0
    rows = []
    for subscription in found:
        lag = max(0, newest - subscription.last_seq)
        state = "paused: " + subscription.paused_reason if not subscription.active else "active"
        text = (
            f"#{subscription.pk} {subscription.url}: {state}; {lag} event{'s' if lag != 1 else ''} behind; "
            f"{subscription.delivered_total} delivered, {subscription.failed_total} failed attempts"
        )
        if subscription.active and subscription.attempts:
            retry = f"{subscription.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC"
            text += f" ({subscription.attempts} in a row, retry at {retry})"
        rows.append(Row(text, bad=not subscription.active or subscription.attempts > 0))
    return rows
