"""Domain errors and their HTTP meaning.

Services and backends raise these; ``mediastore.api`` turns them into responses in one place.
Each class knows its status code and builds the body shape that ``API_CONTRACT.md`` fixes for it.
"""

from __future__ import annotations


class MediastoreError(Exception):
    """Base of every error that has a defined HTTP answer."""

    status_code = 400
    kind = "Error"
    headers: dict[str, str] = {}  # response headers the error adds (e.g. Retry-After)

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict:
        return {"detail": [{"error": self.message, **self.extra}]}


class TextError(MediastoreError):
    """An error whose body is one sentence: ``{"detail": "..."}`` (the rest carry a list of items)."""

    def body(self) -> dict:
        return {"detail": self.message}


class NotFound(TextError):
    """A named object does not exist: 404 ``{"detail": "<what> '<key>' not found"}``."""

    status_code = 404
    kind = "NotFound"

    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"{what} '{key}' not found")


class RuleViolation(MediastoreError):
    """A business rule refuses the input: 422 ``{"detail": [{"error": "..."}]}``."""

    status_code = 422
    kind = "ValidationError"


class Conflict(MediastoreError):
    """Uniqueness or still-referenced conflicts, bytes in the wrong state: 409."""

    status_code = 409
    kind = "Conflict"


class StorageError(TextError):
    """The storage backend failed or is unreachable: 502 ``{"detail": "..."}``.

    The message must be safe to show to a client: no credentials, no tracebacks.
    """

    status_code = 502
    kind = "StorageError"


class InsufficientStorage(StorageError):
    """The store's disk (or quota) is full: 507 ``{"detail": "..."}``. Nothing was half-written."""

    status_code = 507
    kind = "InsufficientStorage"


class QuotaExceeded(InsufficientStorage):
    """A write would take a quota past its limit: 507 ``{"detail": "...", "quota": {store, user,
    max_bytes, max_media}, "unit": "bytes" | "media", "limit": n, "used": n, "requested": n}``
    (``used``: the quota's use before the write; ``requested``: what the write adds). Nothing was
    stored. In a BulkResult it is an ``InsufficientStorage`` failure of that item."""

    index: int | None = None  # which of the write's items did not fit

    def __init__(
        self, name: str, *, quota: dict, unit: str, limit: int, used: int, requested: int, **extra
    ) -> None:
        super().__init__(
            f"{name} exceeded: {limit} {unit} allowed, {used} in use, this write adds {requested}; "
            "nothing was stored",
            quota=quota,
            unit=unit,
            limit=limit,
            used=used,
            requested=requested,
            **extra,
        )

    def body(self) -> dict:
        return {"detail": self.message, **self.extra}


class LengthRequired(TextError):
    """A streamed body came without a length the server can trust: 411 ``{"detail": "..."}``."""

    status_code = 411
    kind = "LengthRequired"


class PreconditionFailed(TextError):
    """A conditional request's ``If-Match``/``If-None-Match`` does not hold: 412 ``{"detail": "..."}``."""

    status_code = 412
    kind = "PreconditionFailed"


class Forbidden(TextError):
    """The caller is logged in but lacks the permission the operation needs: 403 ``{"detail": "..."}``."""

    status_code = 403
    kind = "Forbidden"

    def __init__(
        self, permission: str, granting: list[str] | None = None, member_of: list[str] | None = None
    ) -> None:
        """``granting``: the groups that have the permission; ``member_of``: the caller's groups."""
        where = f"your account is in {', '.join(member_of)}" if member_of else "your account is in no group"
        if granting:
            how = (
                f"the group{'s' if len(granting) > 1 else ''} {' or '.join(granting)} "
                f"{'have' if len(granting) > 1 else 'has'} it ({where}); an administrator can add your "
                "account to one of them in the admin (/admin/auth/user/)"
            )
        else:
            how = f"no group has it ({where}); an administrator can grant it to your account in the admin"
        super().__init__(f"permission denied: this operation needs {permission}: {how}")
        self.permission = permission


class ScopeForbidden(TextError):
    """The token's account may do it, but the token's scopes do not allow it: 403 ``{"detail": "..."}``
    naming the scope needed and what it covers."""

    status_code = 403
    kind = "Forbidden"

    def __init__(self, scope: str, needs: str, held: list[str]) -> None:
        super().__init__(
            f"token scope too narrow: this operation needs the scope {scope!r} ({needs}); this token has "
            f"{', '.join(held) or 'no scope'}. Create a token with that scope (POST /api/tokens with a login "
            "token) to do this"
        )
        self.scope = scope


class TokenExpired(TextError):
    """The bearer token is known but past its expiry: 401 ``{"detail": "token expired at <time>"}``,
    so a script can tell "make a new token" from "wrong token"."""

    status_code = 401
    kind = "Unauthorized"

    def __init__(self, expires: str) -> None:
        super().__init__(f"token expired at {expires}")


class PayloadTooLarge(MediastoreError):
    """Something in the request is over a configured size limit: 413 ``{"detail": [{"error": "..."}]}``
    (the rule-violation shape, so a bulk create can name the item). In a BulkResult it counts as a
    ``ValidationError`` of that item, one of the kinds clients know."""

    status_code = 413
    kind = "ValidationError"


class UnsupportedMediaType(TextError):
    """A JSON endpoint was sent a body of another media type: 415 ``{"detail": "..."}``."""

    status_code = 415
    kind = "UnsupportedMediaType"


class RequestTimeout(TextError):
    """The request body did not arrive within its deadline (mediastore/bodies.py): 408
    ``{"detail": "..."}`` naming the setting. Not an OSError, so Django's ``request.body`` and
    ``request.read()`` pass it on unchanged (they turn OSErrors into UnreadablePostError) and no
    store takes it for a failure of its own."""

    status_code = 408
    kind = "RequestTimeout"


class TooManyRequests(TextError):
    """Too many failed attempts: 429 ``{"detail": "..."}`` with ``Retry-After`` (seconds)."""

    status_code = 429
    kind = "TooManyRequests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class Gone(TextError):
    """It existed but was deleted for good (pruned change events): 410 ``{"detail": "..."}``."""

    status_code = 410
    kind = "Gone"


class ServiceUnavailable(TextError):
    """A service the operation depends on cannot be reached right now: 503 ``{"detail": "..."}``."""

    status_code = 503
    kind = "ServiceUnavailable"


class IncompleteBody(TextError):
    """A request body ended before its framing said it would (the client stopped sending, or the
    chunked encoding broke off): 400 ``{"detail": "..."}``. Nothing the body carried was kept."""

    status_code = 400
    kind = "IncompleteBody"


class NotImplementedCoding(TextError):
    """A request body in a transfer coding the server does not decode (``gzip``, ``deflate``, ...):
    501 ``{"detail": "..."}`` (RFC 9112 section 6.1). Nothing is read or stored."""

    status_code = 501
    kind = "NotImplemented"


class Locked(MediastoreError):
    """The media is under a hold (``POST /api/media/{pid}/hold``) that forbids this change: 423
    ``{"detail": [{"error": "...", "pid": ..., "hold_reason": ..., "hold_until": ...}]}``. In a
    BulkResult it is that item's failure of kind ``Locked``."""

    status_code = 423
    kind = "Locked"


class Expired(NotFound):
    """The media passed its ``expires_at``: it is no longer served though ``manage.py expire`` has not
    deleted it yet. 404 ``{"detail": "Media '<pid>' not found: it expired at <time>"}``."""

    def __init__(self, pid: str, when: str) -> None:
        TextError.__init__(self, f"Media '{pid}' not found: it expired at {when}")
