"""Metadata paths with their own index (``manage.py search_index``), and the SQL that uses them.

An index on ``metadata #> '{sample,depth}'`` (``number``: jsonb order, which compares numbers as
numbers) or on its text in byte order (``text``) serves range conditions (``lt``, ``lte``, ``gt``,
``gte``) on that path, but only when the query writes exactly the same expression, with the path as
a literal rather than a parameter. Paths that can be indexed are therefore restricted to keys of
letters, digits, ``_`` and ``-`` that do not look like list indexes, so they are safe to write
into SQL text. Equality, ``in`` and ``contains`` need no such index: the GIN index of migration
0003 serves them.

An identifier type can have one too (``manage.py search_index add-identifier doi``, PostgreSQL
only): a B-tree on ``(identifiers ->> 'doi') COLLATE "C"``, which answers a wildcard with a literal
prefix (``10.5555/ifcb.3*``) as a range, where the trigram index of all identifier values can
only use whole words of it (pg_trgm splits at punctuation). Type names are checked by
``identifiers.rules.NAME_RE`` (no quotes), so they too are safe to write into SQL text.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from django.db import connection

from identifiers.rules import NAME_RE
from media.models import SearchIndex
from media.schemas import MetadataCondition

KINDS = ("number", "text")
#: ``SearchIndex.kind`` of an identifier type's index (its ``path`` is the type name).
IDENTIFIER = "identifier"
#: First key under which ``indexed_paths`` lists identifier types: no metadata path can start with it.
IDENTIFIER_KEY = "#identifiers"
RANGE_OPS = ("lt", "lte", "gt", "gte")
_KEY = re.compile(r"[A-Za-z_-][A-Za-z0-9_-]*")

#: {(key, ...): {"number", "text"}}
IndexedPaths = dict[tuple[str, ...], set[str]]


def parse_path(path: str) -> tuple[str, ...]:
    """The keys of a dotted path that can be indexed; ValueError otherwise."""
    keys = tuple(path.split("."))
    if not all(_KEY.fullmatch(key) for key in keys) or len(keys) > 32:
        raise ValueError(
            f"{path!r}: an indexed path is keys of letters, digits, '_' and '-' joined by '.', "
            "none starting with a digit"
        )
    return keys


def index_name(keys: tuple[str, ...], kind: str) -> str:
    digest = hashlib.sha256(".".join(keys).encode()).hexdigest()[:12]
    return f"media_md_{kind}_{digest}"


def value_sql(keys: tuple[str, ...], kind: str, vendor: str, column: str = "metadata") -> str:
    """The expression the index holds and the query compares (keys are checked by ``parse_path``)."""
    if vendor == "postgresql":
        path = "'{" + ",".join(keys) + "}'::text[]"
        if kind == "number":
            return f"({column} #> {path})"
        return f"(({column} #> {path}) #>> '{{}}'::text[])"
    return "json_extract(" + column + ", '$" + "".join(f'."{key}"' for key in keys) + "')"


def index_ddl(keys: tuple[str, ...], kind: str, vendor: str) -> str:
    name = index_name(keys, kind)
    expression = value_sql(keys, kind, vendor)
    if vendor == "postgresql":
        collate = ' COLLATE "C"' if kind == "text" else ""
        return f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON media_media (({expression}){collate})"
    return f"CREATE INDEX IF NOT EXISTS {name} ON media_media ({expression})"


def indexed_paths() -> IndexedPaths:
    """Every recorded index, by path (one small query); identifier types under
    ``(IDENTIFIER_KEY, type)`` with the kind ``IDENTIFIER``."""
    paths: IndexedPaths = {}
    for path, kind in SearchIndex.objects.values_list("path", "kind"):
        key = (IDENTIFIER_KEY, path) if kind == IDENTIFIER else tuple(path.split("."))
        paths.setdefault(key, set()).add(kind)
    return paths


def indexes_for(filters) -> IndexedPaths:
    """``indexed_paths`` for a search with ``filters`` (a ``MediaSearch``), without its query when
    no recorded index can serve it: no metadata conditions, and no identifier conditions on
    PostgreSQL (identifier types have indexes there only)."""
    if filters.metadata or (filters.identifiers and connection.vendor == "postgresql"):
        return indexed_paths()
    return {}


def identifier_indexed(type_name: str, paths: IndexedPaths) -> bool:
    """Whether the identifier type ``type_name`` has its own index."""
    return IDENTIFIER in paths.get((IDENTIFIER_KEY, type_name), ())


def check_identifier_type(type_name: str) -> str:
    """``type_name`` if it is a valid identifier type name (safe in SQL text); ValueError otherwise."""
    if not NAME_RE.fullmatch(type_name):
        raise ValueError(f"{type_name!r} is not an identifier type name")
    return type_name


def identifier_value_sql(type_name: str, column: str = "identifiers") -> str:
    """The expression an identifier type's index holds and the query compares (PostgreSQL)."""
    return f"({column} ->> '{check_identifier_type(type_name)}')"


def identifier_index_name(type_name: str) -> str:
    digest = hashlib.sha256(type_name.encode()).hexdigest()[:12]
    return f"media_id_{digest}"


def identifier_index_ddl(type_name: str) -> str:
    """The index of an identifier type's values in byte order (PostgreSQL)."""
    name = identifier_index_name(type_name)
    return (
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON media_media "
        f'({identifier_value_sql(type_name)} COLLATE "C")'
    )


def _kind_of(value: Any) -> str | None:
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return None


def index_for(condition: MetadataCondition, paths: IndexedPaths) -> str | None:
    """The kind of recorded index that serves ``condition`` (a range on an indexed path), or None."""
    if condition.op not in RANGE_OPS or not paths:
        return None
    keys = tuple(condition.path_keys)
    kind = _kind_of(condition.value)
    return kind if kind in paths.get(keys, ()) else None  # type: ignore[operator]


def media_rows_estimate() -> int:
    """About how many media there are, without counting: the planner's estimate on PostgreSQL
    (``pg_class.reltuples``, kept by ANALYZE and autovacuum), the largest id on SQLite."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'media_media'::regclass")
        else:
            cursor.execute("SELECT coalesce(max(id), 0) FROM media_media")
        row = cursor.fetchone()
    return max(int(row[0]), 0) if row else 0
