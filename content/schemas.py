"""Shapes of the upload and download endpoints (field names fixed by API_CONTRACT.md)."""

from __future__ import annotations

from typing import ClassVar, Literal

from ninja import Field, Schema

from media.schemas import MediaIn, MediaListQuery, MediaOut, MediaSearch
from mediastore.schema_utils import RequestSchema, null_means_default


class UploadIn(RequestSchema):
    """A new media and, optionally, its bytes as standard base64."""

    mediadata: MediaIn
    base64: str = Field(
        "",
        description="The bytes, standard base64 (strict: no line breaks or foreign characters). Empty: "
        "the media is created PENDING, with a presigned PUT url on a BucketStore (null elsewhere: send "
        "the same upload again with base64).",
    )
    content_type: str = Field("", description="Media type of the bytes; default application/octet-stream.")
    size: int | None = Field(
        None,
        ge=0,
        description="Optional: the number of bytes that will be uploaded. For a presigned upload the URL "
        "then only accepts a PUT of exactly that Content-Length, and `POST /api/upload/{pid}/complete` "
        "refuses (409, the media stays PENDING) an object of any other size. With `base64`: must be "
        "the decoded length (422 otherwise).",
    )

    nulls_are_defaults = null_means_default("base64", "content_type")


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
