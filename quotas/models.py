"""Quotas (limits on bytes and media per store, per account, per both, or site-wide) and the usage
they are checked against, kept in the transaction of every write (``quotas.services.charge``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce


class Quota(models.Model):
    """A limit on the primary copies of media: ``store`` and ``user`` say whose (a store's media, an
    account's media, an account's media in one store, or every media when both are empty)."""

    store = models.ForeignKey(
        "stores.StoreConfig",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quotas",
        help_text="The store configuration; empty: every store.",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quotas",
        help_text="The account (the media's owner); empty: every owner, including none.",
    )
    max_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Bytes allowed (sizes of primary copies); empty: no limit."
    )
    max_media = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Media allowed; empty: no limit."
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            # One quota per (store, user) pair, the empty ones included (NULLs would all differ).
            models.UniqueConstraint(
                Coalesce("store", 0), Coalesce("user", 0), name="quota_store_user_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(max_bytes__isnull=False) | models.Q(max_media__isnull=False),
                name="quota_has_a_limit",
                violation_error_message="Give max_bytes, max_media or both.",
            ),
        ]

    def __str__(self) -> str:
        return describe(self.store_id, self.user.get_username() if self.user_id else None)


def describe(store_id: int | None, username: str | None) -> str:
    """How messages name a quota: ``quota of store 3 for user 'alice'``, ``site-wide quota``."""
    if store_id is None and username is None:
        return "site-wide quota"
    parts = ["quota"]
    if store_id is not None:
        parts.append(f"of store {store_id}")
    if username is not None:
        parts.append(f"for user '{username}'")
    return " ".join(parts)


class Usage(models.Model):
    """Bytes and media count of the primary copies of one owner's media in one store. Changed only
    with ``F()`` arithmetic in the transaction of the write it counts (``quotas.services``)."""

    store = models.ForeignKey("stores.StoreConfig", on_delete=models.CASCADE, related_name="+")
    owner = models.CharField(max_length=150, blank=True, default="", help_text="Username; empty: no owner.")
    bytes = models.BigIntegerField(default=0)
    media = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["store", "owner"]
        verbose_name_plural = "usage"
        constraints = [models.UniqueConstraint(fields=["store", "owner"], name="usage_store_owner_unique")]

    def __str__(self) -> str:
        return f"store {self.store_id}, {self.owner or 'no owner'}: {self.bytes} bytes, {self.media} media"


class QuotaEvent(models.TextChoices):
    """Outbox event types of quotas (``media.outbox``; docs/events.md)."""

    WARNING = "quota.warning"
