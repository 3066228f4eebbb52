"""The compiled single-row reads (mediastore.rowfetch) run as prepared statements on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from media.selectors import MEDIA_BY_PID
from mediastore.rowfetch import statement_cursor

pytestmark = pytest.mark.django_db


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_media_read_is_prepared_once_per_connection():
    def media_reads() -> list[str]:
        return [text for text in _prepared() if 'FROM "media_media" t0' in text]

    assert MEDIA_BY_PID.first("no-such-pid") is None
    assert len(media_reads()) == 1
    assert "$1" in media_reads()[0]  # bound on the server
    for _ in range(3):
        MEDIA_BY_PID.first("no-such-pid")
    assert len(media_reads()) == 1  # the same statement, not one per call


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_prepared_statements_can_be_turned_off(monkeypatch):
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    before = _prepared()
    MEDIA_BY_PID.first("no-such-pid")
    assert _prepared() == before


def test_the_statement_is_counted_like_any_other():
    with CaptureQueriesContext(connection) as captured:
        assert MEDIA_BY_PID.first("no-such-pid") is None
    assert len(captured.captured_queries) == 1
    with statement_cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1
