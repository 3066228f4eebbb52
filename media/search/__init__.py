"""Search of media (``POST /api/media/search``, ``GET /api/media``, ``GET /api/media/dump``).

- ``wildcards``: the wildcard syntax and its SQL (``LIKE`` on PostgreSQL, ``GLOB`` on SQLite);
- ``sql``: each filter as one boolean SQL condition, the same answer on both databases;
- ``selector``: the filters as one QuerySet, read one page at a time;
- ``params``: ``GET /api/media``'s query parameters as filters;
- ``dump``: every media as a streamed JSON array.

Paging on the wire (``Page``, ``X-Total-Count``, ``Link``) lives in ``mediastore.pagination``.
"""

from media.search.dump import media_dump_chunks
from media.search.selector import (
    count_queryset,
    has_filters,
    media_list,
    media_search,
    media_search_queryset,
    page_queryset,
    search_page,
)
from media.search.wildcards import Wildcard

__all__ = [
    "Wildcard",
    "count_queryset",
    "has_filters",
    "media_dump_chunks",
    "media_list",
    "media_search",
    "media_search_queryset",
    "page_queryset",
    "search_page",
]
