"""API tokens: only a hash is stored; the clear token is shown once, when it is issued."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

from mediastore.permissions import ADMIN, SCOPES

TOKEN_PREFIX_LENGTH = 8


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def join_scopes(scopes) -> str:
    """The stored form of a set of scopes: comma-separated, in the order of ``SCOPES``."""
    return ",".join(scope for scope in SCOPES if scope in set(scopes))


class ApiTokenQuerySet(models.QuerySet):
    def issue(
        self, user, *, name: str = "", scopes: tuple[str, ...] | list[str] = (ADMIN,), expires=None
    ) -> tuple[ApiToken, str]:
        """Create a token for ``user``; returns the row and the clear token (never stored). Scopes
        are not checked here (``mediastore.tokens.token_create`` does)."""
        clear = secrets.token_urlsafe(32)
        row = self.create(
            user=user,
            key_hash=hash_token(clear),
            prefix=clear[:TOKEN_PREFIX_LENGTH],
            name=name,
            scopes=join_scopes(scopes),
            expires=expires,
        )
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
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for.")
    # Comma-separated, in the order of SCOPES. Login tokens (and tokens from before scopes) have
    # "admin": every right of their account.
    scopes = models.CharField(
        max_length=64,
        default=ADMIN,
        help_text="What the token may do within its account's permissions: read, write, delete, admin.",
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

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split(",") if self.scopes else []

    def is_expired(self, now) -> bool:
        return self.expires is not None and self.expires <= now
