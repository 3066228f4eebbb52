"""The media of a page as plain dicts in the ``MediaOut`` shape, read by one statement.

A page of 1000 media built as model instances (with their store joined) and then turned into
dicts cost more than its SQL. Here one statement reads the page's columns with the store (and its
S3 endpoint) joined, and the rows become the dicts ``media.schemas.media_out_dict`` gives (a test
compares them with the schema path). The JSON columns are not even parsed: the database's text
of them goes into the answer as it is (``orjson.Fragment``), which also keeps integers of any size.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import orjson
from django.db import connections
from django.utils import timezone

from media.lifecycle import hold_out
from media.models import Media
from media.search.filters import order_sql
from mediastore.dbrouting import read_connection as connection  # the replica for routed reads
from mediastore.dbrouting import reading_alias
from mediastore.rowfetch import column_converters, statement_cursor
from stores.endpoints import without_userinfo
from stores.models import S3Config, StoreConfig

FIELDS = (
    "id",
    "pid",
    "pid_type_id",
    "store_config_id",
    "store_status",
    "mark",
    "version",
    "size",
    "checksum",
    "content_type",
    "created",
    "updated",
    "owner_id",
    "expires_at",
    "hold_since",
    "hold_until",
    "hold_reason",
    "hold_freeze",
    "hold_by",
)
JSON_FIELDS = ("identifiers", "metadata", "tag_list")

_SQL: dict[str, tuple[str, str, list[tuple[int, Any]]]] = {}


class Hold(NamedTuple):
    """The hold columns of a row, as ``media.lifecycle.hold_out`` reads them."""

    hold_since: datetime | None
    hold_until: datetime | None
    hold_reason: str
    hold_freeze: bool
    hold_by: str


def _statement() -> tuple[str, str, list[tuple[int, Any]]]:
    """The columns and the FROM of a page (without WHERE and ORDER BY) and its column converters,
    made once per database vendor."""
    vendor = connection.vendor
    if vendor not in _SQL:
        fields = [Media._meta.get_field(name) for name in FIELDS]
        columns = [f'm."{field.column}"' for field in fields]
        columns += [f'CAST(m."{Media._meta.get_field(name).column}" AS text)' for name in JSON_FIELDS]
        columns += ['sc."type"', 'sc."bucket"', 's3."url"']
        tables = (
            f'"{Media._meta.db_table}" m '
            f'INNER JOIN "{StoreConfig._meta.db_table}" sc ON sc."id" = m."store_config_id" '
            f'LEFT OUTER JOIN "{S3Config._meta.db_table}" s3 ON s3."id" = sc."s3cfg_id"'
        )
        _SQL[vendor] = (", ".join(columns), tables, column_converters(fields))
    return _SQL[vendor]


def rows_sql(ids_sql: str, order_by: str | None) -> str:
    """The statement reading the media whose ids ``ids_sql`` selects, in the search's order."""
    columns, tables, _ = _statement()
    return f'SELECT {columns} FROM {tables} WHERE m."id" IN ({ids_sql}) ORDER BY {order_sql(order_by, "m")}'


def counted_rows_sql(ids_sql: str, order_by: str | None) -> str:
    """``rows_sql`` of an ``ids_sql`` that gives each id with the count of matches (``total``):
    the count is the last column of each row."""
    columns, tables, _ = _statement()
    return (
        f'SELECT {columns}, page."total" FROM {tables} INNER JOIN ({ids_sql}) AS page("id", "total") '
        f'ON page."id" = m."id" ORDER BY {order_sql(order_by, "m")}'
    )


def media_rows(
    ids_sql: str, ids_params: list[Any], order_by: str | None, *, prepared: bool = False
) -> list[dict[str, Any]]:
    """The media whose ids ``ids_sql`` selects, in the search's order, as ``media_out_dict`` gives
    them (one statement). ``prepared``: the statement is one whose plan suits every value of its
    parameters, so on PostgreSQL it is prepared once per connection (``statement_cursor``) and not
    planned again at every page; the others are planned for their values, as issue 14 needs."""
    return _page(_fetch(rows_sql(ids_sql, order_by), ids_params, prepared=prepared))


def media_rows_counted(
    ids_sql: str, ids_params: list[Any], order_by: str | None
) -> tuple[list[dict[str, Any]], int | None]:
    """``media_rows`` of an ``ids_sql`` that counts the matches too (``counted_rows_sql``), and that
    count (None when the statement did not count, or found no row)."""
    rows = _fetch(counted_rows_sql(ids_sql, order_by), ids_params, prepared=False)
    total = rows[0][-1] if rows else None
    return _page([row[:-1] for row in rows]), total


def _fetch(sql: str, params: list[Any], *, prepared: bool) -> list[tuple]:
    db = connections[reading_alias()]  # the connection read_connection stands for, looked up once
    with statement_cursor(db) if prepared else db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _page(rows: list[tuple]) -> list[dict[str, Any]]:
    """The rows of a page's statement as ``media_out_dict`` gives them."""
    converters = _statement()[2]
    db = connections[reading_alias()]
    stores: dict[int, dict[str, Any]] = {}
    page = []
    now = timezone.now()
    for row in rows:
        row = list(row)
        for position, convert in converters:
            row[position] = convert(row[position], db)
        pk, pid, pid_type, store_id, status, mark, version, size, checksum, content_type = row[:10]
        created, updated, owner, expires_at = row[10:14]
        hold = Hold(*row[14:19])
        identifiers, metadata, tags, store_type, bucket, s3_url = row[19:]
        store = stores.get(store_id)
        if store is None:
            store = stores[store_id] = {
                "pk": store_id,
                "type": store_type,
                "bucket": bucket,
                "s3_url": without_userinfo(s3_url) if s3_url is not None else "",
            }
        page.append(
            {
                "pk": pk,
                "pid": pid,
                "pid_type": pid_type,
                "store_config": store,
                "store_status": status,
                "identifiers": orjson.Fragment(identifiers),
                "metadata": orjson.Fragment(metadata),
                "tags": orjson.Fragment(tags),
                "mark": mark,
                "version": str(version),
                "size": size,
                "checksum": checksum,
                "content_type": content_type,
                "created": created,
                "updated": updated,
                "owner": owner,
                "expires_at": expires_at,
                "hold": hold_out(hold, now),
            }
        )
    return page
