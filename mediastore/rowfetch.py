"""One row and the rows its foreign keys point at, by one column, in one statement compiled once.

The hot single-row reads (the bearer token with its user on every request, a media with its store
configuration) spend most of their time not in the database but in Django compiling the same
query again on every call: on the benchmark machine about 0.6 ms per query, against 0.02 ms to
run it (docs/performance.md). ``RowFetcher`` builds the SQL from the models' metadata once per
process and database vendor, and builds the model instances with ``Model.from_db``, as the ORM
does, so the objects behave exactly like those of ``select_related`` (related objects cached,
``_state`` set). It reads only; writes stay on the ORM. The values are converted as the ORM
converts them, and the statement runs on a server-binding cursor, through the two internals of
Django it needs (``mediastore.compat.db_converters`` and ``replace_cursor``); everything else is
public API (``Model._meta``, ``Model.from_db``, assigning the related objects).

On PostgreSQL the statement is also *prepared* (once per connection): planning the token lookup,
with its permission subquery, took 1.4 ms against 0.2 ms to run it. Django's own cursors bind
parameters on the client, which psycopg never prepares, so only these statements are.
``POSTGRES_PREPARED_STATEMENTS=false`` (``MEDIASTORE_PG_PREPARED``) turns it off for poolers that
cannot keep prepared statements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.utils import CursorWrapper

from mediastore.compat import db_converters, raw_connection, replace_cursor


class RowFetcher:
    """``model`` rows where ``column = value``, with the chain of foreign keys ``path`` followed
    (``("store_config", "s3cfg")``: media → store config → S3 config; nullable links are LEFT
    JOINs and give None)."""

    def __init__(
        self,
        model: type[models.Model],
        column: str,
        path: tuple[str, ...] = (),
        extra: Callable[[str], str] | None = None,
    ) -> None:
        """``extra(vendor)``: one more SQL expression to select (it may refer to the joined rows as
        ``t0``, ``t1``, ... in ``path`` order); its value is set on the row as ``fetched_extra``."""
        self.model = model
        self.column = column
        self.path = path
        self.extra = extra
        self._sql: dict[str, str] = {}
        self._converted: dict[str, list[tuple[int, object]]] = {}
        self._chain: list[tuple[type[models.Model], str | None, list[str]]] = []
        current = model
        self._chain.append((current, None, [f.attname for f in current._meta.concrete_fields]))
        for name in path:
            field = current._meta.get_field(name)
            current = field.related_model
            self._chain.append((current, name, [f.attname for f in current._meta.concrete_fields]))

    def _compile(self, db) -> str:
        quote = db.ops.quote_name
        columns, joins = [], []
        previous = self.model
        for index, (model, link, attnames) in enumerate(self._chain):
            alias = f"t{index}"
            by_attname = {f.attname: f.column for f in model._meta.concrete_fields}
            columns += [f"{alias}.{quote(by_attname[a])}" for a in attnames]
            if link is not None:
                field = previous._meta.get_field(link)
                kind = "LEFT OUTER JOIN" if field.null else "INNER JOIN"
                joins.append(
                    f"{kind} {quote(model._meta.db_table)} {alias} "
                    f"ON {alias}.{quote(model._meta.pk.column)} = t{index - 1}.{quote(field.column)}"
                )
            previous = model
        where = quote(self.model._meta.get_field(self.column).column)
        if self.extra is not None:
            columns.append(self.extra(db.vendor))
        return (
            f"SELECT {', '.join(columns)} FROM {quote(self.model._meta.db_table)} t0 "
            f"{' '.join(joins)} WHERE t0.{where} = %s"
        )

    def sql(self, db=None) -> str:
        """The statement, with one parameter (the value), compiled once per database vendor."""
        db = db or connections[DEFAULT_DB_ALIAS]
        sql = self._sql.get(db.vendor)
        if sql is None:
            sql = self._sql[db.vendor] = self._compile(db)
        return sql

    def first(self, value) -> models.Model | None:
        """The row whose column equals ``value`` (None when there is none), related rows attached."""
        db = connections[DEFAULT_DB_ALIAS]  # django.db.connection, looked up once
        with statement_cursor(db) as cursor:
            cursor.execute(self.sql(db), [value])
            row = cursor.fetchone()
        return None if row is None else self.build(row, db)[0]

    def first_beside(
        self, value, other: RowFetcher, other_value
    ) -> tuple[models.Model | None, models.Model | None]:
        """``(self.first(value), other.first(other_value))`` in one statement (one round trip):
        ``(None, None)`` when this fetcher's row does not exist, whatever the other's."""
        db = connections[DEFAULT_DB_ALIAS]
        with statement_cursor(db) as cursor:
            cursor.execute(
                f"SELECT * FROM ({self.sql(db)}) a LEFT JOIN ({other.sql(db)}) b ON 1 = 1",
                [value, other_value],
            )
            row = cursor.fetchone()
        if row is None:
            return None, None
        mine, used = self.build(row, db)
        return mine, other.build(row[used:], db)[0]

    def build(self, row, db=None) -> tuple[models.Model | None, int]:
        """The object of the statement's columns at the start of ``row`` (None when its primary key
        is NULL: a LEFT JOIN found nothing), and how many columns it used."""
        db = db or connections[DEFAULT_DB_ALIAS]
        converters = self._converted.get(db.vendor)
        if converters is None:
            converters = self._converted[db.vendor] = self._converters(db)
        width = sum(len(attnames) for _, _, attnames in self._chain) + (self.extra is not None)
        row = list(row[:width])
        for position, convert in converters:
            row[position] = convert(row[position], db)
        objects: list[models.Model | None] = []
        start = 0
        for model, _, attnames in self._chain:
            values = row[start : start + len(attnames)]
            start += len(attnames)
            pk_value = values[attnames.index(model._meta.pk.attname)]
            objects.append(None if pk_value is None else model.from_db(db.alias, attnames, values))
        for (_, link, _), owner, target in zip(self._chain[1:], objects[:-1], objects[1:], strict=True):
            if owner is None:
                break
            setattr(owner, link, target)  # as select_related leaves it: cached, no query on access
        if self.extra is not None and objects[0] is not None:
            objects[0].fetched_extra = row[start]
        return objects[0], width

    def _converters(self, db) -> list[tuple[int, object]]:
        fields = []
        for model, _, attnames in self._chain:
            by_attname = {f.attname: f for f in model._meta.concrete_fields}
            fields += [by_attname[attname] for attname in attnames]
        return column_converters(fields, db)


def column_converters(fields: list[models.Field], db=connection) -> list[tuple[int, object]]:
    """Converters from database values to Python for columns of these fields, in this order (JSON,
    dates on SQLite, ...): the ones the ORM applies, the backend's and the field's own
    ``from_db_value``; as ``(position, convert(value, connection))`` for the columns that need one."""
    found = []
    for position, field in enumerate(fields):
        chain, expression = db_converters(field, db)
        if chain:
            found.append((position, _chained(chain, expression)))
    return found


@contextmanager
def statement_cursor(db=connection) -> Iterator[CursorWrapper]:
    """Django's cursor on ``db`` (health check, execute wrappers, query logging all apply); on
    PostgreSQL with ``MEDIASTORE_PG_PREPARED``, over a psycopg cursor that binds parameters on the
    server, with preparation allowed on the connection only while it is open, so psycopg prepares
    what runs through it and nothing else (the connection keeps Django's ``prepare_threshold`` of
    None for every other statement)."""
    with db.cursor() as wrapper:
        if db.vendor != "postgresql" or not settings.MEDIASTORE_PG_PREPARED:
            yield wrapper
            return
        import psycopg

        raw = raw_connection(db)
        cursor = psycopg.Cursor(raw)
        replace_cursor(wrapper, cursor)
        previous, raw.prepare_threshold = raw.prepare_threshold, 0
        try:
            yield wrapper
        finally:
            raw.prepare_threshold = previous


def _chained(functions, expression):
    def convert(value, conn):
        for function in functions:
            value = function(value, expression, conn)
        return value

    return convert
