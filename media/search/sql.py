"""Search filters rendered as SQL, one boolean condition per filter, per database.

Every filter gives the same answer on SQLite and PostgreSQL:

- Wildcards: see ``media.search.wildcards``.
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from identifiers.rules import NAME_RE
from media.schemas import MetadataCondition
from media.search.indexes import identifier_value_sql, value_sql
from media.search.wildcards import Sql, Wildcard, text_matches
from mediastore.errors import RuleViolation

#: SQL function of migration 0003 (PostgreSQL): all identifier values in one text, trigram-indexed.
IDENTIFIER_VALUES_FUNCTION = "media_identifier_values"

# --- a boolean SQL condition over columns of the media table ---------------------------------

#: How the conditions name the media table: the search's statements read it under this name.
TABLE = '"media_media"'


@dataclass(frozen=True)
class Where:
    """A boolean condition over some columns of the media table, written per database by ``render``.

    ``render(vendor, *column_sql)`` returns ``(sql, params)``; ``sql`` gives it with each column
    written as ``"media_media"."<column>"``.
    """

    render: Callable[..., Sql]
    columns: tuple[str, ...]

    def sql(self, vendor: str) -> Sql:
        sql, params = self.render(vendor, *(f'{TABLE}."{column}"' for column in self.columns))
        return f"({sql})", params


# --- identifiers ----------------------------------------------------------------------------


def identifier_type_matches(type_name: str, pattern: str, indexed: bool = False) -> Where:
    """The identifier of type ``type_name`` is a string matching ``pattern``; ``indexed``: the type
    has its own index (``manage.py search_index add-identifier``)."""
    if not NAME_RE.fullmatch(type_name):
        raise RuleViolation(f"search filter 'identifiers': {type_name!r} is not an identifier type name")
    wildcard = Wildcard.parse(pattern)

    def render(vendor: str, ids: str) -> Sql:
        if vendor == "postgresql":
            if wildcard.is_literal:  # containment: served by the GIN index on identifiers
                return f"{ids} @> %s::jsonb", [json.dumps({type_name: wildcard.literal})]
            if indexed and wildcard.prefix:  # the prefix is a range of the type's own index
                value = identifier_value_sql(type_name, ids)
                return (
                    f"jsonb_typeof({ids} -> %s::text) = 'string' "
                    f"AND {value} COLLATE \"C\" LIKE %s ESCAPE '\\'",
                    [type_name, wildcard.like],
                )
            # The trigram-indexed text of all values holds every matching value, so it pre-filters.
            return (
                f"jsonb_typeof({ids} -> %s::text) = 'string' AND ({ids} ->> %s::text) LIKE %s ESCAPE '\\' "
                f"AND {IDENTIFIER_VALUES_FUNCTION}({ids}) LIKE %s ESCAPE '\\'",
                [type_name, type_name, wildcard.like, f"%{wildcard.like}%"],
            )
        path = f'$."{type_name}"'
        match, params = text_matches(f"json_extract({ids}, %s)", vendor, wildcard)
        return f"json_type({ids}, %s) = 'text' AND {match}", [path, path, *params]

    return Where(render, ("identifiers",))


def any_identifier_matches(pattern: str) -> Where:
    """The pid or any identifier value matches ``pattern``."""
    wildcard = Wildcard.parse(pattern)

    def render(vendor: str, pid: str, ids: str) -> Sql:
        pid_sql, pid_params = text_matches(pid, vendor, wildcard)
        if vendor == "postgresql":
            # The trigram-indexed text of all values holds every matching value: an indexable
            # pre-filter; the EXISTS over jsonb_each then decides exactly.
            value_sql, value_params = text_matches("(je.value #>> '{}')", vendor, wildcard)
            return (
                f"{pid_sql} OR ({IDENTIFIER_VALUES_FUNCTION}({ids}) LIKE %s ESCAPE '\\' AND CASE "
                f"WHEN jsonb_typeof({ids}) = 'object' THEN EXISTS (SELECT 1 FROM jsonb_each({ids}) AS je "
                f"WHERE jsonb_typeof(je.value) = 'string' AND {value_sql}) ELSE false END)",
                [*pid_params, f"%{wildcard.like}%", *value_params],
            )
        value_sql, value_params = text_matches("je.value", vendor, wildcard)
        return (
            f"{pid_sql} OR (json_type({ids}) = 'object' AND EXISTS (SELECT 1 FROM json_each({ids}) AS je "
            f"WHERE je.type = 'text' AND {value_sql}))",
            [*pid_params, *value_params],
        )

    return Where(render, ("pid", "identifiers"))


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
            match, params = text_matches(f"({x} #>> '{{}}')", vendor, wildcard)
            return f"jsonb_typeof({x}) = 'string' AND {match}", [*xp, *xp, *params]
        path = _sqlite_path(keys)
        match, params = text_matches(f"json_extract({col}, %s)", vendor, wildcard)
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


def _indexed_compare(keys: Keys, op: str, value: Any, kind: str) -> Leaf:
    """A range on a path with its own index, written as the index expression is (media.search.indexes)."""
    sql_op = _SQL_OPS[op]
    path = tuple(str(key) for key in keys)

    def render(vendor: str, col: str) -> Sql:
        expression = value_sql(path, kind, vendor, col)
        if vendor == "postgresql":
            if kind == "number":
                return f"jsonb_typeof({expression}) = 'number' AND {expression} {sql_op} %s::jsonb", [
                    json.dumps(value)
                ]
            raw = value_sql(path, "number", vendor, col)
            return f"jsonb_typeof({raw}) = 'string' AND {expression} COLLATE \"C\" {sql_op} %s", [value]
        return f"json_type({col}, %s) IN {_SQLITE_TYPES[_kind(value)]} AND {expression} {sql_op} %s", [
            _sqlite_path(keys),
            value,
        ]

    return render


def metadata_condition(condition: MetadataCondition, indexed: str | None = None) -> Where:
    """The condition as SQL; ``indexed`` names the kind of path index that serves it, if any."""
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
    elif indexed is not None:
        generic = _indexed_compare(keys, op, value, indexed)
    else:
        generic = _compare(keys, op, value)
        if op == "eq" and plain_keys:
            containment = _containment(_nest(keys, value))

    def render(vendor: str, col: str) -> Sql:
        if vendor == "postgresql" and containment is not None:
            return containment(vendor, col)
        return generic(vendor, col)

    return Where(render, ("metadata",))
