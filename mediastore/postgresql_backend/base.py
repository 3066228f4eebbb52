"""Django's PostgreSQL backend, with a health check that costs no round trip between busy requests.

With ``CONN_HEALTH_CHECKS`` Django checks a kept connection before its first use in each request,
and PostgreSQL's check is a ``SELECT 1``: one more round trip on every request, about a fifth of a
single-media read (docs/performance.md). A connection that is idle between requests has nothing
to read; when the server ends it (restart, ``pg_terminate_backend``, idle timeouts) it sends its
error and closes the socket, which then becomes readable. So a connection that passed a check
less than ``TRUST_SECONDS`` ago, is idle, and has nothing to read is used as it is; one with
something to read is closed and opened again. Anything else gets Django's ``SELECT 1``: a
connection inside a transaction, and one not checked for a while, since a server host that
vanished without closing its sockets (a moved address after a failover) leaves nothing to read,
and only a round trip finds that out. On a busy server the check is then free; on a quiet one it
costs what it did.

Timestamps are read with psycopg's compiled ``timestamptz`` loader instead of the Python subclass
Django registers, when the two give the same values: ``USE_TZ`` on and the connection's zone UTC
(no database ``TIME_ZONE``), where both return aware datetimes in ``datetime.UTC``. Django's loader
costs about seven times as much per value (docs/performance.md), on every row of every query.
"""

from __future__ import annotations

import select
import time
from datetime import UTC

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base, operations
from psycopg import errors
from psycopg.pq import Format, TransactionStatus

from mediastore.compat import raw_connection

#: A connection found usable this recently is trusted when its socket has nothing to read.
TRUST_SECONDS = 5.0


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        """The SQL with its parameters, as Django logs it, also for a prepared statement (psycopg
        keeps no query text on the cursor when it executes one: mediastore.rowfetch)."""
        query = super().last_executed_query(cursor, sql, params)
        if query is not None:
            return query
        try:
            return self.compose_sql(sql, params)
        except errors.DataError:
            return sql


class UtcTimestamptzLoader:
    """Stands for psycopg's own ``timestamptz`` loader (the compiled one where psycopg has its C
    extension) in a connection's adapters: psycopg makes a loader by calling the registered class,
    and this one answers with psycopg's. ``timezone`` is what Django reads of the connection's
    loader (``create_cursor``) to decide whether a cursor needs its own: UTC, the zone psycopg's
    loader gives a connection whose ``TimeZone`` is UTC."""

    format = Format.TEXT
    timezone = UTC

    def __new__(cls, oid: int, context=None):
        return psycopg.adapters.get_loader(oid, Format.TEXT)(oid, context)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    checked_at = float("-inf")  # monotonic time of the last check that passed

    def is_usable(self) -> bool:
        raw = raw_connection(self)
        if raw is None or raw.closed or raw.broken:
            return False
        now = time.monotonic()
        if raw.info.transaction_status != TransactionStatus.IDLE or now - self.checked_at > TRUST_SECONDS:
            usable = super().is_usable()
        else:
            try:
                poller = select.poll()
                poller.register(raw.fileno(), select.POLLIN | select.POLLPRI)
                # Nothing is expected on an idle connection (no LISTEN here): what arrived is the
                # server's goodbye, or at least not worth the risk of a failed query.
                usable = not poller.poll(0)
            except (OSError, ValueError):
                usable = False
        if usable:
            self.checked_at = now
        return usable

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if settings.USE_TZ and self.timezone is UTC:  # Django then sets the session's TimeZone to UTC
            connection.adapters.register_loader("timestamptz", UtcTimestamptzLoader)
        return connection

    def connect(self) -> None:
        super().connect()
        self.checked_at = time.monotonic()  # a new connection was just shown to work
