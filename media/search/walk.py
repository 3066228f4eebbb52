"""Every match of a search, in the search's order, read a chunk at a time (``POST /api/download/archive``).

A search answer is one page; an archive takes every match. The walk uses the statements of a page
(``media.search.pages``) with the keyset of the order: each chunk starts after the last row of the
one before, so memory holds one chunk and no statement skips rows it already read.
"""

from __future__ import annotations

from collections.abc import Iterator

from media.models import Media
from media.schemas import MediaSearch
from media.search.filters import after_key, conditions_for, key_fields
from media.search.indexes import indexes_for
from media.search.pages import count_matches, page_ids_sql
from media.search.selector import search_plan
from media.selectors import media_queryset
from mediastore.dbrouting import read_connection as connection  # the replica for routed reads

WALK_CHUNK = 500


def _key(media: Media, order_by: str | None) -> list:
    return [getattr(media, name) for name in key_fields(order_by)]


def search_count(filters: MediaSearch, cap: int) -> int:
    """How many media match ``filters``, counting no further than ``cap``."""
    paths = indexes_for(filters)
    plan = search_plan(filters, paths)
    return count_matches(conditions_for(filters, paths), cap, candidates_first=plan.candidates_first)


def search_walk(
    filters: MediaSearch, *, limit: int | None = None, offset: int = 0, chunk: int = WALK_CHUNK
) -> Iterator[Media]:
    """The media matching ``filters`` in the search's order (``order_by``, else pk), with their
    stores, ``limit`` of them (None: all) after the first ``offset``. Reads ``chunk`` media per
    statement pair (their ids, then the rows)."""
    paths = indexes_for(filters)
    plan = search_plan(filters, paths)
    conditions = conditions_for(filters, paths)
    order_by = filters.order_by
    key = None
    left = limit
    while not conditions.empty and (left is None or left > 0):
        size = chunk if left is None else min(chunk, left)
        rest = conditions if key is None else after_key(conditions, order_by, key)
        ids_sql, params = page_ids_sql(
            rest,
            order_by=order_by,
            limit=size,
            offset=offset if key is None else 0,
            candidates_first=plan.candidates_first,
            key=key,
            walk=plan.walk,
        )
        with connection.cursor() as cursor:
            cursor.execute(ids_sql, params)
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return
        found = media_queryset().in_bulk(ids)
        rows = [found[pk] for pk in ids if pk in found]  # a row deleted between the statements is left out
        yield from rows
        if len(ids) < size:
            return
        if left is not None:
            left -= len(ids)
        if rows:
            key = _key(rows[-1], order_by)
        elif not order_by:  # every row of the chunk was deleted meanwhile: go on after the last id
            key = [ids[-1]]
        else:  # ... and its order key went with it: nothing to go on from (only under heavy deletes)
            return
