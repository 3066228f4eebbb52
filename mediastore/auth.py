"""Bearer-token authentication, the login/logout endpoints and the caller's own tokens
(``/api/tokens``)."""

from __future__ import annotations

from datetime import UTC, timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema, Status
from ninja.security import HttpBearer

from mediastore import bodies, tokens
from mediastore.errors import Forbidden, ScopeForbidden, TokenExpired
from mediastore.models import ApiToken, hash_token
from mediastore.permissions import (
    ADMIN,
    PERMISSIONS_ATTRIBUTE,
    groups_granting,
    missing_permission,
    missing_scope,
    permissions_column,
    scope_allows,
    scopes_allowing,
    what_needs,
)
from mediastore.rowfetch import RowFetcher
from mediastore.schema_utils import RequestSchema
from mediastore.schemas import ApiTokenCreatedOut, ApiTokenIn, ApiTokenOut
from mediastore.throttle import reserve_login_attempt

# Writing last_used on every request would turn each read into a write; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(seconds=60)
# The token with its user and the user's permissions in one statement compiled once per process
# and prepared once per connection on PostgreSQL (read on every request).
TOKEN_WITH_USER = RowFetcher(ApiToken, "key_hash", ("user",), extra=permissions_column)
# Operations whose first statement is one row by a path parameter: (method, view name) -> (the
# fetcher, the parameter). That row is read in the token's statement (register_read_with_token).
_READS_WITH_TOKEN: dict[tuple[str, str], tuple[RowFetcher, str]] = {}
#: What ``read_with_token`` answers when the request's token statement did not read that row.
NOT_READ = object()


def register_read_with_token(method: str, view_name: str, fetcher: RowFetcher, parameter: str) -> None:
    """Read ``fetcher``'s row for the path parameter ``parameter`` in the same statement as the
    bearer token, for requests of ``method`` to the view ``view_name`` (``api:media_get``); the
    view takes it with ``read_with_token``. One statement instead of two: on a busy server each
    round trip to PostgreSQL waits for the database process to be scheduled (docs/performance.md).
    The row is read before the token's rights are checked and is simply dropped when they fail."""
    _READS_WITH_TOKEN[(method, view_name)] = (fetcher, parameter)


def read_with_token(request: HttpRequest, fetcher: RowFetcher, value):
    """The row of ``fetcher`` for ``value`` read with this request's token (None: there is none),
    or ``NOT_READ`` when it was not (another value, no bearer token, not registered)."""
    read = getattr(request, "_mediastore_read_with_token", None)
    if read is None or read[0] is not fetcher or read[1] != value:
        return NOT_READ
    return read[2]


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>``; the scheme word is case-insensitive.

    A valid token whose user lacks the operation's permission (``mediastore.permissions``) is
    refused with 403 naming the permission; one whose scopes do not allow it, with 403 naming the
    scope. An expired token is 401 naming when it expired.
    """

    def __call__(self, request: HttpRequest):
        """The ``Authorization`` header read straight from ``request.META``: ninja's own reads
        ``request.headers``, which builds a dictionary of every header on each request."""
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != self.openapi_scheme:
            return None
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str):
        row = token_row(token, request)
        if row is None:
            return None
        request.user = row.user
        request.api_token = row
        bodies.trust(request)  # its body has only the progress deadline now
        missing = missing_permission(request, row.user)
        if missing is not None:
            member_of = list(row.user.groups.order_by("name").values_list("name", flat=True))
            raise Forbidden(missing, groups_granting(missing), member_of)
        missing = missing_scope(request, row.scope_list)
        if missing is not None:
            raise ScopeForbidden(scopes_allowing(missing)[0], what_needs(missing), row.scope_list)
        return row.user


def require_admin(request: HttpRequest, permission: str) -> None:
    """For a part of an operation that only administrators may ask for (``?probe=true``): raise
    Forbidden (403 naming ``permission`` and the groups that have it) unless the caller's account
    has it, and ScopeForbidden unless the token has the scope ``admin``."""
    user, row = request.user, request.api_token
    if not user.has_perm(permission):
        member_of = list(user.groups.order_by("name").values_list("name", flat=True))
        raise Forbidden(permission, groups_granting(permission), member_of)
    if ADMIN not in row.scope_list:
        raise ScopeForbidden(ADMIN, what_needs(permission), row.scope_list)


def token_row(token: str, request: HttpRequest | None = None) -> ApiToken | None:
    """The live token row (with its user) for a clear bearer token, or None when the token is
    unknown (or revoked) or its user inactive; TokenExpired when it has expired. Notes when it was
    last used (to the minute). With ``request`` of a view registered by ``register_read_with_token``,
    the view's row is read in the same statement.

    Nothing is cached between requests: a revoked token fails at the next request on every worker
    (docs/performance.md)."""
    token = token.strip()
    if not token:
        return None
    match = getattr(request, "resolver_match", None)
    beside = _READS_WITH_TOKEN.get((request.method, match.view_name)) if match is not None else None
    if beside is not None and isinstance(match.kwargs.get(beside[1]), str):
        fetcher, value = beside[0], match.kwargs[beside[1]]
        row, read = TOKEN_WITH_USER.first_beside(hash_token(token), fetcher, value)
        request._mediastore_read_with_token = (fetcher, value, read)
    else:
        row = TOKEN_WITH_USER.first(hash_token(token))
    now = timezone.now()
    if row is None or not row.user.is_active:
        return None
    if row.is_expired(now):
        raise TokenExpired(row.expires.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))
    if row.last_used is None or now - row.last_used > LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=row.pk).update(last_used=now)
    if not row.user.is_superuser:  # read by PermissionBackend: no query of its own
        loaded = set(row.fetched_extra.split(",")) if row.fetched_extra else set()
        setattr(row.user, PERMISSIONS_ATTRIBUTE, loaded)
    return row


router = Router(tags=["auth"])


class LoginIn(RequestSchema):
    username: str
    password: str


class TokenOut(Schema):
    token: str


class ErrorOut(Schema):
    error: str


class DetailOut(Schema):
    detail: str


RETRY_AFTER = {
    "description": "Too many failed logins for this username or from this address; the "
    "`Retry-After` header says after how many seconds to try again.",
    "headers": {
        "Retry-After": {
            "description": "Seconds until logins for this username and address are accepted again.",
            "schema": {"type": "integer"},
        }
    },
}


@router.post(
    "/login",
    auth=None,
    response={200: TokenOut, 401: ErrorOut, 429: DetailOut},
    summary="Log in and get a bearer token",
    openapi_extra={"responses": {429: RETRY_AFTER}},
)
def login(request: HttpRequest, payload: LoginIn):
    """Exchange a username and password for a new bearer token.

    Every login issues a new token; send it as `Authorization: Bearer <token>` (or paste it into
    **Authorize** above). Tokens expire after `MEDIASTORE_TOKEN_TTL_HOURS` when that is set.
    Inactive users and users without a usable password cannot log in.

    Failed logins are limited per username and per client address (`MEDIASTORE_LOGIN_RATE`,
    default 10 per minute): past the limit the answer is 429 with a `Retry-After` header, without
    the password being checked, until the window that began with the first failure ends. A
    successful login clears its username's count of failures.
    """
    attempt = reserve_login_attempt(request, payload.username)  # counted as a failure until it succeeds
    user = authenticate(request, username=payload.username, password=payload.password)
    if user is None or not user.is_active:
        return Status(401, {"error": "Invalid credentials"})
    attempt.succeeded()
    row, clear = ApiToken.objects.issue(user, name=tokens.LOGIN_TOKEN_NAME)
    if settings.MEDIASTORE_TOKEN_TTL_HOURS:
        row.expires = row.created + timedelta(hours=settings.MEDIASTORE_TOKEN_TTL_HOURS)
        row.save(update_fields=["expires"])
    return Status(200, {"token": clear})


@router.post("/logout", response={204: None}, summary="Revoke the token this request presents")
def logout(request: HttpRequest):
    """Revoke the bearer token sent with this request; it stops working at once. Other tokens of
    the same user stay valid (revoke those with `DELETE /api/tokens/{id}` or in the admin). Any
    token may revoke itself, whatever its scopes."""
    ApiToken.objects.filter(pk=request.api_token.pk).delete()
    return Status(204, None)


@router.get("/hello", auth=None, summary="Check that the API answers")
def hello(request: HttpRequest):
    """A public liveness greeting: `{"msg": "Hello, world!"}`."""
    return {"msg": "Hello, world!"}


def token_allows(row: ApiToken, permission: str) -> bool:
    """Whether a live token may do what needs ``permission``: its account has it and its scopes
    allow it (for checks outside the API's operations, such as /metrics)."""
    return row.user.has_perm(permission) and scope_allows(row.scope_list, permission)


@router.post(
    "/tokens",
    response={201: ApiTokenCreatedOut},
    tags=["tokens"],
    summary="Make a scoped, expiring token for yourself",
)
def token_create(request: HttpRequest, payload: ApiTokenIn):
    """Make a new token of your account with the scopes it needs, e.g. a `read`+`write` token for an
    instrument that uploads, so the instrument does not hold your password or a login token with
    every right of your account. The token may do what both your account's permissions and its
    scopes allow; it can be given only scopes of which your account has some permission (422
    naming the scope otherwise; `admin` is always possible: it is everything your account may do).
    Unknown scopes and an `expires_in` outside 1 s .. 10 years are 422; so is an `expires_in` (or
    `null`) that would outlast the expiring token this request presents, unless that is a login token:
    a token cannot outlive the token that made it. The name `login` is reserved for login tokens.

    The answer is the only time the token is shown: only a hash of it is stored. Making tokens needs
    a login token or one with the scope `admin` (a `read` token cannot make a `write` token).
    """
    row, clear = tokens.token_create(
        user=request.auth,
        name=payload.name,
        scopes=payload.scopes,
        expires_in=payload.expires_in,
        not_after=tokens.lifetime_bound(getattr(request, "api_token", None)),
    )
    body = {"id": row.pk, "token": clear, "name": row.name, "scopes": row.scope_list, "expires": row.expires}
    return Status(201, body)


@router.get("/tokens", response=list[ApiTokenOut], tags=["tokens"], summary="List your tokens")
def token_list(request: HttpRequest):
    """Your own tokens, newest first, login tokens and expired ones included (expired tokens are
    deleted by the server's daily `purge_tokens`): name, scopes, when made, when they expire and
    when last used. Never the tokens themselves: they are shown only when made."""
    return tokens.token_list(user=request.auth)


@router.delete("/tokens/{id}", response={204: None}, tags=["tokens"], summary="Revoke one of your tokens")
def token_revoke(request: HttpRequest, id: int):
    """Revoke one of your tokens: from the next request on it is refused (401) by every server
    process. 404 for an unknown id or another user's token. Revoking the token this request
    presents works too (as `POST /api/logout` does)."""
    tokens.token_revoke(user=request.auth, token_id=id)
    return Status(204, None)
