"""One host at a time through the start-up steps that write (bin/start: ``migrate``, the
``ensure_*`` accounts): API hosts started together (compose-prod.yml's api replicas, a rolling
restart) would otherwise apply the same migration twice, or create the same account twice (the
second fails on the unique username). On PostgreSQL a session advisory lock serialises them; the
second host waits, then finds nothing left to do. SQLite is one host anyway.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections

LOCK_KEY = 0x6D656469_61737472  # "mediastr"; any bigint that no other lock of this database uses


POLL_SECONDS = 0.5
WAIT_SECONDS = 3600  # a migration of a large table may take long; past this, start fails loudly


@contextmanager
def one_host_at_a_time(alias: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Held for the block on PostgreSQL. Waits by polling ``pg_try_advisory_lock``, never by a
    blocking ``pg_advisory_lock``: a waiting statement is an open transaction, which a
    ``CREATE INDEX CONCURRENTLY`` of the host that holds the lock waits for (a deadlock)."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        yield
        return
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            if cursor.fetchone()[0]:
                break
        if time.monotonic() > deadline:
            raise CommandError(f"another host held the start-up lock for {WAIT_SECONDS} s; try again")
        time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
