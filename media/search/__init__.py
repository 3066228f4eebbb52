"""Search of media (``POST /api/media/search``, ``GET /api/media``, ``GET /api/media/dump``).

- ``wildcards``: the wildcard syntax and its SQL (``LIKE`` on PostgreSQL, ``GLOB`` on SQLite);
- ``sql``: each filter as one boolean SQL condition, the same answer on both databases;
- ``selector``: the filters as one QuerySet, read one page at a time;
- ``params``: ``GET /api/media``'s query parameters as filters;
- ``dump``: every media as a streamed JSON array.

Paging on the wire (``Page``, ``X-Total-Count``, ``Link``) lives in ``mediastore.pagination``.
"""

from media.search.dump import media_dump_chunks
from media.search.pages import count_matches, count_sql, page_queryset, search_page
from media.search.selector import (
    Plan,
    has_filters,
    media_list,
    media_search,
    media_search_queryset,
    search_plan,
)
from media.search.wildcards import Wildcard

__all__ = [
    "Plan",
    "count_matches",
    "count_sql",
    "search_plan",
    "Wildcard",
    "has_filters",
    "media_dump_chunks",
    "media_list",
    "media_search",
    "media_search_queryset",
    "page_queryset",
    "search_page",
]
