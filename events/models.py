"""Webhook subscriptions and their deliveries (``events.webhooks``)."""

from __future__ import annotations

import uuid

from django.db import models

# Deliveries kept per subscription (older ones are deleted as new ones are written).
KEPT_DELIVERIES = 100


class WebhookSubscription(models.Model):
    """A target URL that every matching change event is POSTed to, signed with ``secret``, in cursor
    order. ``last_seq`` is the cursor of the last event handled (delivered, or left out by the
    filters); ``attempts`` counts the failed attempts in a row at the next one."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    url = models.CharField(max_length=2000)
    types = models.JSONField(default=list, blank=True, help_text="Event types to send; empty: all.")
    pid_types = models.JSONField(default=list, blank=True, help_text="Pid types to send; empty: all.")
    tags = models.JSONField(
        default=list, blank=True, help_text="Send media carrying any of these; empty: all."
    )
    secret = models.TextField(editable=False)  # encrypted (mediastore.crypto), never shown again
    active = models.BooleanField(default=True)
    paused_reason = models.TextField(blank=True, default="")
    paused_at = models.DateTimeField(null=True, blank=True)
    last_seq = models.BigIntegerField(default=0)  # the API's "cursor"
    # Bumped by a redelivery, so that a redelivered event has a new delivery id (a retry keeps it).
    generation = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_total = models.PositiveBigIntegerField(default=0)
    failed_total = models.PositiveBigIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.pk} {self.url}"


class WebhookDelivery(models.Model):
    """One attempt to deliver one event (or a test event, ``cursor`` None) to a subscription."""

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.UUIDField()
    cursor = models.BigIntegerField(null=True, blank=True)
    type = models.CharField(max_length=32)
    attempt = models.PositiveIntegerField(default=1)
    time = models.DateTimeField()
    status = models.PositiveSmallIntegerField(null=True, blank=True)  # None: no HTTP answer
    ok = models.BooleanField(default=False)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["subscription", "-id"], name="webhook_delivery_recent")]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status or self.error[:40]}"
