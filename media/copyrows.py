"""New rows written with PostgreSQL's ``COPY ... FROM STDIN`` (psycopg 3's ``Cursor.copy``), one
statement per table whatever the number of rows; ``bulk_create`` on other databases.

Why: on PostgreSQL ``bulk_create`` of 100 media, their history rows and events spent most of its
time in Python, not in the database: Django prepares every value through its insert compiler, and
psycopg, binding on the client, spells each column's array out as quoted SQL text (a regular
expression over every value). COPY sends the rows as its own data stream, so neither happens.
Figures: docs/performance.md ("Bulk create").

The columns are the model's concrete fields (never a hand-written list), each value prepared as
``bulk_create`` prepares it (``Field.pre_save(obj, add=True)``, then ``get_db_prep_save``), so
``auto_now`` times are set on the objects as they are by ``bulk_create``. COPY returns nothing: rows
whose primary key the database would number get it beforehand (``new_ids``). A statement's
``execute_wrapper``s (the metrics' statement count) and Django's query log (``CaptureQueriesContext``,
the statement budgets) see each COPY as one statement; its errors arrive as Django's
(``IntegrityError`` for a taken unique value), as from ``bulk_create``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from django.db import DEFAULT_DB_ALIAS, connection, connections, models

from media.models import MARK_SEQUENCE, Media, next_marks
from mediastore.compat import raw_connection, run_as_statement


def copy_enabled() -> bool:
    """Whether inserts here go through COPY (PostgreSQL) rather than ``bulk_create``."""
    return connection.vendor == "postgresql"


def _fields(model: type[models.Model], with_pk: bool) -> list[models.Field]:
    return [
        field
        for field in model._meta.concrete_fields
        if not getattr(field, "generated", False) and (with_pk or not field.primary_key)
    ]


def marks_and_ids(count: int) -> tuple[list[int], list[int] | None]:
    """``count`` change marks (as ``media.models.next_marks``) and, with COPY, ``count`` new media
    ids taken from the media table's own sequence, both ascending, in one statement; on other
    databases the ids are None (``bulk_create`` has the database number the rows)."""
    if not copy_enabled():
        return next_marks(count), None
    if count <= 0:
        return [], []
    sql = (
        f"SELECT nextval('{MARK_SEQUENCE}'), nextval(pg_get_serial_sequence(%s, %s)) "
        "FROM generate_series(1, %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [connection.ops.quote_name(Media._meta.db_table), Media._meta.pk.column, count])
        rows = cursor.fetchall()
    return sorted(row[0] for row in rows), sorted(row[1] for row in rows)


def insert(model: type[models.Model], objs: Sequence[Any], *, with_pk: bool | None = None) -> None:
    """Insert ``objs`` as new rows of ``model``: with COPY, every concrete field including the
    primary key when ``with_pk`` (by default: when the first object has one; else the database
    numbers them and the objects do not learn their keys: for rows nothing reads back, such as
    history rows); ``bulk_create`` elsewhere (which sets the keys). With COPY an object may be
    any object with the fields' attributes (``attname``), not only an instance of ``model``."""
    if not objs:
        return
    if not copy_enabled():
        model.objects.bulk_create(objs)
        return
    if with_pk is None:
        with_pk = objs[0].pk is not None
    fields = _fields(model, with_pk)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: ``connection`` is a proxy, slow per value
    prepare = [_preparer(field, db) for field in fields]
    rows = [[value(obj) for value in prepare] for obj in objs]
    with connection.cursor() as cursor:  # opens the connection if needed
        run_as_statement(connection, cursor, sql, rows, _copy, logged_as=f"{sql} -- {len(rows)} rows")
    for obj in objs:
        if isinstance(obj, models.Model):
            obj._state.adding = False
            obj._state.db = connection.alias


# Django's own field classes (exactly these, not subclasses) whose ``get_db_prep_save`` gives back a
# value of these Python types unchanged on PostgreSQL: such values skip it (most values of a row).
_UNCHANGED: dict[type[models.Field], tuple[type, ...]] = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.BigIntegerField: (int,),
    models.IntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.BigAutoField: (int,),
    models.AutoField: (int,),
    models.BooleanField: (bool,),
    models.ForeignKey: (int, str),
}


def _preparer(field: models.Field, db) -> Callable[[models.Model], object]:
    """The function giving the value ``bulk_create`` would send for ``field`` of an object."""
    auto = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    if type(field) is models.JSONField:
        return _json_preparer(field, db)
    if auto or type(field) not in (*_UNCHANGED, models.DateTimeField):
        return lambda obj: field.get_db_prep_save(field.pre_save(obj, True), db)
    attname = field.attname  # Field.pre_save of these: the attribute as it is
    unchanged = _UNCHANGED.get(type(field), ())
    if type(field) is models.DateTimeField:

        def value(obj):
            found = getattr(obj, attname)
            if found is None or (type(found) is datetime and found.tzinfo is not None):
                return found
            return field.get_db_prep_save(found, db)

        return value

    def value(obj):
        found = getattr(obj, attname)
        if found is None or type(found) in unchanged:
            return found
        return field.get_db_prep_save(found, db)

    return value


def _json_preparer(field: models.JSONField, db) -> Callable[[models.Model], object]:
    """For a ``JSONField``: a dict or list as its JSON text (``json_text``), which COPY's text
    format passes to the column as it is; anything else as ``bulk_create`` sends it."""
    attname = field.attname  # JSONField.pre_save: the attribute as it is
    encoder = field.encoder
    default = encoder().default if encoder is not None else None

    def value(obj):
        found = getattr(obj, attname)
        if type(found) is dict or type(found) is list:
            return json_text(found, encoder, default)
        return field.get_db_prep_save(found, db)

    return value


# Types orjson would write its own way, left to the encoder (or refused, as json.dumps does).
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_text(
    value: Any, encoder: type[json.JSONEncoder] | None = None, default: Callable | None = None
) -> str:
    """JSON of ``value`` that PostgreSQL reads as the same ``jsonb`` as ``json.dumps(value,
    cls=encoder)`` (what Django sends for a ``JSONField``; ``default``: ``encoder().default``):
    orjson's, which differs only in spacing, in not escaping non-ASCII characters and in exponents
    (``1e16`` for ``1e+16``); times, dates and dataclasses go to ``default``. ``json.dumps``' text
    (or its error) where orjson would write another value or refuse: NaN and infinities (orjson
    writes ``null``, json.dumps ``NaN``, which PostgreSQL refuses), integers beyond 64 bits, lone
    surrogates, keys that are not strings, objects ``default`` does not know."""
    try:
        text = orjson.dumps(value, default=default, option=_PASSTHROUGH)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, cls=encoder)
    if b"null" in text and _nonfinite(value):  # orjson writes NaN and infinities as null
        return json.dumps(value, cls=encoder)
    return text.decode()


def _nonfinite(value: Any) -> bool:
    """Whether a float NaN or infinity is in ``value`` (in its dicts, lists and tuples, at any
    depth)."""
    pending = [(value,)]
    while pending:
        for item in pending.pop():
            kind = type(item)
            if kind is str or kind is int or kind is bool or item is None:
                continue
            if kind is float or isinstance(item, float):
                if item - item != 0.0:  # NaN and the infinities
                    return True
            elif isinstance(item, dict):
                pending.append(item.values())
            elif isinstance(item, list | tuple):
                pending.append(item)
    return False


def _copy(sql: str, rows: list[list], many: bool, context: dict) -> None:
    with raw_connection(connection).cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
