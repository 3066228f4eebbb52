"""The PostgreSQL health check: no round trip on an idle connection, a replaced dead one."""

from __future__ import annotations

import select
import time

import pytest
from django.db import connection

from tests.support.postgres import admin_connection

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's connections"),
    pytest.mark.django_db(transaction=True),
]


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _start_of_a_request() -> None:
    """What Django does between requests with CONN_HEALTH_CHECKS (the check runs on first use)."""
    connection.close_if_unusable_or_obsolete()
    assert connection.connection is not None and not connection.health_check_done


def _spy(monkeypatch) -> list:
    sent: list = []
    raw = connection.connection
    for name in ("execute", "cursor"):
        original = getattr(raw, name)
        monkeypatch.setattr(raw, name, lambda *a, _o=original, **k: sent.append(a) or _o(*a, **k))
    return sent


def test_an_idle_healthy_connection_is_kept_without_a_query(monkeypatch):
    pid = _backend_pid()
    _start_of_a_request()
    assert connection.is_usable()  # checked now (by a round trip if the last check was long ago)
    sent = _spy(monkeypatch)
    assert connection.is_usable()
    assert sent == []
    assert _backend_pid() == pid


def test_a_connection_not_checked_for_a_while_asks_the_server(monkeypatch):
    """A host that vanished without closing its sockets leaves nothing to read: only a round trip
    tells, so an idle connection is trusted for TRUST_SECONDS after a check, no longer."""
    from mediastore.postgresql_backend.base import TRUST_SECONDS

    _backend_pid()
    _start_of_a_request()
    connection.checked_at -= TRUST_SECONDS + 1
    sent = _spy(monkeypatch)
    assert connection.is_usable()
    assert sent  # SELECT 1 went to the server
    sent.clear()
    assert connection.is_usable()
    assert sent == []  # and was trusted again right after


def test_a_connection_the_server_ended_is_replaced_before_the_first_query():
    pid = _backend_pid()
    with admin_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 10
    while not select.select([connection.connection.fileno()], [], [], 0.1)[0]:
        assert time.monotonic() < deadline, "the server never closed the connection"
    _start_of_a_request()
    assert _backend_pid() != pid  # no error: the request got a fresh connection


def test_inside_a_transaction_the_check_asks_the_server():
    from django.db import transaction

    with transaction.atomic():
        _backend_pid()
        assert connection.is_usable()
