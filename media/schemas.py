"""Request and response shapes of the media endpoints (field names fixed by API_CONTRACT.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema

from stores.schemas import StoreConfigIn, StoreConfigOut


class MediaIn(Schema):
    """A new media. `pid_type` and every identifier key must name an existing identifier type, and
    each value must fully match its type's pattern."""

    pid: str | None = Field(None, description="Primary ID; minted (a UUID) when absent.")
    pid_type: str = Field(..., description="Identifier type of the pid.")
    store_config: StoreConfigIn = Field(..., description="Where the bytes will live; got or created.")
    identifiers: dict[str, str] = Field(default_factory=dict, description="More identifiers: {type: value}.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free JSON metadata.")
    tags: list[str] = Field(default_factory=list)


class MediaOut(Schema):
    pk: int
    pid: str
    pid_type: str
    store_config: StoreConfigOut
    store_status: Literal["PENDING", "READY"]
    identifiers: dict[str, str]
    metadata: dict[str, Any]
    tags: list[str]
    mark: int = Field(..., description="Latest change number, from one sequence shared by all media.")
    version: str = Field(..., description="Revision count of this media: '1' after create.")
    size: int | None = Field(None, description="Size in bytes of the stored content, once READY.")
    checksum: str = Field("", description="Checksum of the stored content, e.g. `sha256:<hex>`.")
    content_type: str = Field("", description="Media type of the stored content.")
    created: datetime
    updated: datetime

    @staticmethod
    def resolve_pid_type(obj) -> str:
        return obj.pid_type_id

    @staticmethod
    def resolve_tags(obj) -> list[str]:
        return obj.tag_list

    @staticmethod
    def resolve_version(obj) -> str:
        return str(obj.version)


class MediaPatch(Schema):
    """Changes to one media; absent fields stay as they are."""

    pid: str | None = Field(None, description="Ignored on PATCH /api/media/{pid}: the path names the media.")
    new_pid: str | None = Field(None, description="Rename the media to this pid.")
    pid_type: str | None = Field(None, description="Retype the pid (checked against the type's pattern).")
    store_config: int | StoreConfigIn | None = Field(
        None, description="A store configuration pk, or a store description (got or created)."
    )


class MediaBulkPatch(Schema):
    pids: list[str] = Field(..., description="The media to change; `medias[i]` applies to `pids[i]`.")
    medias: list[MediaPatch]


class UpdateTags(Schema):
    pid: str
    tags: list[str]


class UpdateStorekey(Schema):
    pid: str
    store_key: str


class UpdateIdentifiers(Schema):
    pid: str
    identifiers: dict[str, str]


class UpdateMetadata(Schema):
    pid: str
    keys: list[str] = Field(default_factory=list, description="Path into the metadata; empty: the whole.")
    data: Any = Field(default_factory=dict, description="The value (object or list) to set or merge.")


class MediaError(Schema):
    pid: str
    error: str = Field(..., description="NotFound, ValidationError, Conflict or StorageError.")
    msg: str


class BulkResult(Schema):
    successes: list[str]
    failures: list[MediaError]


class MediaSearch(Schema):
    tags: list[str] = Field(default_factory=list, description="Media carrying any of these tags.")


class Change(Schema):
    field: str
    old: Any = None
    new: Any = None


class HistoryEntry(Schema):
    history_id: int
    when: datetime
    user: str | None = Field(None, description="Username of who made the change.")
    action: Literal["created", "changed", "deleted"]
    pid: str
    version: str
    mark: int
    changes: list[Change]
