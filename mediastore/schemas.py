"""Schemas of the token endpoints (``/api/tokens``)."""

from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema
from pydantic import StrictInt

from mediastore.schema_utils import RequestSchema

SCOPES_TEXT = (
    "What the token may do, within what its account may do: `read` (view media, their bytes and "
    "history, stores, identifier types, events, stats), `write` (create and change media and their "
    "bytes), `delete` (delete media), `admin` (everything the account may do, including managing "
    'its tokens). Combine them, e.g. `["read", "write"]`.'
)


class ApiTokenIn(RequestSchema):
    """A token to make for yourself, e.g. for an instrument or a script. It can have only scopes of
    which your account has some permission (a user in `readers` cannot ask for `write`)."""

    name: str = Field(..., description="What the token is for, e.g. `ifcb-7 uploads` (1 to 100 characters).")
    scopes: list[str] = Field(..., description=SCOPES_TEXT)
    expires_in: StrictInt | None = Field(
        None,
        description="Seconds until the token stops working, from 1 to 315360000 (10 years); "
        "`null` or absent: it never expires (revoke it with `DELETE /api/tokens/{id}`).",
    )


class ApiTokenOut(Schema):
    """One of your tokens, as listed. The token itself is never shown again after it was made (only
    a hash of it is stored)."""

    id: int = Field(..., description="Pass to `DELETE /api/tokens/{id}` to revoke the token.")
    name: str = Field(..., description="What the token is for; `login` for tokens from `POST /api/login`.")
    prefix: str = Field(..., description="The token's first 8 characters, to tell tokens apart.")
    scopes: list[str] = Field(
        ..., description="The token's scopes; tokens from `POST /api/login` have `admin`."
    )
    created: datetime = Field(..., description="When the token was made.")
    expires: datetime | None = Field(..., description="When it stops working; `null`: never.")
    last_used: datetime | None = Field(
        ..., description="When it was last used (to the minute); `null`: never used."
    )

    @staticmethod
    def resolve_scopes(row) -> list[str]:
        return row.scope_list


class ApiTokenCreatedOut(Schema):
    """The new token. Copy `token` now: it is shown only in this answer. Send it as
    `Authorization: Bearer <token>`."""

    id: int = Field(..., description="Pass to `DELETE /api/tokens/{id}` to revoke the token.")
    token: str = Field(..., description="The bearer token; shown only here, never again.")
    name: str = Field(..., description="What the token is for.")
    scopes: list[str] = Field(..., description="The token's scopes, in the order read, write, delete, admin.")
    expires: datetime | None = Field(..., description="When it stops working; `null`: never.")
