"""Shapes of ``/api/quotas`` and ``/api/usage``."""

from __future__ import annotations

from ninja import Field, Schema
from pydantic import StrictInt

from mediastore.schema_utils import RequestSchema


class QuotaIn(RequestSchema):
    """The quota of one (store, user) pair. Both null: a site-wide quota over every media."""

    store: StrictInt | None = Field(None, description="A store configuration's pk; null: every store.")
    user: str | None = Field(
        None, description="An account's username (the media's owner); null: every owner."
    )
    max_bytes: StrictInt | None = Field(
        None,
        ge=0,
        description="Bytes allowed (sizes of primary copies, declared sizes included); null: no limit.",
    )
    max_media: StrictInt | None = Field(None, ge=0, description="Media allowed; null: no limit.")


class QuotaOut(Schema):
    pk: int
    store: int | None = Field(..., description="The store configuration's pk; null: every store.")
    user: str | None = Field(..., description="The account's username; null: every owner.")
    max_bytes: int | None = Field(..., description="Bytes allowed; null: no limit.")
    max_media: int | None = Field(..., description="Media allowed; null: no limit.")
    used_bytes: int = Field(..., description="Bytes of the media this quota counts now.")
    used_media: int = Field(..., description="Media this quota counts now.")


class UsageOut(Schema):
    store: int = Field(..., description="The store configuration's pk.")
    user: str | None = Field(..., description="The owner's username; null: media without an owner.")
    bytes: int = Field(
        ...,
        description="Sizes of the owner's primary copies in this store (declared sizes of PENDING media "
        "included).",
    )
    media: int = Field(..., description="The owner's media in this store.")
