from typing import Literal

from ninja import Field, Schema

from mediastore.schema_utils import RequestSchema, null_means_default
from stores.models import DEFAULT_REGION


class S3ConfigIn(RequestSchema):
    """An S3 endpoint and its credentials. The keys are stored for signing requests (the secret key
    encrypted) and the secret is never returned by any endpoint. Without keys (both empty or
    left out) the server uses the standard AWS credential chain of its own environment:
    `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE` and the shared files, or the role of
    its instance or container. One key without the other is 422.

    Creating or changing it probes the stores that use it (see `PUT /api/s3cfg/{pk}`)."""

    url: str = Field(
        ...,
        max_length=512,
        description="Endpoint URL, e.g. `https://s3.example.org`, without user info "
        "(`http://key:secret@host` is refused: give the keys in the fields below).",
    )
    access_key: str = Field(
        "", max_length=256, description="Empty (the default): the server's standard AWS credential chain."
    )
    secret_key: str = Field(
        "",
        max_length=512,
        description="Write-only: stored encrypted, never returned. Empty exactly when `access_key` is.",
    )
    region: str = Field(
        DEFAULT_REGION,
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9-]+$",
        description="The region requests are signed for, e.g. `eu-central-1` (S3-compatible servers "
        "mostly accept any).",
    )
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        "path",
        description="How requests name the bucket: `path` (`https://host/bucket/key`, the default, what "
        "MinIO, Ceph and most S3-compatible servers expect), `virtual` (`https://bucket.host/key`, "
        "what AWS prefers) or `auto` (virtual where the bucket name allows it).",
    )

    nulls_are_defaults = null_means_default("access_key", "secret_key", "region", "addressing_style")


class S3ConfigOut(Schema):
    pk: int
    url: str = Field(..., description="The endpoint URL (never with user info).")
    region: str = Field(..., description="The region requests are signed for.")
    addressing_style: str = Field(..., description="`auto`, `path` or `virtual`.")

    @staticmethod
    def resolve_url(obj) -> str:
        return obj.public_url


class StoreConfigIn(RequestSchema):
    """Where bytes live. `type` is one of BucketStore, FilesystemStore, HashdirStore, ZipStore,
    SqliteStore, DictStore.

    `bucket` means: BucketStore, an S3 bucket optionally followed by `/prefix`; FilesystemStore and
    HashdirStore, a directory; ZipStore, a zip file; SqliteStore, an SQLite file (paths are relative
    to the server's storage root, a leading `/` is ignored, nothing may point outside it, and no
    two local stores may overlap: one inside another is refused);
    DictStore, a namespace in server memory for ephemeral products.

    `pk` is accepted and ignored, so that a store as `GET /api/stores` lists it can be sent back
    unchanged (amplify-storage-utils' MediaStore does); the store is found by `type`, `bucket` and
    `s3_url`. Any other field not listed here is a 422 naming it.
    """

    type: str = Field(..., description="Store type, e.g. `FilesystemStore` or `BucketStore`.")
    bucket: str = Field(..., description="Bucket[/prefix], path below the storage root, or namespace.")
    s3_url: str = Field(
        "", description="BucketStore only: the `url` of an existing S3 configuration (without user info)."
    )

    nulls_are_defaults = null_means_default("s3_url")


class StoreConfigOut(Schema):
    pk: int
    type: str
    bucket: str
    s3_url: str = Field("", description="The S3 endpoint of a BucketStore; empty for other types.")


class StoreOut(StoreConfigOut):
    """A store configuration as the store endpoints answer it."""

    default_ttl: int | None = Field(
        None,
        description="Seconds a new media of this store lives (its `expires_at` is set to creation time plus "
        "this) unless it is created with its own `expires_at`; null: media of this store do not expire.",
    )


class StorePatch(RequestSchema):
    """Changes to a store configuration; absent fields stay as they are."""

    default_ttl: int | None = Field(
        None,
        ge=1,
        le=10 * 365 * 24 * 3600,
        description="Seconds new media of this store live (1 to ten years); null removes the default. "
        "Media created before keep their `expires_at`.",
    )
