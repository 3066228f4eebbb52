"""Webhook subscriptions in the admin: filters, url and pausing are editable; the secret never
shows; the last deliveries are listed read-only on each subscription's page."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from events.models import WebhookDelivery, WebhookSubscription
from events.webhook_targets import check_url
from events.webhooks import clean_filters
from mediastore.errors import RuleViolation

DELIVERY_FIELDS = ["time", "cursor", "type", "attempt", "status", "ok", "duration_ms", "error", "retry_at"]


class DeliveryInline(admin.TabularInline):
    """The newest deliveries (the worker keeps the last 100), read only."""

    model = WebhookDelivery
    fields = readonly_fields = ["delivery_id", *DELIVERY_FIELDS]
    extra = 0
    can_delete = False
    ordering = ["-pk"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class SubscriptionForm(forms.ModelForm):
    class Meta:
        model = WebhookSubscription
        fields = ["url", "types", "pid_types", "tags", "active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            check_url(url)
        except RuleViolation as exc:
            raise forms.ValidationError(exc.message) from None
        return url

    def clean(self) -> dict:
        """The filters as the API checks and stores them (known event and pid types)."""
        cleaned = super().clean()
        lists = {name: cleaned.get(name) for name in ("types", "pid_types", "tags")}
        if any(not isinstance(value, list | None) for value in lists.values()):
            raise forms.ValidationError("types, pid_types and tags must each be a JSON list")
        try:
            cleaned.update(clean_filters(lists["types"] or [], lists["pid_types"] or [], lists["tags"] or []))
        except RuleViolation as exc:
            raise forms.ValidationError(exc.message) from None
        return cleaned


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    """Subscriptions are created through the API (``POST /api/webhooks``), which answers the secret
    once; here they are viewed, edited, paused and deleted."""

    form = SubscriptionForm
    list_display = [
        "pk",
        "url",
        "active",
        "last_seq",
        "attempts",
        "delivered_total",
        "failed_total",
        "paused_reason",
    ]
    list_filter = ["active"]
    search_fields = ["url"]
    readonly_fields = [
        "last_seq",
        "attempts",
        "next_attempt_at",
        "paused_reason",
        "paused_at",
        "delivered_total",
        "failed_total",
        "last_success_at",
        "created",
        "created_by",
    ]
    inlines = [DeliveryInline]

    def has_add_permission(self, request) -> bool:
        return False  # the secret is made and shown once by POST /api/webhooks
