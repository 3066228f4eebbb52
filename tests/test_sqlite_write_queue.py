"""SQLite writers wait in line (mediastore.sqlite_backend.writequeue): on a database file of their
own, whichever database the suite runs on, since the server's SQLite database is a file and the
suite's is in memory (which does not queue)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler

from mediastore.sqlite_backend.base import SWITCH_INTERVAL_S
from mediastore.sqlite_backend.writequeue import HandOffLock, queue_for

ALIAS = "default"  # of a ConnectionHandler of its own, not the suite's
WAIT_S = 30  # a bound on waits that must end, not a timing


@pytest.fixture
def database(tmp_path, django_db_blocker):
    """Per-thread connections (``handler[ALIAS]`` in each thread) to a WAL database file with a
    table ``w`` (id, name), configured as the settings configure the server's."""

    def handler(**options) -> ConnectionHandler:
        settings = {
            "ENGINE": "mediastore.sqlite_backend",
            "NAME": tmp_path / "db.sqlite3",
            "OPTIONS": {
                "timeout": WAIT_S,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                **options,
            },
        }
        return ConnectionHandler({ALIAS: settings})

    with django_db_blocker.unblock():
        setup = handler()[ALIAS]
        with setup.cursor() as cursor:
            cursor.execute("CREATE TABLE w (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT)")
        setup.close()
        yield handler


@contextmanager
def writing(conn):
    """A write transaction, begun as ``transaction.atomic`` begins one on SQLite (test_compat.py
    checks that it does)."""
    conn.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    try:
        with conn.cursor() as cursor:
            yield cursor
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.set_autocommit(True)


def names(conn) -> list[str]:
    with conn.cursor() as cursor:
        cursor.execute("SELECT name FROM w ORDER BY id")
        return [name for (name,) in cursor.fetchall()]


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


def test_writers_take_the_lock_in_the_order_they_asked(database):
    """SQLite's busy handler lets whichever writer tries next take a freed lock, newcomers before
    writers that have slept longer; in line, they commit in the order they began."""
    handler = database()
    holder = handler[ALIAS]
    queue = None
    failures: list[BaseException] = []

    def writer(name: str) -> None:
        conn = handler[ALIAS]
        try:
            with writing(conn) as cursor:
                cursor.execute("INSERT INTO w (name) VALUES (%s)", [name])
        except BaseException as exc:
            failures.append(exc)
        finally:
            conn.close()

    threads = []
    with writing(holder) as cursor:
        cursor.execute("INSERT INTO w (name) VALUES ('holder')")
        queue = holder.writer_queue
        for n in range(6):
            thread = threading.Thread(target=writer, args=(f"writer-{n}",))
            thread.start()
            threads.append(thread)
            wait_until(lambda n=n: queue.waiting == n + 1, f"writer-{n} waiting in line")
    for thread in threads:
        thread.join(WAIT_S)
    assert failures == []
    assert names(holder) == ["holder"] + [f"writer-{n}" for n in range(6)]
    assert not holder.holds_write_turn and queue.waiting == 0
    holder.close()


def test_reads_go_on_while_a_writer_holds_the_lock(database):
    handler = database()
    holder = handler[ALIAS]
    seen: list[list[str]] = []

    def reader() -> None:
        conn = handler[ALIAS]
        seen.append(names(conn))
        conn.close()

    with writing(holder) as cursor:
        cursor.execute("INSERT INTO w (name) VALUES ('uncommitted')")
        thread = threading.Thread(target=reader)
        thread.start()
        thread.join(WAIT_S)
        assert not thread.is_alive(), "a read waited for the writer"
        assert holder.writer_queue.waiting == 0, "a read queued"
    assert seen == [[]]  # WAL: the reader sees the last commit, not the open transaction
    holder.close()


def test_a_write_outside_a_transaction_waits_in_line_too(database):
    """Left to SQLite's busy handler, a write in autocommit (the bearer token's ``last_used``)
    would find the lock taken by one queued writer after another."""
    handler = database()
    holder = handler[ALIAS]
    done: list[str] = []

    def autocommit_write() -> None:
        conn = handler[ALIAS]
        with conn.cursor() as cursor:
            cursor.execute("UPDATE w SET name = 'updated' WHERE name = 'holder'")
        done.append("written")
        conn.close()

    with writing(holder) as cursor:
        cursor.execute("INSERT INTO w (name) VALUES ('holder')")
        thread = threading.Thread(target=autocommit_write)
        thread.start()
        wait_until(lambda: holder.writer_queue.waiting == 1, "the autocommit write waiting in line")
        assert done == []
    thread.join(WAIT_S)
    assert done == ["written"] and names(holder) == ["updated"]
    assert holder.writer_queue.waiting == 0
    holder.close()


def test_a_failed_transaction_lets_the_next_writer_go(database):
    handler = database()
    conn = handler[ALIAS]
    with pytest.raises(ZeroDivisionError):
        with writing(conn) as cursor:
            cursor.execute("INSERT INTO w (name) VALUES ('rolled back')")
            1 / 0  # noqa: B018
    assert not conn.holds_write_turn
    with writing(conn) as cursor:
        cursor.execute("INSERT INTO w (name) VALUES ('kept')")
    assert names(conn) == ["kept"]
    conn.close()


def test_a_connection_closed_inside_atomic_gives_the_turn_back(database, monkeypatch):
    """Closed inside ``atomic`` (a lost connection, a worker's cleanup): Django drops the closed
    connection when the block ends without the call that ends a transaction, and the turn must go
    with it, or every other writer of the host waits out its timeout."""
    from django.db import transaction

    conn = database()[ALIAS]
    monkeypatch.setattr(transaction, "get_connection", lambda using=None: conn)
    with transaction.atomic():
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO w (name) VALUES ('lost with the connection')")
        assert conn.holds_write_turn
        conn.close()
    assert not conn.holds_write_turn and conn.connection is None
    other = database()[ALIAS]
    with writing(other) as cursor:  # the same process: waits for the turn if it were still held
        cursor.execute("INSERT INTO w (name) VALUES ('next')")
    assert names(other) == ["next"]
    other.close()


HOLD_LOCK = """
import fcntl, sys
with open(sys.argv[1], "a+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_another_process_in_line_first_makes_a_writer_wait_then_time_out_as_locked(database, tmp_path):
    """The line spans processes (gunicorn's workers): while another process has its turn, a writer
    here waits, and after the connection's timeout fails as SQLite does when it waits too long,
    "database is locked" (answered 503 with Retry-After, mediastore.dbretry)."""
    lock_path = tmp_path / "db.sqlite3-writers"
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline().strip() == "held"
        conn = database(timeout=0.2)[ALIAS]
        with pytest.raises(OperationalError, match="database is locked"):
            with writing(conn) as cursor:
                cursor.execute("INSERT INTO w (name) VALUES ('too late')")
        assert not conn.holds_write_turn
    finally:
        other.communicate("\n", timeout=WAIT_S)
    with writing(conn) as cursor:
        cursor.execute("INSERT INTO w (name) VALUES ('after')")
    assert names(conn) == ["after"]
    conn.close()


def test_the_queue_can_be_turned_off_and_memory_databases_do_not_queue(database):
    off = database(write_queue=False)[ALIAS]
    with writing(off) as cursor:
        cursor.execute("INSERT INTO w (name) VALUES ('unqueued')")
    assert off.writer_queue is None and names(off) == ["unqueued"]
    off.close()
    memory = ConnectionHandler({ALIAS: {"ENGINE": "mediastore.sqlite_backend", "NAME": ":memory:"}})[ALIAS]
    memory.ensure_connection()
    assert memory.writer_queue is None
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        on = database()[ALIAS]
        on.ensure_connection()
        assert on.writer_queue is queue_for(Path(on.settings_dict["NAME"]).resolve())
        assert sys.getswitchinterval() <= SWITCH_INTERVAL_S, "the turn's holder waits 5 ms for the GIL"
        on.close()
    finally:
        sys.setswitchinterval(switch_interval)


def test_a_waiter_that_gives_up_leaves_the_line():
    lock = HandOffLock()
    assert lock.acquire(timeout=0)
    assert not lock.acquire(timeout=0.01)
    assert lock.waiting == 0
    got: list[str] = []
    thread = threading.Thread(target=lambda: got.append("next") if lock.acquire(timeout=WAIT_S) else None)
    thread.start()
    wait_until(lambda: lock.waiting == 1, "the next thread waiting")
    lock.release()
    thread.join(WAIT_S)
    assert got == ["next"]
    assert not lock.acquire(timeout=0), "handed over: held by the next thread"
    lock.release()
    assert lock.acquire(timeout=0)
