"""The fixed limits of the API, each in one place (the configurable ones are settings, read from
the environment in ``settings.py``: ``MEDIASTORE_MAX_UPLOAD_MB``, ``MEDIASTORE_SEARCH_COUNT_CAP``,
...). Models, schemas and rules import these names instead of repeating the numbers; changing a
length here that a model uses needs a migration.
"""

# Paging of searches, lists and the dump.
MAX_PAGE = 10_000  # items of one search or list page
MAX_OFFSET = 10**12  # matches to skip, and dump slices (SQLite's integers overflow beyond)
MAX_EVENTS_PAGE = 1000  # events of one page of GET /api/events

# Lengths of what clients name.
MAX_PID_LENGTH = 512  # a media's pid (Media.pid is a column of this length)
MAX_TAG_LENGTH = 100  # one tag
MAX_KEY_LENGTH = 1024  # a store key (Media.store_key)
MAX_BUCKET_LENGTH = 1024  # a store configuration's bucket (StoreConfig.bucket)

# Search conditions.
MAX_PATH_KEYS = 32  # keys of one metadata path: 10,000 built a query too deep to compile (a 500)
MAX_IN_VALUES = 1000  # values of one "in" condition

# JSON bodies: nesting deeper than this is refused before parsing (422), whatever the call stack's
# depth (the parser's recursion otherwise ran out at a depth that moved with the code around it).
MAX_JSON_DEPTH = 512
