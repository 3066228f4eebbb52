"""Shapes of the changes feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Field, Schema


class EventOut(Schema):
    """One change of one media."""

    cursor: str = Field(..., description="Position of this event in the feed (opaque; pass it as `after`).")
    type: str = Field(
        ...,
        description="media.created, media.updated, media.tags_changed, media.bytes_stored, media.moved, "
        "media.reverted, media.deleted, or media.verify_failed (a fixity check by `manage.py verify` found "
        "the bytes changed or missing; `media.verify` says why; mark and version are unchanged); for the "
        "copies of a media's bytes replica.created, replica.good, replica.failed, replica.repaired and "
        "replica.deleted (`media.replica` is the copy, as `GET /api/media/{pid}/replicas` lists it; mark and "
        "version are unchanged); quota.warning when a write took a quota's use to 90% of a limit or more "
        "(`media` is the media written, `media.quota` the quota, its `unit`, `limit` and `used`).",
    )
    pid: str = Field(..., description="The media's pid after the change (before it, for a delete).")
    mark: int = Field(..., description="The media's `mark` after the change.")
    version: int = Field(..., description="The media's `version` after the change (as it was, for a delete).")
    user: str | None = Field(None, description="Username of who made the change.")
    time: datetime
    changed: list[str] = Field(..., description="Fields the change set, as the API names them.")
    media: dict[str, Any] = Field(
        ...,
        description="The media as `GET /api/media/{pid}` answered after the change (for a delete: before).",
    )


class EventPage(Schema):
    items: list[EventOut]
    next: str = Field(..., description="Pass as `after` to get the events that follow.")
