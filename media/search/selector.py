"""The search selector: ``MediaSearch`` filters become SQL conditions, read one page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from media.schemas import MAX_OFFSET, MAX_PAGE, MediaListQuery, MediaSearch, MetadataCondition
from media.search.filters import conditions_for
from media.search.indexes import IndexedPaths, index_for, indexes_for, media_rows_estimate
from media.search.pages import filters_digest, search_page
from media.search.params import filters_from_query
from media.search.wildcards import Wildcard
from mediastore.errors import RuleViolation
from mediastore.pagination import Page, next_url, previous_url


def has_filters(filters: MediaSearch) -> bool:
    """Whether any filter is given; empty lists and objects do not count."""
    values = filters.model_dump(exclude={"order_by", "limit", "offset"})
    return any(value not in (None, [], {}) for value in values.values())


def _check_paging(limit: int | None, offset: int | None) -> None:
    if limit is not None and not 0 <= limit <= MAX_PAGE:
        raise RuleViolation(f"search filter 'limit' must be between 0 and {MAX_PAGE}")
    if offset is not None and not 0 <= offset <= MAX_OFFSET:
        raise RuleViolation("search filter 'offset' must be 0 or more")


@dataclass(frozen=True)
class Plan:
    """How a search is read (see ``media.search.pages``).

    ``candidates_first``: some filter is served by an index, so every match is collected through
    the indexes first (PostgreSQL). ``seqscan``: some metadata condition no index serves and no
    other filter narrows the search through an index, on a table large enough for that to take a
    while (``X-Search-Plan: seqscan``).
    """

    candidates_first: bool
    seqscan: bool
    walk: bool = True


def _served_by_index(condition: MetadataCondition, paths: IndexedPaths) -> bool:
    plain_keys = all(isinstance(key, str) for key in condition.path_keys)
    return (condition.op in ("eq", "in", "contains") and plain_keys) or index_for(
        condition, paths
    ) is not None


def _pid_order_walk(filters: MediaSearch) -> bool:
    """Ordered by pid with a pid prefix as the only indexed filter: walking the pid index from the
    prefix on finds the page in order at once, better than collecting every match first."""
    only_pid = not (filters.tags or filters.tags_all or filters.identifiers or filters.identifier)
    only_pid = only_pid and not any(c.op in ("eq", "in", "contains") for c in filters.metadata)
    pid_prefix = filters.pid is not None and Wildcard.parse(filters.pid).prefix != ""
    return filters.order_by in ("pid", "-pid") and only_pid and pid_prefix


def search_plan(filters: MediaSearch, paths: IndexedPaths) -> Plan:
    indexed = (
        bool(filters.tags or filters.tags_all or filters.pid is not None or filters.identifiers)
        or filters.identifier is not None
    )
    indexed = indexed or any(_served_by_index(c, paths) for c in filters.metadata)
    if indexed and _pid_order_walk(filters):
        indexed = False
    unindexed = [c for c in filters.metadata if not _served_by_index(c, paths)]
    seqscan = (
        bool(unindexed) and not indexed and media_rows_estimate() >= settings.MEDIASTORE_SEARCH_SEQSCAN_ROWS
    )
    # Identifier conditions cost too much per row for the bounded walk, and rarely match many rows.
    walk = not filters.identifiers and filters.identifier is None
    return Plan(candidates_first=indexed, seqscan=seqscan, walk=walk)


def _read(filters: MediaSearch, *, limit: int, offset: int, cursor: str | None) -> tuple[Page, Plan]:
    paths = indexes_for(filters)
    plan = search_plan(filters, paths)
    digest = filters_digest(filters.model_dump_json(exclude={"limit", "offset"}))
    page = search_page(
        conditions_for(filters, paths),
        order_by=filters.order_by,
        limit=limit,
        offset=offset,
        cursor=cursor,
        digest=digest,
        candidates_first=plan.candidates_first,
        walk=plan.walk,
    )
    return page, plan


def media_search(
    filters: MediaSearch, *, limit: int | None = None, offset: int | None = None, cursor: str | None = None
) -> tuple[Page, Plan]:
    """``POST /api/media/search``: ``limit``/``offset`` given apart (query string) win over the body's.

    Without any filter the search finds nothing, as the earlier server did for ``{"tags": []}``.
    """
    _check_paging(limit, offset)
    limit = filters.limit if limit is None else limit
    offset = filters.offset if offset is None else offset
    if not has_filters(filters):
        return Page([], 0, True, offset, limit, False), Plan(False, False)
    return _read(filters, limit=limit, offset=offset, cursor=cursor)


def media_list(request: HttpRequest, query: MediaListQuery) -> tuple[dict[str, Any], Plan]:
    """``GET /api/media``: one page as ``{count, count_exact, next, previous, items}``; no filter: all."""
    filters = filters_from_query(query, request.GET.keys())
    page, plan = _read(filters, limit=filters.limit, offset=filters.offset, cursor=query.cursor)
    return {
        "count": page.total,
        "count_exact": page.total_exact,
        "next": next_url(request, page),
        "previous": previous_url(request, page),
        "items": page.items,
    }, plan
