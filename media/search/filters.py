"""The filters of a search as SQL conditions on the media table, written out directly.

The ORM built and compiled a search's QuerySet anew on every call, and that cost more than
running it: about 4 ms of a search returning 10 media, against well under 1 ms in the database
(docs/performance.md). Each filter is already one condition written per database
(``media.search.sql``), so the statements of a search are put together here as text, with every
value a query parameter, and no query is compiled by the ORM on the way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.utils.timezone import now
from taggit.models import Tag

from media.models import TaggedMedia
from media.pids import pid_forms
from media.schemas import MediaSearch
from media.search.indexes import IndexedPaths, identifier_indexed, index_for, indexes_for
from media.search.sql import TABLE, any_identifier_matches, identifier_type_matches, metadata_condition
from media.search.wildcards import Sql, Wildcard, text_matches
from mediastore.dbrouting import read_connection as connection  # the replica for routed reads


@dataclass(frozen=True)
class Conditions:
    """Conditions that all hold for a match; ``empty``: nothing can match (an unknown tag).

    ``one_tag``: the search's only filter is this one tag (PostgreSQL, default order). Its condition
    is not among ``parts``: ``where`` adds it, naming the tag inside the statement (no statement of
    its own for the tag's id), and ``media.search.pages`` reads such a page straight from the tag
    index in the order of ids.
    """

    parts: tuple[Sql, ...] = ()
    empty: bool = False
    one_tag: str | None = None

    def where(self, *, tag: bool = True) -> Sql:
        """The conditions joined by AND (``1 = 1`` when there are none, ``1 = 0`` when nothing can
        match) and their parameters; ``tag=False`` leaves ``one_tag``'s condition out."""
        if self.empty:
            return "1 = 0", []
        parts = self.parts
        if tag and self.one_tag is not None:
            parts = (*parts, (f"{_column('id')} IN ({ONE_TAG_IDS})", [self.one_tag]))
        if not parts:
            return "1 = 1", []
        return " AND ".join(sql for sql, _ in parts), [p for _, params in parts for p in params]

    def including(self, sql: str, params: list[Any]) -> Conditions:
        return Conditions((*self.parts, (sql, params)), self.empty, self.one_tag)


NOTHING = Conditions(empty=True)

TAGGED = f'"{TaggedMedia._meta.db_table}"'
#: The tag of a name, inside a statement (NULL, so nothing matches, when there is no such tag).
TAG_BY_NAME = f'(SELECT t."id" FROM "{Tag._meta.db_table}" t WHERE t."name" = %s)'
#: The ids of the media carrying the tag of a name (one parameter: the name).
ONE_TAG_IDS = f'SELECT tm."content_object_id" FROM {TAGGED} tm WHERE tm."tag_id" = {TAG_BY_NAME}'


def _marks(values: list[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def tag_ids(names: Iterable[str]) -> dict[str, int]:
    """The ids of the tags with these names that exist (one small statement; none for no names)."""
    names = sorted(set(names))
    if not names:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT "name", "id" FROM "{Tag._meta.db_table}" WHERE "name" IN ({_marks(names)})', names
        )
        return dict(cursor.fetchall())


def _column(name: str) -> str:
    return f'{TABLE}."{name}"'


def _moment(value: datetime) -> Any:
    """A datetime as the database compares it with the stored ones (UTC text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(value)


def served() -> Sql:
    """Expired media are not served, though ``manage.py expire`` has not deleted them yet (unless
    held): the condition that a row is served now."""
    moment = _moment(now())
    sql = (
        f"({_column('expires_at')} IS NULL OR {_column('expires_at')} > %s OR ({_column('hold_since')} "
        f"IS NOT NULL AND ({_column('hold_until')} IS NULL OR {_column('hold_until')} > %s)))"
    )
    return sql, [moment, moment]


def only_tag(filters: MediaSearch) -> str | None:
    """The tag's name when a search's only filter is one tag (in ``tags``, ``tags_all`` or both)
    and it is read in the default order, on PostgreSQL; else None."""
    names = {*filters.tags, *filters.tags_all}
    if len(names) != 1 or filters.order_by is not None or connection.vendor != "postgresql":
        return None
    others = filters.model_dump(exclude={"tags", "tags_all", "limit", "offset"})
    return names.pop() if all(value in (None, [], {}) for value in others.values()) else None


def tags_in_list(filters: MediaSearch) -> list[Sql]:
    """The tag filters as containment in the media's own ``tag_list`` (PostgreSQL): the GIN index of
    migration 0012 serves them, so tags meet the other indexed filters in one bitmap, and no
    statement looks the tags' ids up first. ``tag_list`` holds exactly the names of taggit's rows
    (media/tags.py writes both; the tag admin is read-only), so the answers are those of
    ``taggit_tags``. Any of ``tags``: one array of one-name lists, of which a media's list contains
    at least one (a bitmap scan of the index per name); all of ``tags_all``: one list of them all."""
    parts: list[Sql] = []
    column = _column("tag_list")
    if filters.tags:
        wanted = [json.dumps([name]) for name in dict.fromkeys(filters.tags)]
        parts.append((f"{column} @> ANY(%s::jsonb[])", [wanted]))
    if filters.tags_all:
        parts.append((f"{column} @> %s::jsonb", [json.dumps(sorted(set(filters.tags_all)))]))
    return parts


def taggit_tags(filters: MediaSearch) -> list[Sql] | None:
    """The tag filters through taggit's rows (SQLite, where ``tag_list`` has no index): their ids
    first (one statement); None when nothing can match (no tag of ``tags`` exists, or one of
    ``tags_all`` does not)."""
    tagged = TAGGED
    parts: list[Sql] = []
    ids = tag_ids([*filters.tags, *filters.tags_all])
    if filters.tags:
        wanted = list(dict.fromkeys(ids[name] for name in filters.tags if name in ids))
        if not wanted:
            return None
        parts.append(
            (
                f'{_column("id")} IN (SELECT tm."content_object_id" FROM {tagged} tm '
                f'WHERE tm."tag_id" IN ({_marks(wanted)}))',
                wanted,
            )
        )
    if filters.tags_all:
        if any(name not in ids for name in filters.tags_all):
            return None
        for tag_id in sorted({ids[name] for name in filters.tags_all}):
            parts.append(
                (
                    f'EXISTS (SELECT 1 FROM {tagged} tm WHERE tm."content_object_id" = {_column("id")} '
                    'AND tm."tag_id" = %s)',
                    [tag_id],
                )
            )
    return parts


def conditions_for(filters: MediaSearch, paths: IndexedPaths | None = None) -> Conditions:
    """The conditions of every filter given (none: every media matches)."""
    vendor = connection.vendor
    parts: list[Sql] = [served()]
    name = only_tag(filters)
    if name is not None:
        return Conditions(tuple(parts), one_tag=name)
    if vendor == "postgresql":
        parts += tags_in_list(filters)
    else:
        found = taggit_tags(filters)
        if found is None:
            return NOTHING
        parts += found
    if filters.pid is not None:
        parts.append(
            _in_any_form(filters.pid, lambda form: text_matches(_column("pid"), vendor, Wildcard.parse(form)))
        )
    pid_types = [filters.pid_type] if isinstance(filters.pid_type, str) else filters.pid_type
    if pid_types:
        parts.append((f"{_column('pid_type')} IN ({_marks(pid_types)})", list(pid_types)))
    if paths is None:
        paths = indexes_for(filters)
    for type_name, pattern in sorted(filters.identifiers.items()):
        indexed = identifier_indexed(type_name, paths or {})
        of_type = partial(identifier_type_matches, type_name, indexed=indexed)
        parts.append(_in_any_form(pattern, lambda form, of_type=of_type: of_type(form).sql(vendor)))
    if filters.identifier is not None:
        parts.append(_in_any_form(filters.identifier, lambda form: any_identifier_matches(form).sql(vendor)))
    for condition in filters.metadata:
        parts.append(metadata_condition(condition, index_for(condition, paths or {})).sql(vendor))
    if filters.store_status is not None:
        parts.append((f"{_column('store_status')} = %s", [filters.store_status]))
    if filters.store_config is not None:
        parts.append((f"{_column('store_config_id')} = %s", [filters.store_config]))
    for name, op, value in (
        ("created", ">=", filters.created_after),
        ("created", "<", filters.created_before),
        ("updated", ">=", filters.updated_after),
        ("updated", "<", filters.updated_before),
    ):
        if value is not None:
            parts.append((f"{_column(name)} {op} %s", [_moment(value)]))
    return Conditions(tuple(parts))


# --- order and keyset -------------------------------------------------------------------------


def key_fields(order_by: str | None) -> list[str]:
    """The fields whose values name a row's place in the order (its keyset key)."""
    if not order_by:
        return ["pk"]
    field = order_by.lstrip("-")
    return ["pid"] if field == "pid" else [field, "pk"]


def key_columns(order_by: str | None) -> list[str]:
    return ["id" if name == "pk" else name for name in key_fields(order_by)]


def id_and_key_columns(order_by: str | None) -> list[str]:
    """``id`` and the order's key columns, each once: what the candidate set and the walk select."""
    return list(dict.fromkeys(["id", *key_columns(order_by)]))


def _in_any_form(pattern: str, condition: Callable[[str], Sql]) -> Sql:
    """``condition`` of a pid or identifier wildcard as given, or of its NFC or NFD form: values are
    stored in NFC, but some from before in NFD (``media.pids``). ASCII patterns give one condition."""
    found = [condition(form) for form in pid_forms(pattern)]
    sql = " OR ".join(f"({part})" for part, _ in found)
    return f"({sql})", [param for _, params in found for param in params]


def _pid_collation() -> str:
    """pid compares in byte order: on PostgreSQL ``COLLATE "C"`` (what the pid index of migration
    0003 is built with); SQLite's default already is."""
    return ' COLLATE "C"' if connection.vendor == "postgresql" else ""


def order_sql(order_by: str | None, table: str = TABLE) -> str:
    """The ORDER BY of a search over ``table``: pk by default; pid in byte order (served by the pid
    index of migration 0003 on PostgreSQL); dates with pk to break ties."""
    direction = "DESC" if order_by and order_by.startswith("-") else "ASC"
    return ", ".join(
        f'{table}."pid"{_pid_collation()} {direction}' if name == "pid" else f'{table}."{name}" {direction}'
        for name in key_columns(order_by)
    )


def after_key(conditions: Conditions, order_by: str | None, key: list[Any]) -> Conditions:
    """Only the rows that come after ``key`` in the order."""
    op = "<" if order_by and order_by.startswith("-") else ">"
    fields = key_fields(order_by)
    if fields == ["pk"]:
        return conditions.including(f"{_column('id')} {op} %s", [key[0]])
    if fields == ["pid"]:
        return conditions.including(f"{_column('pid')}{_pid_collation()} {op} %s", [key[0]])
    column, value = _column(fields[0]), _moment(key[0])
    return conditions.including(
        f"({column} {op} %s OR ({column} = %s AND {_column('id')} {op} %s))", [value, value, key[1]]
    )
