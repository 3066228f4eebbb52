"""/api/trash...: the recycle bin (``content.trash``): list, restore, purge."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from content import trash
from content.schemas import TrashPage, TrashQuery, TrashRestoreIn
from media.schemas import BulkResult, MediaOut, media_out_dict
from mediastore.pagination import json_response, next_url, previous_url

router = Router(tags=["trash"])


@router.get("/trash", response=TrashPage, summary="List the recycle bin")
def trash_list(request: HttpRequest, query: Query[TrashQuery]):
    """The deleted media kept in the recycle bin (`MEDIASTORE_TRASH_DAYS`, default 7; 0: none), newest
    deletion first, with who deleted them, when, when they are purged for good, and the media as they
    were. `pid_prefix` keeps the pids starting with it; `limit`/`offset` page (`next`, `previous`)."""
    page = trash.trash_page(pid_prefix=query.pid_prefix, limit=query.limit, offset=query.offset)
    items = [
        {
            "pid": item.pid,
            "deleted_at": item.deleted_at,
            "deleted_by": item.deleted_by,
            "purge_after": item.purge_after,
            "media": media_out_dict(trash.binned_media(item)),
        }
        for item in page.items
    ]
    body = {"count": page.total, "next": next_url(request, page), "previous": previous_url(request, page)}
    return json_response({**body, "items": items})


@router.post("/trash/restore", response=BulkResult, summary="Restore many media from the recycle bin")
def trash_restore_many(request: HttpRequest, payload: TrashRestoreIn):
    """Restore each binned media as `POST /api/trash/{pid}/restore` does; each pid succeeds or fails
    on its own (`NotFound`, `Conflict`)."""
    return trash.trash_restore_many(payload.pids, user=request.auth).as_dict()


@router.post("/trash/{path:pid}/restore", response=MediaOut, summary="Restore a media from the recycle bin")
def trash_restore(request: HttpRequest, pid: str):
    """Bring the deleted media back exactly as it was: pk, pid, identifiers, metadata, tags, store, store
    key, size, checksum, ETag, expiry, hold and replicas (its bytes never left the store). Its history
    continues with a row "restored from the recycle bin" (new `mark` and `version`) and an event
    `media.restored` is sent. 404 when the pid is not in the bin; 409 when its pid or store key was
    taken by another media meanwhile, or its bytes are gone or were overwritten (then it is purged)."""
    return json_response(media_out_dict(trash.trash_restore(pid, user=request.auth)))


@router.delete("/trash/{path:pid}", response={204: None}, summary="Purge a media from the recycle bin")
def trash_purge(request: HttpRequest, pid: str):
    """Remove the binned media for good now: record, bytes and its replicas' bytes (objects a media
    uses now stay). Its history gets a row saying so. Administrators only; 404 when not in the bin."""
    trash.trash_purge(pid, user=request.auth)
    return Status(204, None)
