"""Bearer-token authentication and the login/logout endpoints."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema, Status
from ninja.security import HttpBearer

from mediastore.errors import Forbidden
from mediastore.models import ApiToken, hash_token
from mediastore.permissions import missing_permission

# Writing last_used on every request would turn each read into a write; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(seconds=60)


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>``; the scheme word is case-insensitive.

    A valid token whose user lacks the operation's permission (``mediastore.permissions``) is
    refused with 403 naming the permission.
    """

    def authenticate(self, request: HttpRequest, token: str):
        token = token.strip()
        if not token:
            return None
        row = ApiToken.objects.select_related("user").filter(key_hash=hash_token(token)).first()
        now = timezone.now()
        if row is None or not row.user.is_active or (row.expires and row.expires <= now):
            return None
        if row.last_used is None or now - row.last_used > LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=row.pk).update(last_used=now)
        request.user = row.user
        request.api_token = row
        missing = missing_permission(request, row.user)
        if missing is not None:
            raise Forbidden(missing)
        return row.user


router = Router(tags=["auth"])


class LoginIn(Schema):
    username: str
    password: str


class TokenOut(Schema):
    token: str


class ErrorOut(Schema):
    error: str


@router.post(
    "/login",
    auth=None,
    response={200: TokenOut, 401: ErrorOut},
    summary="Log in and get a bearer token",
)
def login(request: HttpRequest, payload: LoginIn):
    """Exchange a username and password for a new bearer token.

    Every login issues a new token; send it as `Authorization: Bearer <token>` (or paste it into
    **Authorize** above). Tokens expire after `MEDIASTORE_TOKEN_TTL_HOURS` when that is set.
    Inactive users and users without a usable password cannot log in.
    """
    user = authenticate(request, username=payload.username, password=payload.password)
    if user is None or not user.is_active:
        return Status(401, {"error": "Invalid credentials"})
    row, clear = ApiToken.objects.issue(user)
    if settings.MEDIASTORE_TOKEN_TTL_HOURS:
        row.expires = row.created + timedelta(hours=settings.MEDIASTORE_TOKEN_TTL_HOURS)
        row.save(update_fields=["expires"])
    return Status(200, {"token": clear})


@router.post("/logout", response={204: None}, summary="Revoke the token this request presents")
def logout(request: HttpRequest):
    """Revoke the bearer token sent with this request; it stops working at once. Other tokens of
    the same user stay valid (revoke those in the admin)."""
    ApiToken.objects.filter(pk=request.api_token.pk).delete()
    return Status(204, None)


@router.get("/hello", auth=None, summary="Check that the API answers")
def hello(request: HttpRequest):
    """A public liveness greeting: `{"msg": "Hello, world!"}`."""
    return {"msg": "Hello, world!"}
