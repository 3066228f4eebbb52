"""/api/s3cfg..., /api/store... endpoints."""

from django.conf import settings
from django.http import HttpRequest
from ninja import Query, Router, Status

from stores import services
from stores.models import S3Config, StoreConfig
from stores.schemas import S3ConfigIn, S3ConfigOut, StoreConfigIn, StoreConfigOut, StoreOut, StorePatch

router = Router(tags=["stores"])

PROBE = Query(
    None,
    description="Probe the store(s) first: write, read back and delete a small object under a "
    "`mediastore-health-` key; `false` skips it. Absent: the server's default "
    "(`MEDIASTORE_PROBE_STORES`, true unless its operator changed it).",
)


def probing(probe: bool | None) -> bool:
    return settings.MEDIASTORE_PROBE_STORES if probe is None else probe


@router.get("/s3cfgs", response=list[S3ConfigOut], summary="List S3 configurations")
def s3cfg_list(request: HttpRequest):
    """All S3 endpoints known to the server. Credentials are never returned."""
    return S3Config.objects.all()


@router.post("/s3cfg", response=S3ConfigOut, summary="Register an S3 endpoint and its credentials")
def s3cfg_create(request: HttpRequest, payload: S3ConfigIn):
    """Register the credentials BucketStores use for an endpoint url. Posting identical data again
    returns the existing one; the same url with other keys, region or addressing style is 409
    (change them with PUT). A url with user info (`http://key:secret@host`) is 422, and so is one
    key without the other. Without keys the server's standard AWS credential chain signs the
    requests. The secret key is stored encrypted and never returned; the change is recorded in the
    audit history (without the secret). Nothing is probed here: no store uses it yet."""
    return services.s3cfg_create(**payload.dict(), user=request.auth)


@router.get("/s3cfg/{pk}", response=S3ConfigOut, summary="Get one S3 configuration")
def s3cfg_get(request: HttpRequest, pk: int):
    """One S3 configuration (url only); 404 if there is none."""
    return services.s3cfg_get(pk)


@router.put("/s3cfg/{pk}", response={204: None}, summary="Replace an S3 configuration")
def s3cfg_update(request: HttpRequest, pk: int, payload: S3ConfigIn, probe: bool | None = PROBE):
    """Replace url, keys, region and addressing style (e.g. to rotate credentials); stores using it
    follow. First every store using it is probed with the new settings (a small object under a
    `mediastore-health-` key written, read back and deleted): if one fails, 422 naming the store
    and what failed (e.g. the S3 error code `InvalidAccessKeyId`, `SignatureDoesNotMatch`, a
    missing bucket, an unreachable endpoint) and nothing is changed; `probe=false` skips the
    probe (without `probe`: the server's `MEDIASTORE_PROBE_STORES`, default true). 404 if
    unknown, 409 if another configuration has that url, 422 for a url with user info or one key
    without the other."""
    services.s3cfg_update(pk=pk, **payload.dict(), user=request.auth, probe=probing(probe))
    return Status(204, None)


@router.delete("/s3cfg/{pk}", response={204: None}, summary="Delete an S3 configuration")
def s3cfg_delete(request: HttpRequest, pk: int):
    """Delete an S3 configuration; 409 while a store configuration uses it."""
    services.s3cfg_delete(pk=pk, user=request.auth)
    return Status(204, None)


@router.get("/stores", response=list[StoreConfigOut], summary="List store configurations")
def store_list(request: HttpRequest):
    """All store configurations."""
    return StoreConfig.objects.select_related("s3cfg")


@router.post("/store", response=StoreConfigOut, summary="Get or create a store configuration")
def store_create(request: HttpRequest, payload: StoreConfigIn, probe: bool | None = PROBE):
    """Return the store configuration with this type, bucket and S3 endpoint, creating it if new.
    Unsupported types, a BucketStore without a known `s3_url`, an `s3_url` on another type and
    local paths that leave the storage root are 422, and so is an `s3_url` with user info. So is a
    new local store whose directory or file is, lies inside or contains another local store's (the
    error names that store), or whose path holds something of the wrong kind (a directory where a
    zip or SQLite file must go, a file where a directory must go).

    A new store is probed before it is saved: a small object under a `mediastore-health-` key is
    written, read back and deleted. If that fails, 422 naming what failed (e.g. the S3 error code
    `InvalidAccessKeyId` or `SignatureDoesNotMatch`, a bucket that does not exist, an unreachable
    endpoint, a directory the server may not write) and nothing is saved. `probe=false` skips the
    probe (e.g. for a bucket that does not exist yet); without `probe` the server's setting
    `MEDIASTORE_PROBE_STORES` (default true) decides. An existing store is returned unprobed."""
    return services.store_get_or_create(**payload.dict(), user=request.auth, probe=probing(probe))


@router.get("/store/{pk}", response=StoreOut, summary="Get one store configuration")
def store_get(request: HttpRequest, pk: int):
    """One store configuration, with its `default_ttl` (the lifetime of its new media); 404 if there
    is none."""
    return services.store_get(pk)


@router.patch("/store/{pk}", response=StoreOut, summary="Set a store configuration's default lifetime")
def store_patch(request: HttpRequest, pk: int, payload: StorePatch):
    """Set `default_ttl`: the seconds new media of this store live (their `expires_at`), or null for
    none. Media that exist keep their `expires_at`. `{}` changes nothing. Administrators only."""
    if "default_ttl" not in payload.model_fields_set:
        return services.store_get(pk)
    return services.store_set_default_ttl(pk=pk, default_ttl=payload.default_ttl, user=request.auth)


@router.delete("/store/{pk}", response={204: None}, summary="Delete a store configuration")
def store_delete(request: HttpRequest, pk: int):
    """Delete a store configuration; 409 while media use it, or media in the recycle bin (named)."""
    services.store_delete(pk=pk, user=request.auth)
    return Status(204, None)
