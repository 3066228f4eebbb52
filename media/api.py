"""/api/media... endpoints.

The routes that touch bytes (a delete, a move to another store) call ``content.deletes`` and
``content.moves``: ``content`` stands above ``media``, and this router, like ``mediastore.api``, is
a roof over the floors (declared in the import-linter contract of ``pyproject.toml``).

Fixed paths are declared before the ``{path:pid}`` ones: pids may contain ``/`` (DOIs), so the
generic routes would otherwise swallow ``/media/dump`` and friends.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Body, Query, Router, Status

from content import deletes, moves
from media import search, selectors, services
from media.history import media_history
from media.schemas import (
    BulkResult,
    HistoryEntry,
    HoldIn,
    MediaBulkPatch,
    MediaIn,
    MediaListQuery,
    MediaOut,
    MediaPage,
    MediaPatch,
    MediaSearch,
    RevertIn,
    UpdateIdentifiers,
    UpdateMetadata,
    UpdateStorekey,
    UpdateTags,
    media_out_dict,
)
from mediastore.errors import RuleViolation
from mediastore.pagination import JsonArrayStream, json_response, set_page_headers

router = Router(tags=["media"])


def set_plan_header(response: HttpResponse, plan: search.Plan) -> HttpResponse:
    """``X-Search-Plan: seqscan`` when the search reads the whole (large) table."""
    if plan.seqscan:
        response["X-Search-Plan"] = "seqscan"
    return response


PidList = list[str] | None


@router.post("/media", response=MediaOut, summary="Create a media")
def media_create(request: HttpRequest, payload: MediaIn):
    """Create one media (store_status PENDING) and return it. `pid_type` and identifier keys must be
    existing identifier types and values must match their patterns (422 `bad pid_type: X`,
    `bad identifier_type: K`); an existing pid is 409 (the pid of an expired media is free: that
    media is deleted as `manage.py expire` would first). Without `pid` one is minted. More than
    `MEDIASTORE_MAX_TAGS` (1000) distinct tags is 422."""
    return services.media_create(payload, user=request.auth)


@router.post("/media/create", response=list[MediaOut], summary="Create many media, all or nothing")
def media_create_many(request: HttpRequest, payload: list[MediaIn]):
    """Create every media of the list, or none: the first invalid item makes the whole call 422/409,
    and the error names it (`index`, `pid`). Each media may carry at most `MEDIASTORE_MAX_TAGS` (1000)
    distinct tags (422)."""
    created = services.media_create_answered(payload, user=request.auth)
    return json_response(created)  # list[MediaOut], unvalidated


@router.post("/media/read", response=list[MediaOut], summary="Read many media by pid")
def media_read(request: HttpRequest, pids: PidList = Body(None)):
    """The media for the pids that exist, in the order asked; unknown pids are left out. No body
    means an empty list."""
    return selectors.media_read_many(pids or [])


@router.post("/media/delete", response=BulkResult, summary="Delete many media")
def media_delete_many(request: HttpRequest, pids: PidList = Body(None)):
    """Delete each media (and its stored bytes when READY); each pid succeeds or fails on its own."""
    return deletes.media_delete_many(pids or [], user=request.auth).as_dict()


@router.patch("/media/update", response=BulkResult, summary="Rename, retype or re-store many media")
def media_update_many(request: HttpRequest, payload: MediaBulkPatch):
    """Apply `medias[i]` to the media `pids[i]`; each item succeeds or fails on its own."""
    if len(payload.pids) != len(payload.medias):
        raise RuleViolation(
            f"pids and medias must have the same length (got {len(payload.pids)} and {len(payload.medias)})"
        )
    return moves.media_patch_many(
        list(zip(payload.pids, payload.medias, strict=True)), user=request.auth
    ).as_dict()


@router.patch("/media/update/tags", response=BulkResult, summary="Add tags to many media")
def media_tags_add(request: HttpRequest, payload: list[UpdateTags]):
    """Add the given tags to each media, keeping the tags it has. An item that would leave its media
    with more than `MEDIASTORE_MAX_TAGS` (1000) distinct tags, old and new together, fails
    (`ValidationError`) and that media is unchanged."""
    return services.media_tags_update(payload, user=request.auth, replace=False).as_dict()


@router.put("/media/update/tags", response=BulkResult, summary="Replace the tags of many media")
def media_tags_replace(request: HttpRequest, payload: list[UpdateTags]):
    """Replace each media's tags with the given list (an empty list removes all). An item with more
    than `MEDIASTORE_MAX_TAGS` (1000) distinct tags fails (`ValidationError`) and that media is
    unchanged."""
    return services.media_tags_update(payload, user=request.auth, replace=True).as_dict()


@router.put("/media/update/storekeys", response=BulkResult, summary="Set the store keys of many media")
def media_storekeys(request: HttpRequest, payload: list[UpdateStorekey]):
    """Point media at other keys of their store (relative paths; no `..`, NUL or leading `/`). A key is
    unique within a store, and a READY media may only point at an object that exists."""
    return services.media_storekeys_update(payload, user=request.auth).as_dict()


@router.put("/media/update/identifiers", response=BulkResult, summary="Replace the identifiers of many media")
def media_identifiers(request: HttpRequest, payload: list[UpdateIdentifiers]):
    """Replace each media's identifiers, with the same rules as create."""
    return services.media_identifiers_update(payload, user=request.auth).as_dict()


@router.put("/media/update/metadata", response=BulkResult, summary="Set metadata of many media")
def media_metadata_put(request: HttpRequest, payload: list[UpdateMetadata]):
    """No `keys`: replace the whole metadata with `data` (an object). With `keys` [k1, ..., kn]: set
    metadata[k1]...[kn] = data, creating objects on the way."""
    return services.media_metadata_update(payload, user=request.auth, op="put").as_dict()


@router.patch("/media/update/metadata", response=BulkResult, summary="Merge metadata of many media")
def media_metadata_patch(request: HttpRequest, payload: list[UpdateMetadata]):
    """No `keys`: shallow-merge the object `data` into the metadata. With `keys`: merge it into the
    object at that path (created when missing)."""
    return services.media_metadata_update(payload, user=request.auth, op="patch").as_dict()


@router.delete("/media/update/metadata", response=BulkResult, summary="Delete metadata of many media")
def media_metadata_delete(request: HttpRequest, payload: list[UpdateMetadata]):
    """With `keys`: delete the value at that path (a missing path is that item's NotFound). No
    `keys`: clear the metadata to `{}`."""
    return services.media_metadata_update(payload, user=request.auth, op="delete").as_dict()


@router.get("/media", response=MediaPage, summary="List media, filtered and paged")
def media_list(request: HttpRequest, query: Query[MediaListQuery]):
    """One page of the media matching every given filter (none given: all media), by pk unless
    `order_by` says otherwise, as `{count, count_exact, next, previous, items}`; follow `next` for
    more. The filters are those of `POST /api/media/search` as query parameters: repeat `tags`,
    `tags_all`, `pid_type`, `identifiers` (`type=wildcard`) and `metadata` (`path:op[:value]`, e.g.
    `metadata=a.b:gte:5`). `count` is exact unless `count_exact` is false (counting stops at a cap).
    Unknown parameters are a 422 naming them. `X-Search-Plan: seqscan` as for `POST /api/media/search`."""
    body, plan = search.media_list(request, query)
    return set_plan_header(json_response(body), plan)


@router.get("/media/dump", response=list[MediaOut], summary="Every media, streamed")
def media_dump(request: HttpRequest, limit: int | None = None, offset: int = 0):
    """Every media by pk as one JSON array, sent in pieces so any table size works; `limit` and
    `offset` take a slice. For filtered or paged reads use `GET /api/media`."""
    return JsonArrayStream(search.media_dump_chunks(limit=limit, offset=offset))


@router.post("/media/search", response=list[MediaOut], summary="Search media")
def media_search(
    request: HttpRequest,
    payload: MediaSearch,
    limit: int | None = None,
    offset: int | None = None,
    cursor: str | None = None,
):
    """Media matching every given filter (AND), by pk unless `order_by` says otherwise. `{"tags": [...]}`
    alone finds the media carrying any of those tags, each once; a body with no filter finds nothing.
    `metadata` takes conditions `{"path": "a.b", "op": "gte", "value": 5}` (ops eq, ne, lt, lte, gt,
    gte, in, contains, exists, wildcard; a value of another JSON type never matches). One page comes
    back (`limit`, default 1000, at most 10000; `offset`): `X-Total-Count` tells how many match (a lower
    bound when `X-Total-Count-Exact` is false) and, when there are more, `Link: <url>; rel="next"`
    gives the URL to POST the same body to (its `limit`/`offset` query parameters win over the body's;
    links to pages deeper than `MEDIASTORE_SEARCH_CURSOR_FROM` matches also carry a `cursor`, which
    continues after the last row shown instead of skipping `offset` rows). Unknown filters and
    malformed conditions are a 422 naming the field. A metadata condition that no index serves
    (ranges on paths without `manage.py search_index`, `ne`, `exists`, `wildcard`), with no other
    indexed filter, reads the whole table: on a large one the answer says so with the header
    `X-Search-Plan: seqscan`."""
    page, plan = search.media_search(payload, limit=limit, offset=offset, cursor=cursor)
    answer = json_response(page.items)
    set_page_headers(answer, request, page)
    return set_plan_header(answer, plan)


@router.get("/media/{path:pid}/history", response=list[HistoryEntry], summary="Audit history of a media")
def media_history_get(request: HttpRequest, pid: str):
    """Every change of the media, newest first: when, who, created/changed/deleted, and the fields
    that changed with old and new values (tags included). Stays readable after the media is deleted."""
    return media_history(pid)


@router.post("/media/{path:pid}/revert", response=MediaOut, summary="Revert a media to an earlier version")
def media_revert(request: HttpRequest, pid: str, payload: RevertIn):
    """Give the media back the `pid`, `pid_type`, `identifiers`, `metadata` and `tags` it had at
    revision `version` (the numbers `GET /api/media/{pid}/history` lists), and answer the media as
    `GET /api/media/{pid}` does. The bytes and what describes them (`store_config`, `store_key`,
    `store_status`, `size`, `checksum`, `etag`, `content_type`) are never restored: the media keeps
    its current bytes. The revert is one more change (new `mark` and `version`) recorded in the
    history with reason "revert to version N"; a revert to the values the media has records nothing.
    404 for an unknown pid or version; the restored values must pass today's rules (422 otherwise, e.g.
    more tags than `MEDIASTORE_MAX_TAGS`);
    409 when another media has that pid now."""
    return services.media_revert(pid, version=payload.version, user=request.auth)


@router.post("/media/{path:pid}/hold", response=MediaOut, summary="Place a hold on a media")
def media_hold_place(request: HttpRequest, pid: str, payload: HoldIn):
    """Hold the media: until `until` (null: until released) it cannot be deleted (alone, in bulk or
    in the admin), have its bytes replaced (any upload path), be moved to another store, change store
    key or expire: each answers 423 Locked naming the hold and its reason (bulk endpoints report it
    per item, `error` `Locked`). With `freeze: true` metadata, tags, identifiers, pid and reverts are
    423 too. A hold on a held media replaces it. Recorded in the history; answers the media with its
    `hold`. Administrators only; 422 for an `until` in the past."""
    return services.media_hold(pid, payload, user=request.auth)


@router.delete("/media/{path:pid}/hold", response=MediaOut, summary="Release the hold of a media")
def media_hold_release(request: HttpRequest, pid: str):
    """End the media's hold now (recorded in the history) and answer the media (`hold` null).
    Releasing a media without a hold changes nothing. Administrators only."""
    return services.media_hold(pid, None, user=request.auth)


@router.get("/media/{path:pid}", response=MediaOut, summary="Get one media")
def media_get(request: HttpRequest, pid: str):
    """One media by pid (pids may contain `/`, `:` and `.`); 404 if there is none. The pid is looked
    up as given, then in Unicode NFC and NFD: `café` finds its media whichever way the `é` is written."""
    return json_response(media_out_dict(selectors.media_get(pid, request)))  # MediaOut, unvalidated: hot path


@router.patch("/media/{path:pid}", response={204: None}, summary="Rename, retype or re-store one media")
def media_patch(request: HttpRequest, pid: str, payload: MediaPatch):
    """`new_pid` renames, `pid_type` retypes (checked against the type's pattern), `store_config` (a
    store pk or description) moves the media to that store: a READY media's bytes are copied there
    and checked against its checksum first, then the media switches and the old copy is removed; if
    the copy fails the media is unchanged. The pid in the path wins over one in the body; `{}`
    changes nothing."""
    moves.media_patch(pid, payload, user=request.auth)
    return Status(204, None)


@router.delete("/media/{path:pid}", response={204: None}, summary="Delete one media")
def media_delete(request: HttpRequest, pid: str):
    """Delete the media, then its stored bytes: the record goes first (204), and if the store
    cannot remove the bytes now the media is deleted all the same and the object is left for
    `manage.py collect_orphans`. 404 only when there was no such media (a move or update running
    at the same time does not make it look missing)."""
    deletes.media_delete(pid, user=request.auth)
    return Status(204, None)
