"""Reading one page of a search: the order, the page query, the capped count, keyset cursors.

Shapes of page query on PostgreSQL (``Plan`` in ``media.search.selector`` picks one):

- **ordered walk** (filters no index serves, or none): the page's ids come from walking the index of
  the order (the primary key by default) and filtering as it goes, which stops after one page.
- **candidates first** (a filter an index serves: tags, pid, identifiers, metadata containment or an
  indexed metadata path): every match is collected first in a ``MATERIALIZED`` CTE, and only then
  sorted and cut to the page. The planner cannot then choose to walk the primary key hoping to meet
  the matches early (a bet on its row estimate and on the matches being spread evenly, which
  ``ANALYZE`` samples decide; for a pid prefix the matches are one contiguous run of ids, so that
  walk read 700,000 rows for a page of 100). Inside the CTE the choice is only between the indexes
  and a full scan, and its cost grows with the number of matches, not with the planner's luck.
  Before it, one statement tries a **bounded walk** (``_page_ids_sql``): a fixed window of rows in
  the order, each checked through the primary key, which fills the page at once when matches are
  common; the candidate set is only evaluated when the walk did not. A statement that collected
  the candidates also counts them (capped), so the page needs no COUNT statement of its own,
  which would collect them all again; only a page the walk found does.

Deep pages: a ``cursor`` (the order key of the last row shown, signed) continues after that row
through the order's index instead of skipping ``offset`` rows. Links to pages that start at or
beyond ``MEDIASTORE_SEARCH_CURSOR_FROM`` matches carry one; ``offset`` alone stays accepted.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import signing

from media.search.filters import (
    TABLE,
    TAG_BY_NAME,
    TAGGED,
    Conditions,
    after_key,
    id_and_key_columns,
    key_fields,
    order_sql,
)
from media.search.rows import media_rows, media_rows_counted
from mediastore.dbrouting import read_connection as connection  # the replica for routed reads
from mediastore.errors import RuleViolation
from mediastore.pagination import Page

CURSOR_SALT = "mediastore.search.cursor"


# --- cursors --------------------------------------------------------------------------------


def filters_digest(filters_json: str) -> str:
    """A short fingerprint of the filters, so a cursor is refused by another search."""
    return hashlib.sha256(filters_json.encode()).hexdigest()[:16]


def encode_cursor(order_by: str | None, digest: str, row: dict[str, Any]) -> str:
    values = []
    for name in key_fields(order_by):
        value = row[name]
        values.append(value.isoformat() if isinstance(value, datetime) else value)
    return signing.dumps({"o": order_by or "", "d": digest, "k": values}, salt=CURSOR_SALT, compress=True)


def decode_cursor(text: str, order_by: str | None, digest: str) -> list[Any]:
    """The key values in ``text``; a 422 when it is not a cursor of this search and order."""
    try:
        data = signing.loads(text, salt=CURSOR_SALT)
    except signing.BadSignature:
        raise RuleViolation("search filter 'cursor': not a cursor issued by this server") from None
    if not isinstance(data, dict) or data.get("o") != (order_by or "") or data.get("d") != digest:
        raise RuleViolation("search filter 'cursor': it belongs to another search or order")
    values = data["k"]
    fields = key_fields(order_by)
    return [
        datetime.fromisoformat(v) if f in ("created", "updated") else v
        for f, v in zip(fields, values, strict=True)
    ]


# --- the queries ----------------------------------------------------------------------------


def _matches_sql(conditions: Conditions, columns: list[str]) -> tuple[str, list[Any]]:
    """``SELECT <columns> FROM media_media WHERE <conditions>`` (unordered)."""
    where, params = conditions.where()
    selected = ", ".join(f'{TABLE}."{column}"' for column in columns)
    return f"SELECT {selected} FROM {TABLE} WHERE {where}", params


def _candidates_sql(conditions: Conditions, order_by: str | None) -> tuple[str, list[Any], str]:
    """``candidates(...) AS MATERIALIZED (...)``: every match with its order key; and the ORDER BY."""
    columns = id_and_key_columns(order_by)
    inner, params = _matches_sql(conditions, columns)
    with_sql = f"candidates({', '.join(columns)}) AS MATERIALIZED ({inner})"
    return with_sql, params, order_sql(order_by, "candidates")


#: The bounded walk looks at this many rows per row of the page (offset included), at least
#: WALK_MIN and at most WALK_MAX: it finds the page when 1 in 10 rows (1 in 20 for small pages) match
WALK_FACTOR = 10
WALK_MIN = 2000
WALK_MAX = 20000
#: ... and is not tried for pages deeper than this (offset + limit); the cursor keeps them shallow.
WALK_MAX_DEPTH = 5000


def _page_ids_sql(
    conditions: Conditions,
    *,
    order_by: str | None,
    limit: int,
    offset: int,
    key: list[Any] | None,
    walk: bool,
    count_cap: int | None = None,
) -> tuple[str, list[Any]]:
    """One statement choosing the page's ids of a search with an indexed filter (PostgreSQL).

    First a bounded walk: the next ``WALK_FACTOR x (offset + limit)`` rows in the order (within
    ``WALK_MIN`` and ``WALK_MAX``; an index scan with no filter, so no estimate can change it) are
    checked one by one through the primary key; when that finds the whole page, as it does for
    filters that match many rows, it is the answer. Only when it does not is the ``candidates``
    CTE evaluated (a gated UNION branch, never started otherwise). Each part's cost is bounded by
    the rows it reads, not by the planner's luck.

    ``count_cap``: each id comes with the number of matches counted up to ``count_cap`` (a second
    column) from the candidates already collected, or NULL when the walk found the page and
    collected none: a page that needs its total then needs no COUNT statement of its own, which
    would collect every match a second time.
    """
    with_sql, params, candidates_order = _candidates_sql(conditions, order_by)
    total, total_params = "", []
    if count_cap is not None:
        total, total_params = (
            ", (SELECT count(*) FROM (SELECT 1 FROM candidates LIMIT %s) AS capped)",
            [count_cap],
        )
    candidates = f"SELECT candidates.id{total} FROM candidates ORDER BY {candidates_order} LIMIT %s OFFSET %s"
    depth = offset + limit
    if not walk or depth > WALK_MAX_DEPTH:
        return f"WITH {with_sql} {candidates}", [*params, *total_params, limit, offset]
    columns = id_and_key_columns(order_by)
    size = min(WALK_MAX, max(WALK_MIN, WALK_FACTOR * depth))
    after = Conditions() if key is None else after_key(Conditions(), order_by, key)
    window, window_params = _matches_sql(after, columns)
    window = f"{window} ORDER BY {order_sql(order_by)} LIMIT %s"
    # The search's conditions (written on "media_media") applied to each row of the window read
    # through the primary key: OFFSET 0 keeps that lookup a subquery of its own, so no other index
    # can serve it.
    where, where_params = conditions.where()
    walk_sql = (
        f"walk AS MATERIALIZED (SELECT w.id FROM ({window}) AS w({', '.join(columns)}) "
        f"CROSS JOIN LATERAL (SELECT * FROM {TABLE} AS walked WHERE walked.id = w.id OFFSET 0) "
        f"AS {TABLE} "
        f"WHERE {where} ORDER BY {order_sql(order_by, 'w')} LIMIT %s OFFSET %s)"
    )
    walk_total, page_columns = (", NULL::bigint", "id, total") if count_cap is not None else ("", "id")
    sql = (
        f"WITH {walk_sql}, {with_sql} "
        f"SELECT walk.id{walk_total} FROM walk WHERE (SELECT count(*) FROM walk) = %s "
        f"UNION ALL (SELECT page.* FROM ({candidates}) AS page({page_columns}) "
        f"WHERE (SELECT count(*) FROM walk) < %s)"
    )
    walk_params = [*window_params, size, *where_params, limit, offset]
    return sql, [*walk_params, *params, limit, *total_params, limit, offset, limit]


def _one_tag_ids_sql(
    conditions: Conditions, *, limit: int, offset: int, key: list[Any] | None
) -> tuple[str, list[Any]]:
    """The page's ids of a search whose only filter is one tag (``Conditions.one_tag``), read from
    the tag index ``(tag, media)`` in its order: the page's rows and those skipped before them, never
    every match, wherever the tag's media lie among the ids.

    The tag is named inside the statement, so the statement is the same for every tag and is
    prepared once per connection (``media.search.rows``); the planner knows nothing of the tag's
    frequency then, and the statement is written so that no estimate can choose another way. The
    inner query takes the first ``offset + limit`` index entries from the tag on (``tag >= t``, in
    ``(tag, media)`` order, which only that index gives and whose rows an open-ended range makes many:
    an ordered index scan that stops at the ``LIMIT``); the tag's own entries come first, each
    checked through its media's primary key (expired media are left out), and entries of later tags
    are passed over without a lookup and dropped by the outer query. A tag with fewer matches than
    the page costs at most a page of other tags' index entries. With ``tag = t`` instead the planner
    estimated every tag at the average, and with few tags on a site walked the primary key or the
    ``(media, tag)`` index for a rare tag, or sorted all of a common tag's rows (test_search_plans).

    Page size and offset are written as numbers (validated integers); a cursor's ``key`` enters the
    index at ``(t, key)``."""
    where, params = conditions.where(tag=False)
    tagged = TAGGED
    tag = TAG_BY_NAME
    if key is None:
        start, start_params = f'tm."tag_id" >= {tag}', [conditions.one_tag]
    else:
        start, start_params = (
            f'(tm."tag_id", tm."content_object_id") > ({tag}, %s)',
            [conditions.one_tag, key[0]],
        )
    # OFFSET 0: the EXISTS stays a lookup by primary key per entry (without it, PostgreSQL may
    # turn it into a hashed subplan that reads every served media first).
    served = (
        f'EXISTS (SELECT 1 FROM {TABLE} WHERE {TABLE}."id" = tm."content_object_id" AND {where} OFFSET 0)'
    )
    inner = (
        f'SELECT tm."tag_id", tm."content_object_id" FROM {tagged} tm '
        f'WHERE {start} AND (tm."tag_id" > {tag} OR {served}) '
        f'ORDER BY tm."tag_id", tm."content_object_id" LIMIT {int(offset) + int(limit)}'
    )
    sql = (
        f'SELECT entries."content_object_id" FROM ({inner}) AS entries WHERE entries."tag_id" = {tag} '
        f'ORDER BY entries."content_object_id" OFFSET {int(offset)}'
    )
    return sql, [*start_params, conditions.one_tag, *params, conditions.one_tag]


def page_ids_sql(
    conditions: Conditions,
    *,
    order_by: str | None,
    limit: int,
    offset: int,
    candidates_first: bool = False,
    key: list[Any] | None = None,
    walk: bool = True,
    count_cap: int | None = None,
) -> tuple[str, list[Any]]:
    """SQL of the ids of rows ``offset`` to ``offset + limit`` of the matches in order.

    ``key`` is the cursor's, when ``conditions`` already hold the rows after it. ``count_cap``: on
    the statements that collect every match first (``counts_with_page``), each id comes with the
    number of matches counted up to ``count_cap`` (or NULL, see ``_page_ids_sql``)."""
    if conditions.one_tag is not None:
        return _one_tag_ids_sql(conditions, limit=limit, offset=offset, key=key)
    if candidates_first and connection.vendor == "postgresql":
        return _page_ids_sql(
            conditions, order_by=order_by, limit=limit, offset=offset, key=key, walk=walk, count_cap=count_cap
        )
    sql, params = _matches_sql(conditions, ["id"])
    return f"{sql} ORDER BY {order_sql(order_by)} LIMIT %s OFFSET %s", [*params, limit, offset]


def counts_with_page(conditions: Conditions, *, candidates_first: bool) -> bool:
    """Whether ``page_ids_sql`` can give the page's ids with the count (``count_cap``)."""
    return candidates_first and conditions.one_tag is None and connection.vendor == "postgresql"


def count_sql(conditions: Conditions, cap: int, *, candidates_first: bool = False) -> tuple[str, list[Any]]:
    """SQL counting up to ``cap`` matches."""
    if candidates_first and connection.vendor == "postgresql":
        with_sql, params, _ = _candidates_sql(conditions, None)
        return f"SELECT count(*) FROM (WITH {with_sql} SELECT 1 FROM candidates LIMIT %s) AS capped", [
            *params,
            cap,
        ]
    sql, params = _matches_sql(conditions, ["id"])
    return f"SELECT count(*) FROM ({sql} LIMIT %s) AS capped", [*params, cap]


def count_matches(conditions: Conditions, cap: int, *, candidates_first: bool = False) -> int:
    """How many matches there are, counting no further than ``cap``."""
    if conditions.empty:
        return 0
    sql, params = count_sql(conditions, cap, candidates_first=candidates_first)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def search_page(
    conditions: Conditions,
    *,
    order_by: str | None,
    limit: int,
    offset: int,
    cursor: str | None = None,
    digest: str = "",
    candidates_first: bool = False,
    walk: bool = True,
) -> Page:
    """Read one page of the matches (one statement, plus a capped COUNT unless the page shows the
    total or its statement counted the matches it collected).

    With ``cursor`` the page starts after the row it names, and ``offset`` (the number of matches
    before it, as the link said) only serves the total and the links.
    """
    key = None if cursor is None else decode_cursor(cursor, order_by, digest)
    rest = conditions if key is None else after_key(conditions, order_by, key)
    skip = 0 if cursor is not None else offset
    rows: list[dict[str, Any]] = []
    counted: int | None = None  # the matches, when the page's statement counted them
    if not rest.empty:
        with_count = counts_with_page(rest, candidates_first=candidates_first)
        ids_sql, ids_params = page_ids_sql(
            rest,
            order_by=order_by,
            limit=limit + 1,
            offset=skip,
            candidates_first=candidates_first,
            key=key,
            walk=walk,
            # as far as the count below can need (the page holds at most limit of the rows)
            count_cap=max(settings.MEDIASTORE_SEARCH_COUNT_CAP, skip + limit + 1) + 1 if with_count else None,
        )
        if with_count:
            rows, counted = media_rows_counted(ids_sql, ids_params, order_by)
        else:
            rows = media_rows(ids_sql, ids_params, order_by, prepared=rest.one_tag is not None)
    has_next = len(rows) > limit
    rows = rows[:limit]
    next_params = {}
    if has_next and rows and offset + limit >= settings.MEDIASTORE_SEARCH_CURSOR_FROM:
        next_params["cursor"] = encode_cursor(order_by, digest, rows[-1])
    if not has_next and (rows or offset == 0):
        return Page(rows, offset + len(rows), True, offset, limit, False)
    counting_cap = max(settings.MEDIASTORE_SEARCH_COUNT_CAP, skip + len(rows) + 1)
    if counted is None:
        counted = count_matches(rest, counting_cap + 1, candidates_first=candidates_first)
    before = offset - skip  # matches before the cursor (0 without one)
    total, exact = before + min(counted, counting_cap), counted <= counting_cap
    return Page(rows, total, exact, offset, limit, has_next, next_params)
