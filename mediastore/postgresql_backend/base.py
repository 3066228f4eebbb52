"""Django's PostgreSQL backend, with a health check that costs no round trip on an idle connection.

With ``CONN_HEALTH_CHECKS`` Django checks a kept connection before its first use in each request,
and PostgreSQL's check is a ``SELECT 1``: one more round trip on every request, about a fifth of a
single-media read (docs/performance.md). A connection that is idle between requests has nothing
to read; when the server goes away (restart, ``pg_terminate_backend``, idle timeouts) it sends its
error and closes the socket, which then becomes readable. So an idle connection whose socket has
nothing to read is usable, one with something to read is closed and opened again, and anything
else (a connection inside a transaction, or in doubt) gets Django's ``SELECT 1``.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        raw = self.connection
        if raw is None or raw.closed or raw.broken:
            return False
        if raw.info.transaction_status != TransactionStatus.IDLE:
            return super().is_usable()
        try:
            readable, _, _ = select.select([raw.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        # Nothing is expected on an idle connection (no LISTEN here): what arrived is the server's
        # goodbye, or at least not worth the risk of a failed query.
        return not readable
