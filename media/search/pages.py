"""Reading one page of a search: the order, the page query, the capped count, keyset cursors.

Two shapes of page query on PostgreSQL (``Plan`` in ``media.search.selector`` picks one):

- **ordered walk** (filters no index serves, or none): the page's ids come from walking the index of
  the order (the primary key by default) and filtering as it goes, which stops after one page.
- **candidates first** (a filter an index serves: tags, pid, identifiers, metadata containment or an
  indexed metadata path): every match is collected first in a ``MATERIALIZED`` CTE, and only then
  sorted and cut to the page. The planner cannot then choose to walk the primary key hoping to meet
  the matches early (a bet on its row estimate and on the matches being spread evenly, which
  ``ANALYZE`` samples decide; for a pid prefix the matches are one contiguous run of ids, so that
  walk read 700,000 rows for a page of 100). Inside the CTE the choice is only between the indexes
  and a full scan, and its cost grows with the number of matches, not with the planner's luck.

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


def encode_cursor(order_by: str | None, digest: str, row: Media) -> str:
    values = []
    for name in _key_fields(order_by):
        value = getattr(row, name)
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


def _candidates_sql(qs: QuerySet[Media], order_by: str | None) -> tuple[str, list[Any], str]:
    """``WITH candidates AS MATERIALIZED (...)`` of every match with its order key, and the ORDER BY."""
    fields = _key_fields(order_by)
    inner, params = qs.order_by().values(*dict.fromkeys(["pk", *fields])).query.sql_with_params()
    direction = "DESC" if order_by and order_by.startswith("-") else "ASC"
    columns = ["id" if name == "pk" else name for name in fields]
    order = ", ".join(
        f'candidates.pid COLLATE "C" {direction}' if name == "pid" else f"candidates.{name} {direction}"
        for name in columns
    )
    names = ", ".join(dict.fromkeys(["id", *columns]))
    return f"WITH candidates({names}) AS MATERIALIZED ({inner})", list(params), order


def page_queryset(
    qs: QuerySet[Media], *, order_by: str | None, limit: int, offset: int, candidates_first: bool = False
) -> QuerySet[Media]:
    """The rows ``offset`` to ``offset + limit`` of ``qs`` in order, as one query.

    The page's ids are chosen first, in a subquery that reads no more than filtering and ordering
    need (often only indexes); only those rows are then read whole, with the response's joins.
    """
    order = ordering(order_by)
    if candidates_first and connection.vendor == "postgresql" and not qs.query.is_empty():
        with_sql, params, order_sql = _candidates_sql(qs, order_by)
        sql = f"{with_sql} SELECT candidates.id FROM candidates ORDER BY {order_sql} LIMIT %s OFFSET %s"
        page_ids = RawSQL(sql, (*params, limit, offset))
    else:
        page_ids = qs.order_by(*order).values("pk")[offset : offset + limit]
    return media_queryset().filter(pk__in=page_ids).order_by(*order)


def count_sql(qs: QuerySet[Media], cap: int, *, candidates_first: bool = False) -> tuple[str, list[Any]]:
    """SQL counting up to ``cap`` matches of ``qs``."""
    if candidates_first and connection.vendor == "postgresql":
        with_sql, params, _ = _candidates_sql(qs, None)
        return f"SELECT count(*) FROM ({with_sql} SELECT 1 FROM candidates LIMIT %s) AS capped", [
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
) -> Page:
    """Read one page of ``qs`` (one query, plus a capped COUNT unless the page shows the total).

    With ``cursor`` the page starts after the row it names, and ``offset`` (the number of matches
    before it, as the link said) only serves the total and the links.
    """
    rest = qs if cursor is None else after_cursor(qs, order_by, decode_cursor(cursor, order_by, digest))
    skip = 0 if cursor is not None else offset
    rows = list(
        page_queryset(
            rest, order_by=order_by, limit=limit + 1, offset=skip, candidates_first=candidates_first
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
