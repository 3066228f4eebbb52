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
  common; the candidate set is only evaluated when the walk did not.

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
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Collate

from media.models import Media
from media.search.rows import media_rows
from media.selectors import media_queryset
from mediastore.errors import RuleViolation
from mediastore.pagination import Page

CURSOR_SALT = "mediastore.search.cursor"


def ordering(order_by: str | None) -> list:
    """The ORDER BY of a search: pk by default; pid in byte order; dates with pk to break ties."""
    if not order_by:
        return ["pk"]
    field = order_by.lstrip("-")
    descending = order_by.startswith("-")
    if field == "pid":  # byte order on both databases (and served by the pid index of migration 0003)
        expression = Collate(F("pid"), "C") if connection.vendor == "postgresql" else F("pid")
        return [expression.desc() if descending else expression.asc()]
    return [F(field).desc(), F("pk").desc()] if descending else [F(field).asc(), F("pk").asc()]


def _key_fields(order_by: str | None) -> list[str]:
    """The fields whose values name a row's place in the order (its keyset key)."""
    if not order_by:
        return ["pk"]
    field = order_by.lstrip("-")
    return ["pid"] if field == "pid" else [field, "pk"]


# --- cursors --------------------------------------------------------------------------------


def filters_digest(filters_json: str) -> str:
    """A short fingerprint of the filters, so a cursor is refused by another search."""
    return hashlib.sha256(filters_json.encode()).hexdigest()[:16]


def encode_cursor(order_by: str | None, digest: str, row: dict[str, Any]) -> str:
    values = []
    for name in _key_fields(order_by):
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
    fields = _key_fields(order_by)
    return [
        datetime.fromisoformat(v) if f in ("created", "updated") else v
        for f, v in zip(fields, values, strict=True)
    ]


def after_cursor(qs: QuerySet[Media], order_by: str | None, key: list[Any]) -> QuerySet[Media]:
    """The rows of ``qs`` that come after ``key`` in the order."""
    descending = bool(order_by) and order_by.startswith("-")
    op = "lt" if descending else "gt"
    fields = _key_fields(order_by)
    if fields == ["pk"]:
        return qs.filter(**{f"pk__{op}": key[0]})
    if fields == ["pid"]:
        if connection.vendor == "postgresql":
            return qs.alias(pid_c=Collate(F("pid"), "C")).filter(**{f"pid_c__{op}": key[0]})
        return qs.filter(**{f"pid__{op}": key[0]})
    field = fields[0]
    return qs.filter(Q(**{f"{field}__{op}": key[0]}) | Q(**{field: key[0], f"pk__{op}": key[1]}))


# --- the queries ----------------------------------------------------------------------------


def _order_sql(alias: str, order_by: str | None) -> tuple[list[str], str]:
    """The key columns of the order and its ORDER BY over the table ``alias``."""
    columns = ["id" if name == "pk" else name for name in _key_fields(order_by)]
    direction = "DESC" if order_by and order_by.startswith("-") else "ASC"
    order = ", ".join(
        f'{alias}.pid COLLATE "C" {direction}' if name == "pid" else f"{alias}.{name} {direction}"
        for name in columns
    )
    return columns, order


def _candidates_sql(qs: QuerySet[Media], order_by: str | None) -> tuple[str, list[Any], str]:
    """``candidates(...) AS MATERIALIZED (...)``: every match with its order key; and the ORDER BY."""
    fields = _key_fields(order_by)
    inner, params = qs.order_by().values(*dict.fromkeys(["pk", *fields])).query.sql_with_params()
    columns, order = _order_sql("candidates", order_by)
    names = ", ".join(dict.fromkeys(["id", *columns]))
    return f"candidates({names}) AS MATERIALIZED ({inner})", list(params), order


#: The bounded walk looks at this many rows per row of the page (offset included), at least
#: WALK_MIN and at most WALK_MAX: it finds the page when 1 in 10 rows (1 in 20 for small pages) match
WALK_FACTOR = 10
WALK_MIN = 2000
WALK_MAX = 20000
#: ... and is not tried for pages deeper than this (offset + limit); the cursor keeps them shallow.
WALK_MAX_DEPTH = 5000


def _page_ids_sql(
    qs: QuerySet[Media], *, order_by: str | None, limit: int, offset: int, key: list[Any] | None, walk: bool
) -> tuple[str, list[Any]]:
    """One statement choosing the page's ids of a search with an indexed filter (PostgreSQL).

    First a bounded walk: the next ``WALK_FACTOR x (offset + limit)`` rows in the order (within
    ``WALK_MIN`` and ``WALK_MAX``; an index scan with no filter, so no estimate can change it) are
    checked one by one through the primary key; when that finds the whole page, as it does for
    filters that match many rows, it is the answer. Only when it does not is the ``candidates``
    CTE evaluated (a gated UNION branch, never started otherwise). Each part's cost is bounded by
    the rows it reads, not by the planner's luck.
    """
    with_sql, params, candidates_order = _candidates_sql(qs, order_by)
    candidates = f"SELECT candidates.id FROM candidates ORDER BY {candidates_order} LIMIT %s OFFSET %s"
    depth = offset + limit
    # The walk re-uses the search's WHERE on a row of media_media alone: not for filters with joins.
    joined = len([alias for alias in qs.query.alias_map if qs.query.alias_refcount.get(alias)]) > 1
    if not walk or joined or depth > WALK_MAX_DEPTH:
        return f"WITH {with_sql} {candidates}", [*params, limit, offset]
    window_qs = Media.objects.all() if key is None else after_cursor(Media.objects.all(), order_by, key)
    fields = _key_fields(order_by)
    size = min(WALK_MAX, max(WALK_MIN, WALK_FACTOR * depth))
    window_qs = window_qs.order_by(*ordering(order_by)).values(*dict.fromkeys(["pk", *fields]))[:size]
    window, window_params = window_qs.query.sql_with_params()
    columns, walk_order = _order_sql("w", order_by)
    # The search's conditions as Django writes them (on "media_media"), applied to each row of the
    # window read through the primary key: OFFSET 0 keeps that lookup a subquery of its own, so no
    # other index can serve it.
    where, where_params = qs.query.get_compiler(connection=connection).compile(qs.query.where)
    names = ", ".join(dict.fromkeys(["id", *columns]))
    walk = (
        f"walk AS MATERIALIZED (SELECT w.id FROM ({window}) AS w({names}) "
        "CROSS JOIN LATERAL (SELECT * FROM media_media AS walked WHERE walked.id = w.id OFFSET 0) "
        "AS media_media "
        f"WHERE {where} ORDER BY {walk_order} LIMIT %s OFFSET %s)"
    )
    sql = (
        f"WITH {walk}, {with_sql} "
        f"SELECT walk.id FROM walk WHERE (SELECT count(*) FROM walk) = %s "
        f"UNION ALL (SELECT page.id FROM ({candidates}) AS page WHERE (SELECT count(*) FROM walk) < %s)"
    )
    return sql, [*window_params, *where_params, limit, offset, *params, limit, limit, offset, limit]


def page_ids_sql(
    qs: QuerySet[Media],
    *,
    order_by: str | None,
    limit: int,
    offset: int,
    candidates_first: bool = False,
    key: list[Any] | None = None,
    walk: bool = True,
) -> tuple[str, list[Any]]:
    """SQL of the ids of rows ``offset`` to ``offset + limit`` of ``qs`` in order."""
    if candidates_first and connection.vendor == "postgresql" and not qs.query.is_empty():
        return _page_ids_sql(qs, order_by=order_by, limit=limit, offset=offset, key=key, walk=walk)
    sql, params = (
        qs.order_by(*ordering(order_by)).values("pk")[offset : offset + limit].query.sql_with_params()
    )
    return sql, list(params)


def page_queryset(
    qs: QuerySet[Media],
    *,
    order_by: str | None,
    limit: int,
    offset: int,
    candidates_first: bool = False,
    key: list[Any] | None = None,
    walk: bool = True,
) -> QuerySet[Media]:
    """The rows ``offset`` to ``offset + limit`` of ``qs`` in order, as one query.

    The page's ids are chosen first, in a subquery that reads no more than filtering and ordering
    need (often only indexes); only those rows are then read whole, with the response's joins.
    ``key`` is the cursor's, when ``qs`` has been cut after it.
    """
    order = ordering(order_by)
    if qs.query.is_empty():
        return qs.none()
    if candidates_first and connection.vendor == "postgresql":
        sql, params = page_ids_sql(
            qs, order_by=order_by, limit=limit, offset=offset, candidates_first=True, key=key, walk=walk
        )
        page_ids = RawSQL(sql, params)
    else:
        page_ids = qs.order_by(*order).values("pk")[offset : offset + limit]
    return media_queryset().filter(pk__in=page_ids).order_by(*order)


def count_sql(qs: QuerySet[Media], cap: int, *, candidates_first: bool = False) -> tuple[str, list[Any]]:
    """SQL counting up to ``cap`` matches of ``qs``."""
    if candidates_first and connection.vendor == "postgresql":
        with_sql, params, _ = _candidates_sql(qs, None)
        return f"SELECT count(*) FROM (WITH {with_sql} SELECT 1 FROM candidates LIMIT %s) AS capped", [
            *params,
            cap,
        ]
    sql, params = qs.order_by().values("pk")[:cap].query.sql_with_params()
    return f"SELECT count(*) FROM ({sql}) AS capped", list(params)


def count_matches(qs: QuerySet[Media], cap: int, *, candidates_first: bool = False) -> int:
    """How many matches ``qs`` has, counting no further than ``cap``."""
    if qs.query.is_empty():
        return 0
    sql, params = count_sql(qs, cap, candidates_first=candidates_first)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def search_page(
    qs: QuerySet[Media],
    *,
    order_by: str | None,
    limit: int,
    offset: int,
    cursor: str | None = None,
    digest: str = "",
    candidates_first: bool = False,
    walk: bool = True,
) -> Page:
    """Read one page of ``qs`` (one query, plus a capped COUNT unless the page shows the total).

    With ``cursor`` the page starts after the row it names, and ``offset`` (the number of matches
    before it, as the link said) only serves the total and the links.
    """
    key = None if cursor is None else decode_cursor(cursor, order_by, digest)
    rest = qs if key is None else after_cursor(qs, order_by, key)
    skip = 0 if cursor is not None else offset
    rows = media_rows(
        page_queryset(
            rest,
            order_by=order_by,
            limit=limit + 1,
            offset=skip,
            candidates_first=candidates_first,
            key=key,
            walk=walk,
        )
    )
    has_next = len(rows) > limit
    rows = rows[:limit]
    next_params = {}
    if has_next and rows and offset + limit >= settings.MEDIASTORE_SEARCH_CURSOR_FROM:
        next_params["cursor"] = encode_cursor(order_by, digest, rows[-1])
    if not has_next and (rows or offset == 0):
        return Page(rows, offset + len(rows), True, offset, limit, False)
    counting_cap = max(settings.MEDIASTORE_SEARCH_COUNT_CAP, skip + len(rows) + 1)
    counted = count_matches(rest, counting_cap + 1, candidates_first=candidates_first)
    before = offset - skip  # matches before the cursor (0 without one)
    total, exact = before + min(counted, counting_cap), counted <= counting_cap
    return Page(rows, total, exact, offset, limit, has_next, next_params)
