"""Django's SQLite backend, told the real variable limit of the SQLite that Python ships, with
writers waiting in line for the write lock.

Django assumes SQLite's old default of 999 variables per statement and splits bulk writes into
many small batches; SQLite 3.32+ allows 32766. Fewer batches keep bulk writes at a constant number
of queries, as on PostgreSQL.

A transaction (``transaction.atomic``, begun ``IMMEDIATE`` by the settings' ``transaction_mode``)
first waits its turn in ``mediastore.sqlite_backend.writequeue`` and holds it until it commits or
rolls back, so concurrent writers take SQLite's lock one after another in the order they asked,
rather than by the luck of SQLite's busy handler. The wait is bounded by the connection's
``timeout`` option (SQLite's own busy timeout), after which ``OperationalError`` ("database is
locked") is raised as SQLite itself would, and answered 503 with ``Retry-After``
(``mediastore.dbretry``). A write statement outside a transaction takes its turn for itself;
reads outside a transaction never queue (in WAL mode they do not wait for writers). A database
in memory has no file to lock beside it and does not queue. A process that queues writers
switches threads every millisecond rather than every 5 (``SWITCH_INTERVAL_S``), so the writer
holding the turn gets the interpreter back soon after each statement.
The ``write_queue`` option (``MEDIASTORE_SQLITE_WRITE_QUEUE``) turns the queue off. Transactions
are ``atomic`` blocks here: one begun with ``set_autocommit(False)`` (which nothing in the project
does) would take the turn per statement only, and race SQLite's busy handler as before.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import OperationalError
from django.db.backends.sqlite3 import base, features

from mediastore.sqlite_backend.writequeue import WriterQueue, WriterQueueTimeout, queue_for

#: The first words of the statements that write (and so take SQLite's write lock).
WRITE_STATEMENTS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER"})


def writes(sql: str) -> bool:
    """Whether ``sql`` is a statement that writes (by its first word)."""
    words = sql.lstrip()[:8].split(None, 1)
    return bool(words) and words[0].upper() in WRITE_STATEMENTS


#: The interpreter's thread switch interval (seconds) in a process that queues writers.
SWITCH_INTERVAL_S = 0.001

#: SQLite's own default busy timeout (seconds), used when the settings give none.
DEFAULT_TIMEOUT_S = 5.0


class DatabaseFeatures(features.DatabaseFeatures):
    max_query_params = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


class QueuedCursor(base.SQLiteCursorWrapper):
    """Django's SQLite cursor, whose writes outside a transaction wait their turn."""

    database: DatabaseWrapper

    def execute(self, query, params=None):
        with self.database.turn_for(query):
            return super().execute(query, params)

    def executemany(self, query, param_list):
        with self.database.turn_for(query):
            return super().executemany(query, param_list)


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
    writer_queue: WriterQueue | None = None
    holds_write_turn = False
    queue_timeout = DEFAULT_TIMEOUT_S

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=QueuedCursor)
        cursor.database = self
        return cursor

    @contextmanager
    def turn_for(self, sql: str) -> Iterator[None]:
        """A write outside a transaction (the bearer token's ``last_used``, a login's new token)
        takes its turn too: left to SQLite's busy handler it would find the lock taken by one
        queued writer after another, and lose to them for as long as writers keep coming."""
        if self.writer_queue is None or self.in_atomic_block or self.holds_write_turn or not writes(sql):
            yield
            return
        self.take_write_turn()
        try:
            yield
        finally:
            self.release_write_turn()

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        use_queue = params.pop("write_queue", True)
        self.queue_timeout = float(params.get("timeout", DEFAULT_TIMEOUT_S))
        if use_queue and not self.is_in_memory_db():
            self.writer_queue = queue_for(Path(self.settings_dict["NAME"]).resolve())
            # A writer holds its turn across many sqlite3 calls, each of which lets go of the GIL;
            # getting it back waits up to the switch interval (5 ms) while other threads compute,
            # and everyone in line waits with it (docs/performance.md). Process-wide, SQLite only.
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        return params

    def take_write_turn(self) -> None:
        """Wait for this connection's turn to write; ``OperationalError`` ("database is locked")
        after the connection's timeout."""
        if self.writer_queue is not None and not self.holds_write_turn:
            try:
                self.writer_queue.acquire(self.queue_timeout)
            except WriterQueueTimeout as exc:
                raise OperationalError(f"database is locked ({exc})") from exc
            self.holds_write_turn = True

    def _start_transaction_under_autocommit(self) -> None:
        self.take_write_turn()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self.release_write_turn()
            raise

    def _set_autocommit(self, autocommit: bool) -> None:
        super()._set_autocommit(autocommit)
        if autocommit:
            self.release_write_turn()  # the transaction has committed or rolled back

    def close(self) -> None:
        try:
            super().close()
        finally:
            # Closed inside ``atomic`` Django keeps ``connection`` set until the block ends (and
            # then drops it without a call that would release the turn); the SQLite connection is
            # closed either way, so SQLite's lock is free and the turn goes too.
            if self.connection is None or self.closed_in_transaction:
                self.release_write_turn()

    def release_write_turn(self) -> None:
        """Let the next writer go; nothing when this connection does not hold its turn."""
        if self.holds_write_turn:
            self.holds_write_turn = False
            self.writer_queue.release()
