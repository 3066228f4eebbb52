"""Shapes of the upload and download endpoints (field names fixed by API_CONTRACT.md)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from ninja import Field, Schema

from media.schemas import MediaIn, MediaListQuery, MediaOut, MediaSearch
from mediastore.limits import MAX_OFFSET
from mediastore.schema_utils import RequestSchema, null_means_default
from stores.schemas import StoreConfigIn, StoreConfigOut


class MultipartIn(RequestSchema):
    """An S3 multipart upload of the bytes, part by part, straight to S3 (BucketStore only)."""

    size: int = Field(
        ...,
        ge=0,
        le=5 << 40,
        description="The number of bytes that will be uploaded; it fixes the part size and the parts.",
    )


class UploadIn(RequestSchema):
    """A new media and, optionally, its bytes as standard base64."""

    mediadata: MediaIn
    base64: str = Field(
        "",
        description="The bytes, standard base64 (strict: no line breaks or foreign characters). Empty: "
        "the media is created PENDING, with a presigned PUT url on a BucketStore (null elsewhere: send "
        "the same upload again with base64).",
    )
    content_type: str = Field(
        "",
        description="Media type of the bytes; default application/octet-stream. At most 255 characters, "
        "no control characters (422).",
    )
    size: int | None = Field(
        None,
        ge=0,
        description="Optional: the number of bytes that will be uploaded. For a presigned upload the URL "
        "then only accepts a PUT of exactly that Content-Length, and `POST /api/upload/{pid}/complete` "
        "refuses (409, the media stays PENDING) an object of any other size. With `base64`: must be "
        "the decoded length (422 otherwise).",
    )

    multipart: MultipartIn | None = Field(
        None,
        description="BucketStore only, instead of `base64` or a single presigned PUT: the answer lists a "
        "presigned URL per part (`parts`); PUT each part there, then `POST /api/upload/{pid}/complete` with "
        "the parts' ETags. For files of any size (up to 5 TiB), sent in parallel or resumed part by part. "
        "Repeated for a PENDING media, the earlier multipart upload is aborted and a new one begun.",
    )

    nulls_are_defaults = null_means_default("base64", "content_type")


class PartUrl(Schema):
    part_number: int = Field(..., description="1, 2, ...: the part's place in the object.")
    url: str = Field(
        ...,
        description="Where to PUT the part's bytes (exactly `part_size` bytes; the last part the rest), "
        "valid for `MEDIASTORE_PRESIGN_SECONDS`. S3 answers with the part's `ETag` header.",
    )


class MultipartUploadOut(Schema):
    status: str = Field(..., description="PENDING: the parts are to be PUT.")
    presigned_put: str | None = Field(None, description="Always null for a multipart upload.")
    pid: str = Field(..., description="The media's pid (minted when none was given).")
    upload_id: str = Field(..., description="S3's id of the multipart upload.")
    part_size: int = Field(..., description="Bytes in every part but the last.")
    parts: list[PartUrl] = Field(
        ...,
        description="A URL for each part, up to `MEDIASTORE_MULTIPART_URLS` of them (1000 by default); "
        "ask for the others with `POST /api/upload/{pid}/parts`.",
    )


class PartsIn(RequestSchema):
    parts: list[int] = Field(..., description="The part numbers to get URLs for (1 to the number of parts).")


class PartsOut(Schema):
    parts: list[PartUrl]


class PartDone(RequestSchema):
    part_number: int = Field(..., ge=1, le=10_000)
    etag: str = Field(
        ..., min_length=1, max_length=200, description="The `ETag` S3 answered the part's PUT with."
    )


class CompleteIn(RequestSchema):
    parts: list[PartDone] = Field(..., description="Every part of a multipart upload, with its ETag.")


class UploadOut(Schema):
    status: str = Field(..., description="READY when the bytes were stored, PENDING when they are to be PUT.")
    presigned_put: str | None = Field(
        None, description="Where to PUT the bytes (PENDING on a BucketStore only; null otherwise)."
    )
    pid: str = Field(..., description="The media's pid (minted when none was given).")


class DownloadOut(Schema):
    mediadata: MediaOut
    base64: str = ""
    presigned_get: str = ""


class VerifyOut(Schema):
    pid: str
    ok: bool = Field(..., description="True when the stored bytes still have the recorded size and checksum.")
    missing: bool = Field(..., description="True when no object is stored under the media's key any more.")
    size: int | None
    checksum: str
    expected_size: int | None
    expected_checksum: str


class ReplicaIn(RequestSchema):
    """Where to keep one more copy of a media's bytes."""

    store_config: int | StoreConfigIn = Field(
        ...,
        description="The store: a store pk, or a store description as in media create (got or created).",
    )


class ReplicaOut(Schema):
    """One copy of a media's bytes: its primary copy or a replica."""

    store_config: StoreConfigOut
    store_key: str = Field(..., description="The object's key in that store (empty while none was written).")
    state: str = Field(
        ...,
        description="COPYING (asked for, not yet written and checked), GOOD (holds exactly the media's "
        "current bytes, read back and checksummed), STALE (held older bytes; being rewritten), BAD (a check "
        "read other bytes), MISSING (a check or read found no object). Only GOOD copies are served.",
    )
    size: int | None = Field(None, description="Bytes of this copy, when written.")
    checksum: str = Field("", description="SHA-256 of this copy (`sha256:<hex>`), when written.")
    verified_at: datetime | None = Field(None, description="When this copy was last read back and checked.")
    error: str = Field(
        "", description="The last failure to write or check this copy (kept until it succeeds)."
    )
    primary: bool = Field(..., description="Whether this is the media's primary copy (always listed first).")


class RuleMatch(RequestSchema):
    """Which media a rule covers; every condition given must hold, an omitted one matches any."""

    pid_type: list[str] = Field([], description="Pid types (a media of any of them matches); empty: any.")
    tags: list[str] = Field([], description="Tags a media must all carry; empty: any.")
    store: int | None = Field(None, description="The store pk a media's primary copy must be in; null: any.")


class RuleIn(RequestSchema):
    """A replication rule: every READY media matching `match` must have a GOOD copy in each store of
    `copies`."""

    name: str = Field(..., max_length=100, description="A unique name.")
    match: RuleMatch = Field(default_factory=RuleMatch)
    copies: list[int | StoreConfigIn] = Field(
        ..., description="The stores (pks, or store descriptions as in media create, got or created)."
    )


class RuleMatchOut(Schema):
    pid_type: list[str]
    tags: list[str]
    store: int | None


class RuleOut(Schema):
    name: str
    match: RuleMatchOut
    copies: list[StoreConfigOut]


FORMAT = "`zip` (ZIP64 when needed) or `tar` (POSIX pax)."


class ArchiveIn(MediaSearch):
    """`POST /api/download/archive`: either `pids` or the filters of `POST /api/media/search`
    (all of them, `order_by` too; no page limit: every match goes in, unless `limit`/`offset` are
    given), and the archive's format and layout."""

    pids: list[str] | None = Field(
        None, description="The media to put in, in this order (each once); unknown pids go to errors.txt."
    )
    format: Literal["zip", "tar"] = Field("zip", description=FORMAT)
    layout: Literal["pid", "flat"] = Field(
        "pid",
        description="Member names under `data/`: `pid` keeps the pid's `/` as folders, `flat` encodes "
        "them (`%2F`) so every member is directly in `data/`.",
    )

    error_subject: ClassVar[str] = "archive field"


class ArchiveQuery(MediaListQuery):
    """`GET /api/download/archive`: the query parameters of `GET /api/media` (no filter: every
    media), and the archive's format and layout."""

    format: Literal["zip", "tar"] = Field("zip", description=FORMAT)
    layout: Literal["pid", "flat"] = Field(
        "pid", description="`pid`: the pid's `/` as folders under `data/`; `flat`: all directly in `data/`."
    )

    error_subject: ClassVar[str] = "query parameter"


class TrashItemOut(Schema):
    """A deleted media in the recycle bin."""

    pid: str
    deleted_at: datetime = Field(..., description="When it was deleted.")
    deleted_by: str = Field(..., description="Who deleted it (username; empty for the system, e.g. expiry).")
    purge_after: datetime = Field(
        ..., description="When `manage.py purge_trash` removes it for good (`MEDIASTORE_TRASH_DAYS` after)."
    )
    media: MediaOut = Field(..., description="The media as it was when deleted; restored exactly.")


class TrashPage(Schema):
    count: int = Field(..., description="Number of binned media matching.")
    next: str | None = Field(..., description="URL of the next page, or null.")
    previous: str | None = Field(..., description="URL of the previous page, or null.")
    items: list[TrashItemOut]


class TrashQuery(RequestSchema):
    pid_prefix: str = Field("", max_length=512, description="Only pids starting with this.")
    limit: int = Field(100, ge=1, le=1000, description="Page size (1 to 1000).")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Binned media to skip.")


class TrashRestoreIn(RequestSchema):
    pids: list[str] = Field(..., max_length=10000, description="The binned media to restore (at most 10000).")
