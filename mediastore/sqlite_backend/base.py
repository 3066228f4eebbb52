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
(``mediastore.dbretry``). Statements outside a transaction (reads, and the rare write in
autocommit) do not queue. A database in memory has no file to lock beside it and does not queue.
The ``write_queue`` option (``MEDIASTORE_SQLITE_WRITE_QUEUE``) turns the queue off.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from django.db import OperationalError
from django.db.backends.sqlite3 import base, features

from mediastore.sqlite_backend.writequeue import WriterQueue, WriterQueueTimeout, queue_for

#: SQLite's own default busy timeout (seconds), used when the settings give none.
DEFAULT_TIMEOUT_S = 5.0


class DatabaseFeatures(features.DatabaseFeatures):
    max_query_params = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
    writer_queue: WriterQueue | None = None
    holds_write_turn = False
    queue_timeout = DEFAULT_TIMEOUT_S

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        use_queue = params.pop("write_queue", True)
        self.queue_timeout = float(params.get("timeout", DEFAULT_TIMEOUT_S))
        if use_queue and not self.is_in_memory_db():
            self.writer_queue = queue_for(Path(self.settings_dict["NAME"]).resolve())
        return params

    def _start_transaction_under_autocommit(self) -> None:
        if self.writer_queue is not None and not self.holds_write_turn:
            try:
                self.writer_queue.acquire(self.queue_timeout)
            except WriterQueueTimeout as exc:
                raise OperationalError(f"database is locked ({exc})") from exc
            self.holds_write_turn = True
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
            if self.connection is None:
                self.release_write_turn()

    def release_write_turn(self) -> None:
        """Let the next writer go; nothing when this connection does not hold its turn."""
        if self.holds_write_turn:
            self.holds_write_turn = False
            self.writer_queue.release()
