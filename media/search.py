"""Search of media: filters (``MediaSearch``) become one QuerySet, read one page at a time.

Every filter gives the same answer on SQLite and PostgreSQL:

- Wildcards (``*`` any run, ``?`` one character, ``\\`` quotes the next character) become
  ``LIKE ... ESCAPE '\\'`` on PostgreSQL and ``GLOB`` on SQLite (whose ``LIKE`` ignores ASCII case).
  Both are case-sensitive, match the whole value and count ``?`` as one character, not one byte.
  A pattern without wildcards is plain equality.
- Metadata values compare only with values of the same JSON type: ``jsonb_typeof`` guards and jsonb
  operators on PostgreSQL (numbers compare as jsonb numerics, strings as text ``COLLATE "C"``),
  ``json_type``/``json_extract`` on SQLite (native numbers, strings in BINARY order). Code point
  order and byte order agree for UTF-8, so strings sort the same on both.
- PostgreSQL answers ``eq``/``in``/``contains`` on plain key paths with ``@>`` containment, which the
  GIN index of migration 0003 serves and which means exactly the same as the generic form.

User input only ever travels as query parameters, never inside the SQL text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Exists, F, Func, OuterRef, QuerySet
from django.db.models.functions import Collate
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja.responses import NinjaJSONEncoder
from taggit.models import Tag

from identifiers.rules import NAME_RE
from media.models import Media, TaggedMedia
from media.schemas import (
    MAX_OFFSET,
    MAX_PAGE,
    METADATA_OPS,
    MediaListQuery,
    MediaSearch,
    MetadataCondition,
    media_out_dict,
)
from media.selectors import media_queryset
from mediastore.errors import RuleViolation
from mediastore.parser import loads as strict_json

#: Counting stops here: ``X-Total-Count`` is exact below it and a lower bound at it (see ``Page``).
#: SQL function of migration 0003 (PostgreSQL): all identifier values in one text, trigram-indexed.
IDENTIFIER_VALUES_FUNCTION = "media_identifier_values"

Sql = tuple[str, list[Any]]


# --- wildcards ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wildcard:
    """A parsed wildcard pattern: a sequence of (is_wildcard, character)."""

    tokens: tuple[tuple[bool, str], ...]

    @classmethod
    def parse(cls, pattern: str) -> Wildcard:
        tokens, i = [], 0
        while i < len(pattern):
            char = pattern[i]
            if char == "\\" and i + 1 < len(pattern):
                tokens.append((False, pattern[i + 1]))
                i += 2
                continue
            tokens.append((char in "*?", char))
            i += 1
        return cls(tuple(tokens))

    @property
    def is_literal(self) -> bool:
        return not any(wild for wild, _ in self.tokens)

    @property
    def literal(self) -> str:
        return "".join(char for _, char in self.tokens)

    @property
    def like(self) -> str:
        """For ``LIKE ... ESCAPE '\\'``: ``%``, ``_`` and ``\\`` of the text are escaped."""
        return "".join(
            ("%" if char == "*" else "_") if wild else ("\\" + char if char in "%_\\" else char)
            for wild, char in self.tokens
        )

    @property
    def glob(self) -> str:
        """For SQLite ``GLOB``, which has no escape character: literal ``*?[`` go in brackets."""
        return "".join(
            char if wild else (f"[{char}]" if char in "*?[" else char) for wild, char in self.tokens
        )


def _text_matches(column_sql: str, vendor: str, wildcard: Wildcard) -> Sql:
    """SQL for "the text in ``column_sql`` matches ``wildcard``"."""
    if wildcard.is_literal:
        return f"{column_sql} = %s", [wildcard.literal]
    if vendor == "postgresql":
        return f"{column_sql} LIKE %s ESCAPE '\\'", [wildcard.like]
    return f"{column_sql} GLOB %s", [wildcard.glob]


# --- a boolean SQL condition over columns, as a queryset filter -----------------------------


class Where(Func):
    """A boolean condition over some columns of Media, written per database by ``render``.

    ``render(vendor, *column_sql)`` returns ``(sql, params)``. Columns are compiled by Django, so
    table aliases stay right wherever the queryset goes.
    """

    output_field = BooleanField()

    def __init__(self, render: Callable[..., Sql], *columns: str) -> None:
        super().__init__(*(F(column) for column in columns))
        self.render = render

    def as_sql(self, compiler, connection, **extra_context) -> Sql:
        columns = []
        for expression in self.get_source_expressions():
            sql, params = compiler.compile(expression)
            assert not params, "columns carry no parameters"
            columns.append(sql)
        sql, params = self.render(connection.vendor, *columns)
        return f"({sql})", params


# --- identifiers ----------------------------------------------------------------------------


def _identifier_type_matches(type_name: str, pattern: str) -> Where:
    """The identifier of type ``type_name`` is a string matching ``pattern``."""
    if not NAME_RE.fullmatch(type_name):
        raise RuleViolation(f"search filter 'identifiers': {type_name!r} is not an identifier type name")
    wildcard = Wildcard.parse(pattern)

    def render(vendor: str, ids: str) -> Sql:
        if vendor == "postgresql":
            if wildcard.is_literal:  # containment: served by the GIN index on identifiers
                return f"{ids} @> %s::jsonb", [json.dumps({type_name: wildcard.literal})]
            # The trigram-indexed text of all values holds every matching value, so it pre-filters.
            return (
                f"jsonb_typeof({ids} -> %s::text) = 'string' AND ({ids} ->> %s::text) LIKE %s ESCAPE '\\' "
                f"AND {IDENTIFIER_VALUES_FUNCTION}({ids}) LIKE %s ESCAPE '\\'",
                [type_name, type_name, wildcard.like, f"%{wildcard.like}%"],
            )
        path = f'$."{type_name}"'
        match, params = _text_matches(f"json_extract({ids}, %s)", vendor, wildcard)
        return f"json_type({ids}, %s) = 'text' AND {match}", [path, path, *params]

    return Where(render, "identifiers")


def _any_identifier_matches(pattern: str) -> Where:
    """The pid or any identifier value matches ``pattern``."""
    wildcard = Wildcard.parse(pattern)

    def render(vendor: str, pid: str, ids: str) -> Sql:
        pid_sql, pid_params = _text_matches(pid, vendor, wildcard)
        if vendor == "postgresql":
            # The trigram-indexed text of all values holds every matching value: an indexable
            # pre-filter; the EXISTS over jsonb_each then decides exactly.
            value_sql, value_params = _text_matches("(je.value #>> '{}')", vendor, wildcard)
            return (
                f"{pid_sql} OR ({IDENTIFIER_VALUES_FUNCTION}({ids}) LIKE %s ESCAPE '\\' AND CASE "
                f"WHEN jsonb_typeof({ids}) = 'object' THEN EXISTS (SELECT 1 FROM jsonb_each({ids}) AS je "
                f"WHERE jsonb_typeof(je.value) = 'string' AND {value_sql}) ELSE false END)",
                [*pid_params, f"%{wildcard.like}%", *value_params],
            )
        value_sql, value_params = _text_matches("je.value", vendor, wildcard)
        return (
            f"{pid_sql} OR (json_type({ids}) = 'object' AND EXISTS (SELECT 1 FROM json_each({ids}) AS je "
            f"WHERE je.type = 'text' AND {value_sql}))",
            [*pid_params, *value_params],
        )

    return Where(render, "pid", "identifiers")


# --- metadata -------------------------------------------------------------------------------

Keys = list[str | int]
Leaf = Callable[[str, str], Sql]  # (vendor, metadata column sql) -> (sql, params)

_SQL_OPS = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_SQLITE_TYPES = {"number": "('integer', 'real')", "string": "('text')"}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")


def _pg_path(column: str, keys: Keys) -> Sql:
    """The jsonb at ``keys`` or NULL: string keys look into objects only, integers into lists only.

    ``#>`` alone would also index a list with a key like "0" or " 1" (and ``->`` even treats a
    scalar as a list of one), so steps that could be read either way check their container's type.
    """
    path = [str(key) for key in keys]
    guards, params = [], []
    for depth, key in enumerate(keys):
        if isinstance(key, int) or _INTEGER_TEXT.fullmatch(key):
            guards.append(f"jsonb_typeof({column} #> %s::text[]) = %s")
            params += [path[:depth], "array" if isinstance(key, int) else "object"]
    if not guards:
        return f"({column} #> %s::text[])", [path]
    return f"(CASE WHEN {' AND '.join(guards)} THEN {column} #> %s::text[] END)", [*params, path]


def _sqlite_path(keys: Keys) -> str:
    return "$" + "".join(f'."{key}"' if isinstance(key, str) else f"[{key}]" for key in keys)


def _compare(keys: Keys, op: str, value: Any) -> Leaf:
    """The value at ``keys`` has the JSON type of ``value`` and compares with it by ``op``."""
    kind, sql_op = _kind(value), _SQL_OPS[op]

    def render(vendor: str, col: str) -> Sql:
        if vendor == "postgresql":
            x, xp = _pg_path(col, keys)
            if kind == "null":
                return f"jsonb_typeof({x}) = 'null'", xp
            if kind == "boolean":  # ne true == eq false: only booleans are compared
                return f"{x} = %s::jsonb", [*xp, json.dumps(value if op == "eq" else not value)]
            if kind == "number":
                return f"jsonb_typeof({x}) = 'number' AND {x} {sql_op} %s::jsonb", [
                    *xp,
                    *xp,
                    json.dumps(value),
                ]
            return (
                f"jsonb_typeof({x}) = 'string' AND ({x} #>> '{{}}') COLLATE \"C\" {sql_op} %s",
                [*xp, *xp, value],
            )
        path = _sqlite_path(keys)
        if kind == "null":
            return f"json_type({col}, %s) = 'null'", [path]
        if kind == "boolean":
            return f"json_type({col}, %s) = %s", [path, "true" if value == (op == "eq") else "false"]
        return (
            f"json_type({col}, %s) IN {_SQLITE_TYPES[kind]} AND json_extract({col}, %s) {sql_op} %s",
            [path, path, value],
        )

    return render


def _exists(keys: Keys, present: bool) -> Leaf:
    def render(vendor: str, col: str) -> Sql:
        test = "IS NOT NULL" if present else "IS NULL"
        if vendor == "postgresql":
            x, xp = _pg_path(col, keys)
            return f"{x} {test}", xp
        return f"json_type({col}, %s) {test}", [_sqlite_path(keys)]

    return render


def _wildcard(keys: Keys, pattern: str) -> Leaf:
    wildcard = Wildcard.parse(pattern)

    def render(vendor: str, col: str) -> Sql:
        if vendor == "postgresql":
            x, xp = _pg_path(col, keys)
            match, params = _text_matches(f"({x} #>> '{{}}')", vendor, wildcard)
            return f"jsonb_typeof({x}) = 'string' AND {match}", [*xp, *xp, *params]
        path = _sqlite_path(keys)
        match, params = _text_matches(f"json_extract({col}, %s)", vendor, wildcard)
        return f"json_type({col}, %s) = 'text' AND {match}", [path, path, *params]

    return render


def _is(keys: Keys, json_type: str) -> Leaf:
    """The value at ``keys`` is an ``array`` or an ``object``."""

    def render(vendor: str, col: str) -> Sql:
        if vendor == "postgresql":
            x, xp = _pg_path(col, keys)
            return f"jsonb_typeof({x}) = %s", [*xp, json_type]
        return f"json_type({col}, %s) = %s", [_sqlite_path(keys), json_type]

    return render


def _member(keys: Keys, value: Any) -> Leaf:
    """The value at ``keys`` is a list with an item equal to the scalar ``value`` (same type)."""
    kind = _kind(value)

    def render(vendor: str, col: str) -> Sql:
        if vendor == "postgresql":  # for a scalar, [..] @> [value] is exactly list membership
            x, xp = _pg_path(col, keys)
            return f"jsonb_typeof({x}) = 'array' AND {x} @> %s::jsonb", [*xp, *xp, json.dumps([value])]
        path = _sqlite_path(keys)
        if kind == "null":
            item, params = "je.type = 'null'", []
        elif kind == "boolean":
            item, params = "je.type = %s", ["true" if value else "false"]
        else:
            item, params = f"je.type IN {_SQLITE_TYPES[kind]} AND je.value = %s", [value]
        items = f"SELECT 1 FROM json_each({col}, %s) AS je WHERE {item}"
        return f"json_type({col}, %s) = 'array' AND EXISTS ({items})", [path, path, *params]

    return render


def _contains(keys: Keys, value: Any) -> list[Leaf]:
    """``contains``: list membership of a scalar, of every item of a list, or a sub-object."""
    if isinstance(value, dict):
        if not value:
            return [_is(keys, "object")]
        leaves: list[Leaf] = []
        for key, item in value.items():
            if isinstance(item, dict | list):
                leaves += _contains([*keys, key], item)
            else:
                leaves.append(_compare([*keys, key], "eq", item))
        return leaves
    if isinstance(value, list):
        return [_member(keys, item) for item in value] or [_is(keys, "array")]
    return [_member(keys, value)]


def _nest(keys: Keys, value: Any) -> Any:
    for key in reversed(keys):
        value = {key: value}
    return value


def _containment(document: Any) -> Leaf:
    def render(vendor: str, col: str) -> Sql:
        return f"{col} @> %s::jsonb", [json.dumps(document)]

    return render


def _all(leaves: list[Leaf]) -> Leaf:
    def render(vendor: str, col: str) -> Sql:
        parts = [leaf(vendor, col) for leaf in leaves]
        return " AND ".join(f"({sql})" for sql, _ in parts), [p for _, params in parts for p in params]

    return render


def _any(leaves: list[Leaf]) -> Leaf:
    def render(vendor: str, col: str) -> Sql:
        if not leaves:
            return "1 = 0", []
        parts = [leaf(vendor, col) for leaf in leaves]
        return " OR ".join(f"({sql})" for sql, _ in parts), [p for _, params in parts for p in params]

    return render


def _metadata_condition(condition: MetadataCondition) -> Where:
    keys, op, value = condition.path_keys, condition.op, condition.value
    generic: Leaf
    containment: Leaf | None = None
    plain_keys = all(isinstance(key, str) for key in keys)
    if op == "exists":
        generic = _exists(keys, value)
    elif op == "wildcard":
        generic = _wildcard(keys, value)
    elif op == "in":
        generic = _any([_compare(keys, "eq", item) for item in value])
        if plain_keys:
            containment = _any([_containment(_nest(keys, item)) for item in value])
    elif op == "contains":
        generic = _all(_contains(keys, value))
        if plain_keys:
            containment = _containment(_nest(keys, value if isinstance(value, dict | list) else [value]))
    else:
        generic = _compare(keys, op, value)
        if op == "eq" and plain_keys:
            containment = _containment(_nest(keys, value))

    def render(vendor: str, col: str) -> Sql:
        if vendor == "postgresql" and containment is not None:
            return containment(vendor, col)
        return generic(vendor, col)

    return Where(render, "metadata")


# --- the queryset ---------------------------------------------------------------------------


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
            qs = qs.filter(Where(lambda vendor, pid: _text_matches(pid, vendor, wildcard), "pid"))
    pid_types = [filters.pid_type] if isinstance(filters.pid_type, str) else filters.pid_type
    if pid_types:
        qs = qs.filter(pid_type_id__in=pid_types)
    for type_name, pattern in sorted(filters.identifiers.items()):
        qs = qs.filter(_identifier_type_matches(type_name, pattern))
    if filters.identifier is not None:
        qs = qs.filter(_any_identifier_matches(filters.identifier))
    for condition in filters.metadata:
        qs = qs.filter(_metadata_condition(condition))
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


# --- pages ----------------------------------------------------------------------------------


@dataclass
class Page:
    """One page of matches.

    ``total`` is exact when ``total_exact``; otherwise counting stopped at
    ``MEDIASTORE_SEARCH_COUNT_CAP`` (or just past this page, when that is further) and ``total`` is a
    lower bound. A page that is the first and the
    last needs no count at all.
    """

    items: list[Media]
    total: int
    total_exact: bool
    offset: int
    limit: int
    has_next: bool


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


def page_url(request: HttpRequest, offset: int, limit: int) -> str:
    """This request's URL with another ``offset`` (and the same ``limit``)."""
    query = request.GET.copy()
    query["offset"] = str(offset)
    query["limit"] = str(limit)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def json_response(body: Any) -> HttpResponse:
    """A JSON answer rendered as ninja renders its own (same encoder, same content type)."""
    text = json.dumps(body, cls=NinjaJSONEncoder)
    return HttpResponse(text, content_type="application/json; charset=utf-8")


def set_page_headers(response: HttpResponse, request: HttpRequest, page: Page) -> None:
    """``X-Total-Count`` (and ``X-Total-Count-Exact``), and ``Link: <url>; rel="next"`` when more."""
    response["X-Total-Count"] = str(page.total)
    response["X-Total-Count-Exact"] = "true" if page.total_exact else "false"
    if page.has_next:
        response["Link"] = f'<{page_url(request, page.offset + page.limit, page.limit)}>; rel="next"'


# --- GET /api/media -------------------------------------------------------------------------

_METADATA_PARAM = re.compile(rf"(?P<path>.+?):(?P<op>{'|'.join(METADATA_OPS)})(?::(?P<value>.*))?", re.DOTALL)


def _metadata_param(text: str) -> dict[str, Any]:
    """``a.b:gte:5`` -> a condition; the value is JSON when it parses, else text (always text for
    ``wildcard``); no value: ``exists`` means true, other ops compare with null."""
    match = _METADATA_PARAM.fullmatch(text)
    if match is None:
        ops = ", ".join(METADATA_OPS)
        raise RuleViolation(f"query parameter 'metadata': {text!r} is not 'path:op[:value]' (op: {ops})")
    value: Any = match["value"]
    if value is not None and match["op"] != "wildcard":
        try:
            value = strict_json(value)  # 1e400, duplicate keys, deep nesting: 422
        except ValueError:
            pass
    return {"path": match["path"], "op": match["op"], "value": value}


def _identifiers_param(items: list[str]) -> dict[str, str]:
    identifiers = {}
    for item in items:
        type_name, sep, pattern = item.partition("=")
        if not sep:
            raise RuleViolation(f"query parameter 'identifiers': {item!r} is not 'type=wildcard'")
        identifiers[type_name] = pattern
    return identifiers


def filters_from_query(query: MediaListQuery, given: Iterable[str]) -> MediaSearch:
    """The ``MediaSearch`` of ``GET /api/media``'s parameters; unknown parameter names are a 422."""
    unknown = sorted(set(given) - set(MediaListQuery.model_fields))
    if unknown:
        raise RuleViolation(
            f"unknown query parameter '{unknown[0]}'; known: {', '.join(MediaListQuery.model_fields)}"
        )
    fields = query.model_dump(exclude={"metadata", "identifiers"}, exclude_defaults=True)
    return MediaSearch.model_validate(
        {
            **fields,
            "metadata": [_metadata_param(text) for text in query.metadata],
            "identifiers": _identifiers_param(query.identifiers),
        }
    )


def media_list(request: HttpRequest, query: MediaListQuery) -> dict[str, Any]:
    """``GET /api/media``: one page as ``{count, count_exact, next, previous, items}``; no filter: all."""
    filters = filters_from_query(query, request.GET.keys())
    page = search_page(
        media_search_queryset(filters), order_by=filters.order_by, limit=filters.limit, offset=filters.offset
    )
    previous = None
    if page.offset > 0:
        previous = page_url(request, max(page.offset - page.limit, 0), page.limit)
    return {
        "count": page.total,
        "count_exact": page.total_exact,
        "next": page_url(request, page.offset + page.limit, page.limit) if page.has_next else None,
        "previous": previous,
        "items": page.items,
    }


# --- GET /api/media/dump --------------------------------------------------------------------

DUMP_CHUNK = 500


class JsonArrayStream(StreamingHttpResponse):
    """A JSON array sent in pieces. Servers iterate it; reading ``content`` or ``text`` (as Django's
    test client does for ``.json()``) drains the stream once and keeps the bytes."""

    def __init__(self, chunks: Iterator[str]) -> None:
        super().__init__(chunks, content_type="application/json")

    @property
    def content(self) -> bytes:
        if not hasattr(self, "_drained"):
            self._drained = b"".join(self.streaming_content)
        return self._drained

    @property
    def text(self) -> str:
        return self.content.decode(self.charset)


def media_dump_chunks(*, limit: int | None = None, offset: int = 0) -> Iterator[str]:
    """Every media by pk (or ``limit`` of them after ``offset``) as JSON array text, in pieces.

    Rows come from a server-side cursor ``DUMP_CHUNK`` at a time and each is serialised with
    ``media_out_dict`` (the ``MediaOut`` shape) as the other endpoints do, so memory stays flat
    however large the table.
    """
    # Bounded above too: a huge slice overflowed SQLite's integers mid-stream (found by schemathesis).
    if limit is not None and not 0 <= limit <= MAX_OFFSET:
        raise RuleViolation(f"query parameter 'limit' must be from 0 to {MAX_OFFSET}")
    if not 0 <= offset <= MAX_OFFSET:
        raise RuleViolation(f"query parameter 'offset' must be from 0 to {MAX_OFFSET}")
    qs = media_queryset().order_by("pk")
    qs = qs[offset : offset + limit] if limit is not None else qs[offset:]

    def chunks() -> Iterator[str]:
        yield "["
        batch: list[str] = []
        first = True
        for media in qs.iterator(chunk_size=DUMP_CHUNK):
            batch.append(json.dumps(media_out_dict(media), cls=NinjaJSONEncoder))
            if len(batch) == DUMP_CHUNK:
                yield ("" if first else ",") + ",".join(batch)
                first, batch = False, []
        if batch:
            yield ("" if first else ",") + ",".join(batch)
        yield "]"

    return chunks()
