"""The search selector: ``MediaSearch`` filters become one QuerySet, read one page at a time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Exists, F, OuterRef, QuerySet
from django.db.models.functions import Collate
from django.http import HttpRequest
from taggit.models import Tag

from media.models import Media, TaggedMedia
from media.schemas import MAX_OFFSET, MAX_PAGE, MediaListQuery, MediaSearch
from media.search.params import filters_from_query
from media.search.sql import Where, any_identifier_matches, identifier_type_matches, metadata_condition
from media.search.wildcards import Wildcard, text_matches
from media.selectors import media_queryset
from mediastore.errors import RuleViolation
from mediastore.pagination import Page, next_url, previous_url


def has_filters(filters: MediaSearch) -> bool:
    """Whether any filter is given; empty lists and objects do not count."""
    values = filters.model_dump(exclude={"order_by", "limit", "offset"})
    return any(value not in (None, [], {}) for value in values.values())


def _tag_ids(names: Iterable[str]) -> dict[str, int]:
    names = set(names)
    return dict(Tag.objects.filter(name__in=names).values_list("name", "id")) if names else {}


def media_search_queryset(filters: MediaSearch) -> QuerySet[Media]:
    """The media matching every given filter (unordered; the response's joins included).

    One small query resolves tag names first; unknown tags then end the search without more queries.
    """
    qs = media_queryset()
    ids = _tag_ids([*filters.tags, *filters.tags_all])
    if filters.tags:
        wanted = [ids[name] for name in filters.tags if name in ids]
        if not wanted:
            return qs.none()
        qs = qs.filter(pk__in=TaggedMedia.objects.filter(tag_id__in=wanted).values("content_object_id"))
    if filters.tags_all:
        if any(name not in ids for name in filters.tags_all):
            return qs.none()
        for tag_id in sorted({ids[name] for name in filters.tags_all}):
            qs = qs.filter(
                Exists(TaggedMedia.objects.filter(content_object_id=OuterRef("pk"), tag_id=tag_id))
            )
    if filters.pid is not None:
        wildcard = Wildcard.parse(filters.pid)
        if wildcard.is_literal:
            qs = qs.filter(pid=wildcard.literal)
        else:
            qs = qs.filter(Where(lambda vendor, pid: text_matches(pid, vendor, wildcard), "pid"))
    pid_types = [filters.pid_type] if isinstance(filters.pid_type, str) else filters.pid_type
    if pid_types:
        qs = qs.filter(pid_type_id__in=pid_types)
    for type_name, pattern in sorted(filters.identifiers.items()):
        qs = qs.filter(identifier_type_matches(type_name, pattern))
    if filters.identifier is not None:
        qs = qs.filter(any_identifier_matches(filters.identifier))
    for condition in filters.metadata:
        qs = qs.filter(metadata_condition(condition))
    simple = {
        "store_status": filters.store_status,
        "store_config_id": filters.store_config,
        "created__gte": filters.created_after,
        "created__lt": filters.created_before,
        "updated__gte": filters.updated_after,
        "updated__lt": filters.updated_before,
    }
    return qs.filter(**{lookup: value for lookup, value in simple.items() if value is not None})


def _ordering(order_by: str | None) -> list:
    if not order_by:
        return ["pk"]
    field = order_by.lstrip("-")
    descending = order_by.startswith("-")
    if field == "pid":  # byte order on both databases (and served by the pid index of migration 0003)
        expression = Collate(F("pid"), "C") if connection.vendor == "postgresql" else F("pid")
        return [expression.desc() if descending else expression.asc()]
    return [F(field).desc(), F("pk").desc()] if descending else [F(field).asc(), F("pk").asc()]


def page_queryset(qs: QuerySet[Media], *, order_by: str | None, limit: int, offset: int) -> QuerySet[Media]:
    """The rows ``offset`` to ``offset + limit`` of ``qs`` in order, as one query.

    The page's ids are chosen first, in a subquery that reads no more than filtering and ordering
    need (often only indexes); only those rows are then read whole, with the response's joins.
    """
    ordering = _ordering(order_by)
    page_ids = qs.order_by(*ordering).values("pk")[offset : offset + limit]
    return media_queryset().filter(pk__in=page_ids).order_by(*ordering)


def count_queryset(qs: QuerySet[Media], cap: int) -> QuerySet:
    """Up to ``cap`` matches of ``qs``, for counting them."""
    return qs.order_by().values("pk")[:cap]


def search_page(qs: QuerySet[Media], *, order_by: str | None, limit: int, offset: int) -> Page:
    """Read one page of ``qs`` (one query, plus a capped COUNT unless the page shows the total)."""
    rows = list(page_queryset(qs, order_by=order_by, limit=limit + 1, offset=offset))
    has_next = len(rows) > limit
    rows = rows[:limit]
    if not has_next and (rows or offset == 0):
        return Page(rows, offset + len(rows), True, offset, limit, False)
    cap = max(settings.MEDIASTORE_SEARCH_COUNT_CAP, offset + len(rows) + 1)
    counted = count_queryset(qs, cap + 1).count()
    return Page(rows, min(counted, cap), counted <= cap, offset, limit, has_next)


def _check_paging(limit: int | None, offset: int | None) -> None:
    if limit is not None and not 0 <= limit <= MAX_PAGE:
        raise RuleViolation(f"search filter 'limit' must be between 0 and {MAX_PAGE}")
    if offset is not None and not 0 <= offset <= MAX_OFFSET:
        raise RuleViolation("search filter 'offset' must be 0 or more")


def media_search(filters: MediaSearch, *, limit: int | None = None, offset: int | None = None) -> Page:
    """``POST /api/media/search``: ``limit``/``offset`` given apart (query string) win over the body's.

    Without any filter the search finds nothing, as the earlier server did for ``{"tags": []}``.
    """
    _check_paging(limit, offset)
    limit = filters.limit if limit is None else limit
    offset = filters.offset if offset is None else offset
    if not has_filters(filters):
        return Page([], 0, True, offset, limit, False)
    return search_page(media_search_queryset(filters), order_by=filters.order_by, limit=limit, offset=offset)


def media_list(request: HttpRequest, query: MediaListQuery) -> dict[str, Any]:
    """``GET /api/media``: one page as ``{count, count_exact, next, previous, items}``; no filter: all."""
    filters = filters_from_query(query, request.GET.keys())
    page = search_page(
        media_search_queryset(filters), order_by=filters.order_by, limit=filters.limit, offset=filters.offset
    )
    return {
        "count": page.total,
        "count_exact": page.total_exact,
        "next": next_url(request, page),
        "previous": previous_url(request, page),
        "items": page.items,
    }
