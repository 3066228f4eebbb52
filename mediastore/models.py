"""API tokens: only a hash is stored; the clear token is shown once, at login."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

TOKEN_PREFIX_LENGTH = 8


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def issue(self, user) -> tuple[ApiToken, str]:
        """Create a token for ``user``; returns the row and the clear token (never stored)."""
        clear = secrets.token_urlsafe(32)
        row = self.create(user=user, key_hash=hash_token(clear), prefix=clear[:TOKEN_PREFIX_LENGTH])
        return row, clear

    def expired(self, now) -> ApiTokenQuerySet:
        """Tokens whose expiry is at or before ``now`` (tokens without expiry never are)."""
        return self.filter(expires__lte=now)


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=TOKEN_PREFIX_LENGTH,
        editable=False,
        help_text="First characters of the token, to tell tokens apart.",
    )
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    expires = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "API token"
        ordering = ["-created"]
        # Not a model permission: who may scrape /metrics with a token from outside
        # MEDIASTORE_METRICS_ALLOW (mediastore.metrics). No group has it; grant it to a monitoring user.
        permissions = [("view_metrics", "Can scrape the Prometheus metrics at /metrics")]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    def is_expired(self, now) -> bool:
        return self.expires is not None and self.expires <= now
