"""The compiled single-row reads (mediastore.rowfetch) run as prepared statements on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from media.selectors import MEDIA_BY_PID
from mediastore.models import ApiToken
from mediastore.rowfetch import RowFetcher, statement_cursor
from stores.models import StoreConfig
from tests.conftest import ApiClient, create_media

pytestmark = pytest.mark.django_db

StoreFetcher = RowFetcher(StoreConfig, "id", ("s3cfg",))


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
def test_no_other_statement_is_tracked_for_preparation():
    """Preparation is allowed on the connection only while a RowFetcher statement runs: Django's
    own statements are neither prepared nor kept in psycopg's cache of candidates."""
    MEDIA_BY_PID.first("no-such-pid")
    raw = connection.connection
    assert raw.prepare_threshold is None
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute("SELECT %s::int + 1", [41])
    assert not [key for key in raw._prepared._counts if b"+ 1" in key[0]]
    assert not [text for text in _prepared() if "+ 1" in text]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_prepared_statements_can_be_turned_off(settings):
    settings.MEDIASTORE_PG_PREPARED = False
    connection.ensure_connection()
    before = _prepared()
    MEDIA_BY_PID.first("no-such-pid")
    assert _prepared() == before


def test_the_statement_is_counted_like_any_other():
    for _ in range(3):  # prepared from the first call on PostgreSQL, logged all the same
        with CaptureQueriesContext(connection) as captured:
            assert MEDIA_BY_PID.first("no-such-pid") is None
        assert len(captured.captured_queries) == 1
        logged = captured.captured_queries[0]["sql"]
        assert "media_media" in logged and "no-such-pid" in logged
    with statement_cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1


def test_first_beside_reads_two_rows_in_one_statement_or_none_without_the_first(user, token):
    from mediastore.auth import TOKEN_WITH_USER
    from mediastore.models import hash_token

    store = StoreConfig.objects.create(type="DictStore", bucket="beside")
    with CaptureQueriesContext(connection) as captured:
        found, other = TOKEN_WITH_USER.first_beside(hash_token(token), StoreFetcher, store.pk)
    assert len(captured.captured_queries) == 1
    assert found.user == user and other == store and other.bucket == "beside"
    assert found.fetched_extra == TOKEN_WITH_USER.first(hash_token(token)).fetched_extra
    assert TOKEN_WITH_USER.first_beside(hash_token(token), StoreFetcher, store.pk + 1) == (found, None)
    assert TOKEN_WITH_USER.first_beside("no-such-hash", StoreFetcher, store.pk) == (None, None)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's loaders are PostgreSQL's")
def test_connections_read_timestamps_as_djangos_own_loader_does():
    """Every connection reads ``timestamptz`` with psycopg's compiled loader
    (``UtcTimestamptzLoader``) instead of Django's: the values (types, time zone object,
    microseconds, NULL) must be exactly Django's, on Django's cursors, on the prepared statements'
    cursors and on a server-side (named) cursor, whose creation reads the loader's zone."""
    from django.db.backends.postgresql.psycopg_any import register_tzloader

    sql = "SELECT %s::timestamptz, %s::timestamptz, %s::timestamptz, NULL::timestamptz, now()"
    params = ["2026-12-07 09:30:00.123456+00", "1969-07-20 20:17:40-05:30", "0001-01-01 00:00:00+00"]
    with transaction.atomic():  # one transaction: now() is the same in every statement
        with connection.cursor() as cursor:
            assert cursor.adapters.get_loader(1184, 0).__name__ == "UtcTimestamptzLoader"
            cursor.execute(sql, params)
            fast_row = cursor.fetchone()
        with connection.cursor() as cursor:
            register_tzloader(connection.timezone, cursor)  # what Django registers by itself
            cursor.execute(sql, params)
            django_row = cursor.fetchone()
        with statement_cursor(connection) as cursor:
            cursor.execute(sql, params)
            prepared_row = cursor.fetchone()
        named = connection.chunked_cursor()  # Django's create_cursor(name): a server-side cursor
        named.execute(sql, params)
        named_row = named.fetchone()
        named.close()
    assert type(django_row[0].tzinfo).__module__ == "datetime"
    for row in (fast_row, prepared_row, named_row):
        assert row == django_row
        assert [type(v) for v in row] == [type(v) for v in django_row]
        assert [getattr(v, "tzinfo", None) for v in row] == [getattr(v, "tzinfo", None) for v in django_row]


def test_a_token_revoked_between_two_single_reads_is_refused_at_the_second(api, id_types, token):
    """The token and the media are one statement (``first_beside``): nothing about the token is
    kept from one request to the next, so a token deleted in between is refused at once."""
    created = create_media(api, "revoked-read")
    second = ApiClient(api.post("/api/tokens", {"name": "second", "scopes": ["read"]}).json()["token"])
    assert second.get("/api/media/revoked-read").json() == created
    ApiToken.objects.filter(name="second").delete()
    refused = second.get("/api/media/revoked-read")
    assert refused.status_code == 401 and refused.json() == {"detail": "Unauthorized"}
    assert api.get("/api/media/revoked-read").json() == created
