"""Search of media (``POST /api/media/search``, ``GET /api/media``, ``GET /api/media/dump``).

- ``wildcards``: the wildcard syntax and its SQL (``LIKE`` on PostgreSQL, ``GLOB`` on SQLite);
- ``sql``: each filter as one boolean SQL condition, the same answer on both databases;
- ``filters``: the filters as SQL conditions on the media table, the order and the keyset;
- ``pages``: the statements of one page (ordered walk, candidates first, bounded walk, count);
- ``rows``: a page's rows as ``MediaOut`` dicts, read by one statement;
- ``selector``: a search request, planned and read one page at a time;
- ``params``: ``GET /api/media``'s query parameters as filters;
- ``dump``: every media as a streamed JSON array.

Paging on the wire (``Page``, ``X-Total-Count``, ``Link``) lives in ``mediastore.pagination``.
"""

from media.search.dump import media_dump_chunks
from media.search.filters import Conditions, conditions_for
from media.search.pages import count_matches, count_sql, page_ids_sql, search_page
from media.search.selector import (
    Plan,
    has_filters,
    media_list,
    media_search,
    search_plan,
)
from media.search.wildcards import Wildcard

__all__ = [
    "Conditions",
    "Plan",
    "conditions_for",
    "count_matches",
    "count_sql",
    "search_plan",
    "Wildcard",
    "has_filters",
    "media_dump_chunks",
    "media_list",
    "media_search",
    "page_ids_sql",
    "search_page",
]
